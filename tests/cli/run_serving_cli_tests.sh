#!/usr/bin/env bash
# End-to-end tests of `moesim run`: the summary, byte-identical reports for one
# seed, hand-worked TTFT/TPOT through the CLI, side-by-side scenarios, exit 2
# with one line naming the file and JSON path on bad input, and no output file
# written when a run fails.
# Usage: run_serving_cli_tests.sh path/to/moesim   (run from the repository root)
set -uo pipefail
moesim=$1
root=$(pwd)
failures=0
passes=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# scenario NAME POOLS WORKLOAD [DOMAINS]: writes $tmp/NAME.json (DeepSeek-R1 FP8 on HGX H200).
scenario() {
  cat >"$tmp/$1.json" <<JSON
{"kind": "scenario", "id": "$1", "name": "cli test $1", "sources": {},
 "model": {"file": "$root/models/deepseek-r1.json", "precision": "fp8"},
 "system": {"file": "$root/hardware/systems/hgx-h200.json", "domains": ${4:-1}},
 "deployment": {"pools": $2, "kv_cache": {"dtype": "bf16", "memory_fraction": 0.9}},
 "workload": $3}
JSON
}
agg='[{"name": "main", "role": "aggregated", "instances": 1, "plan": "tp=8", "scheduler": {"max_batch_size": 64, "max_tokens_per_step": 1000}}]'
printf '0,100,3\n0.005,50,2\n' >"$tmp/trace.csv"
scenario hand "$agg" '{"arrivals": {"kind": "trace", "file": "trace.csv"}}'
scenario poisson "$agg" '{"arrivals": {"kind": "poisson", "rate": "50 req/s"}, "input_tokens": {"distribution": "uniform", "min": 10, "max": 500}, "output_tokens": 40, "requests": 300, "seed": 3}'

# expect_error NAME PATTERN -- command...: exit 2, one stderr line containing PATTERN.
expect_error() {
  local name=$1 pattern=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? lines
  lines=$(wc -l <"$tmp/err")
  if [ "$rc" -ne 2 ]; then fail "$name: exit $rc, expected 2 ($(cat "$tmp/err"))"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$name: expected one line on stderr, got $lines"; return; fi
  if ! grep -q -- "$pattern" "$tmp/err"; then fail "$name: stderr lacks '$pattern': $(cat "$tmp/err")"; return; fi
  pass
}

# --- hand-worked: 10 ms steps; r0 TTFT 10 ms / TPOT 10 ms, r1 TTFT 15 ms (tests/unit/serve/serving_test.cc) ---
if "$moesim" run "$tmp/hand.json" --step-time "10 ms" --json "$tmp/hand-report.json" --requests "$tmp/hand.csv" \
    --tokens "$tmp/hand-tokens.csv" --trace "$tmp/hand-trace.json" >"$tmp/out" 2>"$tmp/err"; then
  pass
  grep -q "output tok/s per GPU" "$tmp/out" && pass || fail "hand: no summary table"
  grep -q '^0,1,main/0,100,3,0.000000000,0.010000000,0.030000000,10.000000,10.000000,30.000000,0,' "$tmp/hand.csv" \
    && pass || fail "hand: request 0 line: $(sed -n 2p "$tmp/hand.csv")"
  grep -q '^1,1,main/0,50,2,0.005000000,0.020000000,0.030000000,15.000000,10.000000,25.000000,0,' "$tmp/hand.csv" \
    && pass || fail "hand: request 1 line: $(sed -n 3p "$tmp/hand.csv")"
  # per token: r0 at 10/20/30 ms, r1 at 20 (gap = TTFT 15 ms) and 30 ms
  [ "$(sed -n 5p "$tmp/hand-tokens.csv")" = "1,1,0,0.020000000,1,15.000000" ] && [ "$(wc -l <"$tmp/hand-tokens.csv")" -eq 6 ] \
    && pass || fail "hand: tokens CSV: $(cat "$tmp/hand-tokens.csv")"
  for key in output_tokens_per_s_per_gpu tokens_per_s_per_user_p50 ttft_ms tpot_ms input_hash seed; do
    grep -q "\"$key\"" "$tmp/hand-report.json" && pass || fail "hand: report lacks $key"
  done
  python3 -c "import json,sys; t=json.load(open(sys.argv[1])); assert len(t['traceEvents']) > 0" "$tmp/hand-trace.json" \
    && pass || fail "hand: trace is not valid trace-event JSON"
