#!/usr/bin/env bash
# End-to-end tests of the moesim command line: figures, exit codes, one-line
# errors naming the file and JSON path, and no half-written output.
# Usage: run_cli_tests.sh path/to/moesim   (run from the repository root)
set -uo pipefail
moesim=$1
failures=0
passes=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# json_num FILE KEY: the first numeric value of "KEY": in FILE.
json_num() { grep -o "\"$2\": *[-0-9.e+]*" "$1" | head -1 | sed 's/.*: *//'; }

# json_in FILE OBJECT KEY: the numeric value of "KEY": inside the object "OBJECT": { ... } (one level deep).
json_in() { sed -n "/\"$2\": {/,/}/p" "$1" | grep -o "\"$3\": *[-0-9.e+]*" | head -1 | sed 's/.*: *//'; }

# within ACTUAL EXPECTED REL: |actual-expected| <= rel*|expected|
within() { awk -v a="$1" -v e="$2" -v r="$3" 'BEGIN { d = a - e; if (d < 0) d = -d; m = e < 0 ? -e : e; exit !(a != "" && d <= r * m) }'; }

# expect_error NAME EXPECTED_CODE PATTERN -- command...: exit code, one stderr line, pattern in it.
expect_error() {
  local name=$1 code=$2 pattern=$3; shift 4
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local lines
  lines=$(wc -l <"$tmp/err")
  if [ "$rc" -ne "$code" ]; then fail "$name: exit $rc, expected $code ($(cat "$tmp/err"))"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$name: expected one line on stderr, got $lines: $(cat "$tmp/err")"; return; fi
  if ! grep -q -- "$pattern" "$tmp/err"; then fail "$name: stderr lacks '$pattern': $(cat "$tmp/err")"; return; fi
  pass
}

# --- describe: figures from shared/reference/specs.md (A.2, C.1, C.4), within 0.5% ---
if "$moesim" describe --model models/deepseek-r1.json --system hardware/systems/gb200-nvl72.json --plan ep=72 --json \
    >"$tmp/ds.json" 2>"$tmp/err"; then
  pass
  within "$(json_num "$tmp/ds.json" total_params)" 671.03e9 0.005 || fail "describe total_params"
  within "$(json_num "$tmp/ds.json" active_params)" 37.55e9 0.005 || fail "describe active_params"
  within "$(json_num "$tmp/ds.json" linear_flops_per_token)" 73.2e9 0.005 || fail "describe linear_flops_per_token"
  within "$(json_in "$tmp/ds.json" kv_cache_bytes_per_token bf16)" 70272 0.0001 || fail "describe kv bf16"
  within "$(json_in "$tmp/ds.json" kv_cache_bytes_per_token fp8)" 35136 0.0001 || fail "describe kv fp8"
  within "$(json_num "$tmp/ds.json" combine_bytes_per_token_per_layer)" 114688 0.0001 || fail "describe combine"
  grep -q '"dispatch_bytes_per_token_per_layer"' "$tmp/ds.json" || fail "describe dispatch key"
  within "$(json_in "$tmp/ds.json" dispatch_bytes_per_token_per_layer fp8)" 59264 0.0001 || fail "describe dispatch fp8"
  within "$(json_in "$tmp/ds.json" dispatch_bytes_per_token_per_layer nvfp4)" 32384 0.0001 || fail "describe dispatch nvfp4"
  grep -q '"weight_bytes_per_gpu"' "$tmp/ds.json" || fail "describe weight_bytes_per_gpu missing"
  grep -q '"kv_tokens_per_gpu"' "$tmp/ds.json" || fail "describe kv_tokens_per_gpu missing"
  grep -q '"status": "X"' "$tmp/ds.json" || fail "describe: GB200 figures must be labelled extrapolated (X)"
  for k in total_params active_params linear_flops_per_token kv_cache_bytes_per_token \
           dispatch_bytes_per_token_per_layer combine_bytes_per_token_per_layer weight_bytes_per_gpu kv_tokens_per_gpu; do
    grep -q "\"$k\"" "$tmp/ds.json" || fail "describe --json lacks $k"
  done
else
  fail "describe DeepSeek-R1 on NVL72 exited non-zero: $(cat "$tmp/err")"
fi

# Text output names the model and the plan.
"$moesim" describe --model models/kimi-k2-thinking.json --system hardware/systems/hgx-h200.json --plan tp=8 \
  >"$tmp/k2.txt" 2>&1 && grep -q "Kimi" "$tmp/k2.txt" && grep -q "tp=8" "$tmp/k2.txt" && pass || fail "describe text"

# A model that does not fit says so (DeepSeek-R1 BF16 with TP8 on 8 x H100 80 GB: 1.34 TB / 8 > 80 GB).
"$moesim" describe --model models/deepseek-r1.json --precision bf16 --system hardware/systems/hgx-h100.json \
  --plan tp=8 >"$tmp/nofit.txt" 2>&1 && grep -q "DOES NOT FIT" "$tmp/nofit.txt" && pass || fail "describe no-fit"

