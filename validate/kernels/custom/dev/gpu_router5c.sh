#!/bin/bash
# DEV ONLY (router, session 5): one device call. Usage:
#   FULL="dirs" DIAG="dirs" NCU="dirs" SASS="dirs" ROUNDS=3 gpu_router5c.sh OUT AB_DIR...
# FULL: full router suite (all T, checks at every T). DIAG: builds with ROUTER5_DIAG=1 (tie-path
# quads per input set + each set timed alone) at T=16384/65536/131072. A/B of every AB_DIR at
# T=16384/65536/131072 (checks on 4096 tokens), ROUNDS interleaved rounds, summarised per point as
# the medians of the rounds [min p10 .. max p90]. ncu of NCU dirs (DeepSeek + Qwen T=131072), SASS.
O=$1; shift
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
for d in $FULL; do n=$(basename $d); s=$(date +%s)
  MOESIM_ROUTER_VERBOSE=1 timeout 60 $d/router_dev > $O/full_$n.jsonl 2> $O/full_$n.log; echo "full $n rc=$? $(( $(date +%s)-s ))s"
  grep -h -E "FAIL|!!!!!|FATAL" $O/full_$n.log | cut -c1-200 | head -5; grep -E "router5" $O/full_$n.log; done
for d in $DIAG; do n=$(basename $d); s=$(date +%s)
  MOESIM_ROUTER_TS=${DIAG_TS:-16384,65536,131072} MOESIM_ROUTER_CHECK_T=4096 timeout 60 $d/router_dev > $O/diag_$n.jsonl 2> $O/diag_$n.log
  echo "diag $n rc=$? $(( $(date +%s)-s ))s"; grep -h -E "FAIL|!!!!!|FATAL" $O/diag_$n.log | cut -c1-200 | head -5
  grep -E "^diag" $O/diag_$n.log | sed -E 's/^diag +([a-z]{4})[a-z0-9_]* +T= *([0-9]+) set ([0-9]+): tie quads ([0-9]+) +([0-9.]+) us.*/\1:\2:s\3:t\4:\5/' | tr '\n' ' ' | fold -w 160; echo
  grep -E "^tl" $O/diag_$n.log | awk '!seen[$2 $3]++' | sed -E 's/^tl ([a-z]{4})[a-z0-9_]* +T= */\1 /; s/warps ([0-9]+) start p50/w\1 st/; s/ \| warp end min/ | we/; s/ \| SM end \(([0-9]+) SMs\) min/ | se\1/; s/ (p10|p50|p90|max) / /g'; done
for i in $(seq 1 ${ROUNDS:-3}); do for d in "$@"; do n=$(basename $d)
  MOESIM_ROUTER_TS=16384,65536,131072 MOESIM_ROUTER_CHECK_T=4096 timeout 30 $d/router_dev > $O/ab_${n}_$i.jsonl 2> $O/ab_${n}_$i.log
  r=$?; [ $r != 0 ] && echo "$n $i rc=$r"; grep -h -E "FAIL|!!!!!|FATAL" $O/ab_${n}_$i.log | cut -c1-160 | head -3; done; done
python3 - $O "$@" <<'PY'
import json, sys, os, collections
O = sys.argv[1]; names = [os.path.basename(d) for d in sys.argv[2:]]
R = collections.defaultdict(list)
for n in names:
    for i in range(1, 10):
        f = f"{O}/ab_{n}_{i}.jsonl"
        if not os.path.exists(f): continue
        for l in open(f):
            d = json.loads(l); R[(d["model"], d["shape"]["tokens"], n)].append((d["median_us"], d["p10_us"], d["p90_us"]))
for key in sorted(R, key=lambda k: (k[0], k[1], names.index(k[2]))):
    v = R[key]
    print(f"{key[0][:8]:8s} {key[1]:6d} {key[2]:5s} " + " ".join(f"{m:6.2f}" for m, _, _ in v) +
          f"  [{min(p for _, p, _ in v):6.2f} .. {max(p for _, _, p in v):6.2f}]")
PY
for d in $SASS; do cuobjdump -sass $d/router_dev | awk '/Function : /{p = ($0 ~ /router/)} p' > $O/sass_$(basename $d).txt; done
for d in $NCU; do n=$(basename $d); for v in ${NCU_MODELS:-deepseek_r1 qwen3}; do
  MOESIM_ROUTER_ONLY=$v:131072 MOESIM_ROUTER_CHECK_T=1024 timeout 40 ncu --clock-control none -k regex:router5 --launch-skip 2 --launch-count 1 \
   ${NCU_SECTIONS} --metrics gpu__time_duration.sum,smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__cycles_active.avg,sm__cycles_elapsed.avg \
   $d/router_dev > $O/ncu_${n}_$v.txt 2>&1
  echo "ncu $n $v: $(grep -E "duration|inst_executed|issue_active|warps_active|dram__|cycles_" $O/ncu_${n}_$v.txt | awk '{print $NF}' | tr '\n' ' ')"; done; done
cd $O; tar czf all.tgz *.log *.txt *.jsonl 2>/dev/null; rm -f *.log *.txt *.jsonl
