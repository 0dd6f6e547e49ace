#!/bin/bash
# DEV ONLY (router v5): one device call. Usage: FULL="dirs" NCU="dirs" SASS="dirs" gpu_router5b.sh OUT AB_DIR...
#  full router suite (all T, checks at every T) of each FULL dir; A/B of every AB_DIR at T=16384/65536/131072
#  (checks on 4096 tokens), 3 interleaved rounds, summarised per point as the 3 medians [min p10 .. max p90];
#  ncu (instructions, issue, duration) of NCU dirs at DeepSeek T=131072; SASS of SASS dirs. One tarball back.
O=$1; shift
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
for d in $FULL; do n=$(basename $d); s=$(date +%s)
  MOESIM_ROUTER_VERBOSE=1 timeout 45 $d/router_dev > $O/full_$n.jsonl 2> $O/full_$n.log; echo "full $n rc=$? $(( $(date +%s)-s ))s"
  grep -h -E "FAIL|!!!!!|FATAL" $O/full_$n.log | cut -c1-200 | head -5; grep -E "router5" $O/full_$n.log; done
for i in 1 2 3; do for d in "$@"; do n=$(basename $d)
  MOESIM_ROUTER_TS=16384,65536,131072 MOESIM_ROUTER_CHECK_T=4096 timeout 30 $d/router_dev > $O/ab_${n}_$i.jsonl 2> $O/ab_${n}_$i.log
  r=$?; [ $r != 0 ] && echo "$n $i rc=$r"; grep -h -E "FAIL|!!!!!|FATAL" $O/ab_${n}_$i.log | cut -c1-160 | head -3; done; done
python3 - $O "$@" <<'PY'
import json, sys, os, collections
O = sys.argv[1]; names = [os.path.basename(d) for d in sys.argv[2:]]
R = collections.defaultdict(list)
for n in names:
    for i in (1, 2, 3):
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
for d in $NCU; do n=$(basename $d); for v in deepseek_r1 qwen3; do
  MOESIM_ROUTER_ONLY=$v:131072 MOESIM_ROUTER_CHECK_T=1024 timeout 40 ncu --clock-control none -k regex:router5 --launch-skip 2 --launch-count 1 \
   --metrics gpu__time_duration.sum,smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed \
   $d/router_dev > $O/ncu_${n}_$v.txt 2>&1
  echo "ncu $n $v: $(grep -E "duration|inst_executed|issue_active|warps_active|dram__" $O/ncu_${n}_$v.txt | awk '{print $NF}' | tr '\n' ' ')"; done; done
cd $O; tar czf all.tgz *.log *.txt *.jsonl 2>/dev/null; rm -f *.log *.txt *.jsonl