# --- comm: uniform all-to-all among the 8 GPUs of one HGX H200 node, 64 MB per peer:
# each GPU sends 7 x 64e6 = 448e6 B over its 450 GB/s NVLink, of which transfers achieve 0.82 (= 369 GB/s;
# hardware/systems/hgx-h200.json /scale_up/achieved_fraction): 448e6 / 369e9 = 1214.092 us, plus the 1 us switch
# traversal = 1215.092 us; the analytic mode agrees on symmetric traffic.
for mode in fluid analytic; do
  if "$moesim" comm --system hardware/systems/hgx-h200.json --collective all-to-all --bytes "64 MB" --mode $mode \
      --json >"$tmp/comm.json" 2>"$tmp/err"; then
    within "$(json_num "$tmp/comm.json" time_s)" 1215.092e-6 0.0001 && pass || fail "comm $mode time $(json_num "$tmp/comm.json" time_s)"
  else
    fail "comm $mode exited non-zero: $(cat "$tmp/err")"
  fi
done
expect_error "comm bad bytes" 2 "--bytes" -- "$moesim" comm --system hardware/systems/hgx-h200.json \
  --collective all-to-all --bytes "64 MB/s"

# --- frontier: runs, labels the cost basis of each system, and rejects a bad sweep.
if "$moesim" frontier scenarios/dsr1-h200-tp-agg.json --concurrency 8,32 --quiet --json "$tmp/fr.json" \
    >"$tmp/fr.txt" 2>"$tmp/err"; then
  grep -q "costs of hgx-h200: calibrated on h200-sxm measurements" "$tmp/fr.txt" && pass || fail "frontier cost label"
  grep -q '"at_interactivity"' "$tmp/fr.json" && pass || fail "frontier --json"
else
  fail "frontier exited non-zero: $(cat "$tmp/err")"
fi
expect_error "frontier bad concurrency" 2 "--concurrency" -- "$moesim" frontier scenarios/dsr1-h200-tp-agg.json \
  --concurrency 0 --quiet

expect_error "step bad dispatcher" 2 "--dispatcher" -- "$moesim" step --model models/deepseek-r1.json \
  --system hardware/systems/hgx-h200.json --plan ep=8 --batch 64 --dispatcher deepep

# --- the staged dispatcher adds its copies: a slower step than the fused default on the same batch.
fused_s=$("$moesim" step --model models/deepseek-r1.json --system hardware/systems/hgx-h200.json --plan ep=8 \
  --batch 512 --mode fast --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])')
staged_s=$("$moesim" step --model models/deepseek-r1.json --system hardware/systems/hgx-h200.json --plan ep=8 \
  --batch 512 --mode fast --dispatcher staged --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])')
python3 -c "import sys; sys.exit(0 if $staged_s > $fused_s else 1)" && pass || fail "staged dispatcher must be slower ($staged_s vs $fused_s)"

# --- the side-by-side table labels extrapolated Blackwell costs.
"$moesim" step --model models/deepseek-r1.json --system hardware/systems/gb200-nvl72.json --plan ep=72 \
  --batch 72 --network analytic >"$tmp/step.txt" 2>&1 && grep -q "EXTRAPOLATED from h200-sxm" "$tmp/step.txt" \
  && pass || fail "step on GB200 must label its costs extrapolated"

# --- bad input: exit 2, one line naming the file / option and what was expected ---
expect_error "missing model file" 2 "models/nope.json" -- "$moesim" describe --model models/nope.json
expect_error "unknown precision" 2 "/precisions" -- "$moesim" describe --model models/deepseek-r1.json --precision fp2
expect_error "bad plan syntax" 2 "--plan" -- "$moesim" describe --model models/deepseek-r1.json \
  --system hardware/systems/hgx-h200.json --plan ep=eight
expect_error "plan does not divide the model" 2 "exceeds the 256 routed experts" -- "$moesim" describe \
  --model models/deepseek-r1.json --system hardware/systems/hgx-h200.json --plan ep=512
expect_error "unknown CLI option" 2 "moesim: error" -- "$moesim" describe --model models/deepseek-r1.json --bogus
expect_error "no sub-command" 2 "moesim: error" -- "$moesim"
printf '{"kind": "model", "id": "x", "name": "X", "sources": {}, "architecture": {"layers": 2}' >"$tmp/bad.json"
expect_error "malformed JSON" 2 "malformed JSON at line 1" -- "$moesim" describe --model "$tmp/bad.json"
sed 's/"hidden": 7168/"hidden": "7168"/' models/deepseek-r1.json >"$tmp/wrongtype.json"
expect_error "wrong type in a model" 2 "/architecture/hidden" -- "$moesim" describe --model "$tmp/wrongtype.json"

echo "cli tests: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
