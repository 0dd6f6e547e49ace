#!/bin/bash
# DEV ONLY (session 4b, mla fp8 h=32): checks of each NEW build dir, then the four large fp8
# h=32 points (MOESIM_MLA_SWEEP=f8w: timed + sampled-head checks) interleaved BASE/NEW...,
# then (PROF=1) a short ncu of the first new build at B=64 s=8192 h=32.
# Usage: gpu_wg2.sh OUT BASE_DIR NEW_DIR...
O=$1; BASE=$2; shift 2
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
for d in "$@"; do
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=checks timeout 45 $d/dev_custom mla > /dev/null 2> $O/chk_$n.log; rc=$?
  echo "checks $n rc=$rc ok=$(grep -c ' ok$' $O/chk_$n.log) failed=$(grep -c FAILED $O/chk_$n.log) $(( $(date +%s) - s )) s"
  grep -E "fp8  B=[0-9]+ h=32" $O/chk_$n.log | sed 's/mla_decode check //'
done
for rep in 1 2; do
  for d in $BASE "$@"; do
    n=$(basename $d); s=$(date +%s)
    MOESIM_MLA_SWEEP=f8w timeout ${TO:-30} $d/dev_custom mla > /dev/null 2> $O/f8w_${n}_$rep.log; rc=$?
    echo "== $n rep$rep rc=$rc $(( $(date +%s) - s )) s"
    grep -E "FAIL|!!!!!" $O/f8w_${n}_$rep.log | head -3
    grep -E "^mla_decode fp8 " $O/f8w_${n}_$rep.log | cut -c1-110
  done
done
if [ "${PROF:-0}" = 1 ]; then
  d=$1; s=$(date +%s)
  MOESIM_MLA_SWEEP=prof32 timeout 60 ncu --clock-control none --print-units base --section SpeedOfLight --section SchedulerStats \
    --section WarpStateStats --section InstructionStats --section ComputeWorkloadAnalysis \
    -k regex:mla_wg_kernel --launch-skip 1 --launch-count 1 $d/dev_custom mla > $O/ncu_$(basename $d).txt 2>&1
  echo "ncu rc=$? $(( $(date +%s) - s )) s"
  grep -E "Duration|Issue Slots Busy|Executed Ipc Active|Warp Cycles Per Issued|Stall|Executed Instructions  " $O/ncu_$(basename $d).txt | head -40
fi
