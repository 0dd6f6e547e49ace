#!/usr/bin/env bash
# Re-measure the moesim kernel suites on the GPU(s) of this machine, one command.
#
#   tools/measure.sh [--quick] [--suite LIST|all] [--nccl "2 4"] [--ep "2 4 8"] [--tag NAME]
#                    [--slug NAME] [--out-dir DIR] [--no-build] [--build-dir DIR]
#
# Builds validate/kernels into build-gpu/ (unless --no-build and the binary runs),
# runs moesim_harness, and writes into DIR/<slug>/ (default DIR = validate/data):
#   <tag>.jsonl             one JSON line per measured point (schema: validate/README.md)
#   <tag>.log               the harness's stderr (per-point lines, summary table)
#   provenance-<tag>.txt    exact command, git commit, date, nvidia-smi, library paths
# <slug> comes from the GPU name: h100-sxm, h200-sxm, ... ; NCCL runs write to
# <slug>-x<N>/ with tag nccl<N>; --ep runs (expert-parallel MoE layer over GPUs 0..N-1)
# write <slug>-x<N>/ep_layer<N>.jsonl. Exit status is the harness's (non-zero if a check failed).
# Where the tree has no .git (a copy sent to a GPU machine), set MOESIM_GIT_COMMIT=<sha>.
set -u -o pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

ORIG_ARGS="$*"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK="" SUITE="all" NCCL="" EP="" TAG="" SLUG="" OUTDIR="$ROOT/validate/data" BUILD=1 BDIR="$ROOT/build-gpu"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK="--quick" ;;
    --suite) SUITE="$2"; shift ;;
    --nccl) NCCL="$2"; shift ;;
    --ep) EP="$2"; shift ;;
    --tag) TAG="$2"; shift ;;
    --slug) SLUG="$2"; shift ;;
    --out-dir) OUTDIR="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --build-dir) BDIR="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
BIN="$BDIR/moesim_harness"

# Library fallbacks: the CUDA toolkit's own folders, then pip-installed NVIDIA wheels.
add_libs() {
  local d
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; done
  for py in python3 /opt/torch/.venv/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    local extra
    extra=$("$py" - <<'PY' 2>/dev/null
import importlib, os
out = []
for m in ("nvidia.cublas", "nvidia.nccl", "nvidia.cuda_runtime", "nvidia.cu13"):
    try:
        mod = importlib.import_module(m)
        for p in mod.__path__:
            for sub in ("lib", "lib64"):
                d = os.path.join(p, sub)
                if os.path.isdir(d): out.append(d)
    except Exception:
        pass
print(":".join(out))
PY
)
    [ -n "$extra" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$extra"
  done
  export LD_LIBRARY_PATH
}
runs() { "$BIN" --help >/dev/null 2>&1; }

if [ "$BUILD" = 1 ] || [ ! -x "$BIN" ]; then
  if [ -x "$BIN" ] && [ "$BUILD" = 0 ]; then :; else
    cmake -S "$ROOT/validate/kernels" -B "$BDIR" -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release >&2 &&
      cmake --build "$BDIR" -j"$(nproc)" >&2 || { echo "build failed" >&2; exit 3; }
  fi
fi
if ! runs; then
  add_libs
  if ! runs; then
    echo "moesim_harness does not start here; rebuilding" >&2
    ldd "$BIN" >&2 || true
    rm -rf "$BDIR/CMakeCache.txt" "$BDIR/CMakeFiles"
    cmake -S "$ROOT/validate/kernels" -B "$BDIR" -DCMAKE_CUDA_ARCHITECTURES=90a >&2 && cmake --build "$BDIR" -j"$(nproc)" >&2
    runs || { echo "moesim_harness still does not start" >&2; exit 3; }
  fi
fi

if [ -z "$SLUG" ]; then
  NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | head -1)
  case "$NAME" in
    *H100*PCIe*) SLUG=h100-pcie ;; *H100*NVL*) SLUG=h100-nvl ;; *H100*) SLUG=h100-sxm ;;
    *H200*NVL*) SLUG=h200-nvl ;; *H200*) SLUG=h200-sxm ;;
    *) SLUG=$(echo "${NAME:-unknown-gpu}" | tr 'A-Z' 'a-z' | sed 's/nvidia //; s/[^a-z0-9]\+/-/g; s/-$//') ;;
  esac
fi

run_one() {  # $1 = dir, $2 = tag, rest = harness args
  local dir="$1" tag="$2"; shift 2
  mkdir -p "$dir"
  local jsonl="$dir/$tag.jsonl" log="$dir/$tag.log" prov="$dir/provenance-$tag.txt"
  rm -f "$jsonl"
  {
    echo "command: $BIN $* --out $jsonl"
    echo "invoked as: tools/measure.sh $ORIG_ARGS"
    # The GPU machines get a copy of the tree without .git: pass MOESIM_GIT_COMMIT from the checkout.
    local commit="${MOESIM_GIT_COMMIT:-$(git -C "$ROOT" rev-parse --verify -q HEAD 2>/dev/null)}"
    local dirty=""
    [ -z "${MOESIM_GIT_COMMIT:-}" ] && ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null && dirty=" (+ uncommitted changes)"
    echo "git commit: ${commit:-unknown}${dirty}"
    echo "date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -a)"
    echo "env: NCCL_NVLS_ENABLE=$NCCL_NVLS_ENABLE LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    echo "--- ldd"; ldd "$BIN" | grep -E "cublas|nccl|cudart" || true
    echo "--- nvidia-smi"; nvidia-smi 2>&1 || true
    echo "--- nvidia-smi -q -d CLOCK (before)"; nvidia-smi -q -d CLOCK -i 0 2>&1 | head -40 || true
    echo "--- nvidia-smi topo -m"; nvidia-smi topo -m 2>&1 || true
  } > "$prov"
  local t0=$SECONDS
  "$BIN" "$@" --out "$jsonl" 2> >(tee "$log" >&2)
  local rc=$?
  sleep 1
  { echo "--- exit status: $rc, wall seconds: $((SECONDS - t0)), points: $(grep -c '"median_us"' "$jsonl" 2>/dev/null || echo 0), failed checks: $(grep -c '"check_failed"' "$jsonl" 2>/dev/null || echo 0)"; } >> "$prov"
  echo "[measure] $jsonl: $(grep -c '"median_us"' "$jsonl" 2>/dev/null || echo 0) points, exit $rc" >&2
  return $rc
}

status=0
if [ -n "$EP" ]; then
  for n in $EP; do
    run_one "$OUTDIR/$SLUG-x$n" "${TAG:-ep_layer}$n" --ep-layer "$n" $QUICK || status=1
  done
elif [ -n "$NCCL" ]; then
  for n in $NCCL; do
    run_one "$OUTDIR/$SLUG-x$n" "${TAG:-nccl}$n" --nccl "$n" $QUICK || status=1
  done
else
  run_one "$OUTDIR/$SLUG" "${TAG:-single}" --suite "$SUITE" $QUICK || status=1
fi
exit $status