else
  fail "hand: exit $? ($(cat "$tmp/err"))"
fi

# --- same seed: byte-identical JSON; another seed: different ---
"$moesim" run "$tmp/poisson.json" --step-time "5 ms" --quiet --json "$tmp/a.json" >/dev/null 2>&1
"$moesim" run "$tmp/poisson.json" --step-time "5 ms" --quiet --json "$tmp/b.json" >/dev/null 2>&1
"$moesim" run "$tmp/poisson.json" --step-time "5 ms" --quiet --json "$tmp/c.json" --seed 4 >/dev/null 2>&1
[ -s "$tmp/a.json" ] && cmp -s "$tmp/a.json" "$tmp/b.json" && pass || fail "determinism: reports differ for one seed"
cmp -s "$tmp/a.json" "$tmp/c.json" && fail "determinism: --seed 4 changed nothing" || pass
grep -q '"seed": 4' "$tmp/c.json" && pass || fail "determinism: --seed not recorded"

# --- side by side: one column per scenario ---
if "$moesim" run "$tmp/hand.json" "$tmp/poisson.json" --step-time "5 ms" --quiet >"$tmp/out" 2>"$tmp/err"; then
  grep -q "^scenario  *hand  *poisson" "$tmp/out" && pass || fail "side by side: $(head -1 "$tmp/out")"
  grep -q "^hand vs poisson:" "$tmp/out" && pass || fail "side by side: no attribution line"
else
  fail "side by side: exit $? ($(cat "$tmp/err"))"
fi

# --- bad input: exit 2, one line naming file and JSON path, no output files ---
scenario big "[{\"name\": \"a\", \"role\": \"aggregated\", \"instances\": 3, \"plan\": \"tp=8\", \"scheduler\": {\"max_batch_size\": 8, \"max_tokens_per_step\": 100}}]" \
  '{"arrivals": {"kind": "closed-loop", "concurrency": 4}, "input_tokens": 10, "output_tokens": 10, "requests": 8}'
expect_error "pool larger than system" "big.json: /deployment/pools: the pools need 24 GPUs" -- \
  "$moesim" run "$tmp/big.json" --json "$tmp/never.json" --requests "$tmp/never.csv"
[ ! -e "$tmp/never.json" ] && [ ! -e "$tmp/never.csv" ] && pass || fail "bad input: output files were written"
scenario fit '[{"name": "a", "role": "aggregated", "instances": 1, "plan": "tp=2,ep=2", "scheduler": {"max_batch_size": 8, "max_tokens_per_step": 100}}]' \
  '{"arrivals": {"kind": "closed-loop", "concurrency": 4}, "input_tokens": 10, "output_tokens": 10, "requests": 8}'
expect_error "plan does not fit" "fit.json: /deployment/pools/0/plan: the plan" -- "$moesim" run "$tmp/fit.json"
scenario slo "$agg" '{"arrivals": {"kind": "closed-loop", "concurrency": 4}, "input_tokens": 10, "output_tokens": 10, "requests": 8}'
sed -i 's/"workload"/"slo": {"ttft": {"max": "1 s"}}, "workload"/' "$tmp/slo.json"
expect_error "SLO without percentile" "slo.json: /slo/ttft/percentile" -- "$moesim" run "$tmp/slo.json"
printf '0,100,3\n0.5,-4,2\n' >"$tmp/neg.csv"
scenario neg "$agg" '{"arrivals": {"kind": "trace", "file": "neg.csv"}}'
expect_error "trace negative length" "neg.csv: line 2: token counts" -- "$moesim" run "$tmp/neg.json"
printf '1.0,100,3\n0.5,40,2\n' >"$tmp/unsorted.csv"
scenario unsorted "$agg" '{"arrivals": {"kind": "trace", "file": "unsorted.csv"}}'
expect_error "trace unsorted" "unsorted.csv: line 2: arrivals must be sorted" -- "$moesim" run "$tmp/unsorted.json"
expect_error "missing scenario" "nope.json" -- "$moesim" run "$tmp/nope.json"
expect_error "bad step time" "--step-time" -- "$moesim" run "$tmp/hand.json" --step-time fast
# A bad second scenario stops everything before the first one runs or writes.
expect_error "bad second scenario" "big.json" -- "$moesim" run "$tmp/hand.json" "$tmp/big.json" --step-time "5 ms" --json "$tmp/never2.json"
[ ! -e "$tmp/never2.json" ] && pass || fail "bad second scenario: the report was written"

echo "serving CLI tests: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
