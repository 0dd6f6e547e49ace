#!/bin/bash
# DEV ONLY (router v5): one device call. Usage: [NCU=bin_dir] [SASS="dir..."] gpu_router5.sh OUT NEW_DIR AB_DIR...
#  1. full router suite (all T, checks at every T) of NEW_DIR/router_dev;
#  2. A/B of every AB_DIR/router_dev at T=16384/65536/131072 (checks on 4096 tokens), interleaved twice;
#  3. SASS of the router kernels of each SASS dir; ncu (stall sections) of NCU's DeepSeek T=131072.
O=$1; NEW=$2; shift 2
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
if [ -n "$NOFB" ]; then MOESIM_ROUTER_TS=16384,131072 MOESIM_ROUTER_CHECK_T=65536 timeout 30 $NOFB/router_dev >/dev/null 2> $O/nofb.log; echo "nofb rc=$?"; grep -E "CHECK FAILED" $O/nofb.log | cut -c1-220; fi
s=$(date +%s); MOESIM_ROUTER_VERBOSE=1 timeout 60 $NEW/router_dev > $O/full.jsonl 2> $O/full.log; echo "full rc=$? $(( $(date +%s)-s ))s"
for i in 1 2; do for d in "$@"; do n=$(basename $d); s=$(date +%s)
  MOESIM_ROUTER_TS=16384,65536,131072 MOESIM_ROUTER_CHECK_T=4096 timeout 30 $d/router_dev > /dev/null 2> $O/ab_${n}_$i.log
  echo "$n $i rc=$? $(( $(date +%s)-s ))s"; done; done
for d in $SASS; do cuobjdump -sass $d/router_dev | awk '/Function : /{p = ($0 ~ /router/)} p' > $O/sass_$(basename $d).txt; done
(cd $O; grep -h -E "FAIL|!!!!!|FATAL" *.log | head -20
echo "== full"; grep -E "router5|T=(  1024| 16384| 65536|131072)" full.log | cut -c1-90
for f in ab_*.log; do echo "== $f"; grep -E "T=" $f | cut -c1-60; done)
(cd $O; tar czf logs1.tgz *.log *.txt *.jsonl; rm -f *.log *.txt *.jsonl)
if [ -n "$NCU" ]; then s=$(date +%s)
  MOESIM_ROUTER_ONLY=deepseek_r1:131072 MOESIM_ROUTER_CHECK_T=1024 timeout 55 ncu --clock-control none -k regex:router5 --launch-skip 2 --launch-count 1 \
   --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section Occupancy --metrics smsp__inst_executed.sum \
   $NCU/router_dev > $O/ncu_ds.txt 2>&1; echo "ncu rc=$? $(( $(date +%s)-s ))s"
  grep -E "Duration|inst_executed|Issue Slots|Issued Warp|No Eligible|Active Warps|Eligible Warps|Warp Cycles Per Issued|Achieved Occupancy|Registers|Theoretical Occ|DRAM Through|Memory Through|Stall" $O/ncu_ds.txt | cut -c1-110 | head -40
fi
