#!/bin/bash
# DEV ONLY (session 5, mla fp8 h=32, mla_wg2_kernel): small-shape checks of each NEW build dir,
# then the four large fp8 h=32 points (MOESIM_MLA_SWEEP=f8w: timed + sampled-head checks)
# interleaved BASE / NEW... (REPS rounds, default 2; only builds whose checks pass are timed),
# SASS=1: cuobjdump of mla_wg2_kernel of the first new build, PROF=1: short ncu of it at
# B=64 s=8192 h=32, GRID="dirs": the 42 fp8 h=32 grid points. Everything lands in $O/all.tgz.
# Usage: [REPS=n] [SASS=1] [PROF=1] [GRID="d1 d2"] gpu_wg5.sh OUT BASE_DIR NEW_DIR...
O=$1; BASE=$2; shift 2
L=$(mktemp -d); mkdir -p $L/l
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
ok=()
for d in "$@"; do
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=checks timeout 45 $d/dev_custom mla > /dev/null 2> $L/l/chk_$n.log; rc=$?
  nf=$(grep -c FAILED $L/l/chk_$n.log); nok=$(grep -c ' ok$' $L/l/chk_$n.log)
  echo "checks $n rc=$rc ok=$nok failed=$nf $(( $(date +%s) - s )) s"
  grep -E "fp8  B=[0-9]+ h=32" $L/l/chk_$n.log | sed 's/mla_decode check //'
  [ $rc = 0 ] && [ $nf = 0 ] && [ $nok -ge 24 ] && ok+=($d)
done
for rep in $(seq 1 ${REPS:-2}); do
  for d in $BASE "${ok[@]}"; do
    n=$(basename $d); s=$(date +%s)
    MOESIM_MLA_SWEEP=f8w timeout ${TO:-30} $d/dev_custom mla > /dev/null 2> $L/l/f8w_${n}_$rep.log; rc=$?
    echo "== $n rep$rep rc=$rc $(( $(date +%s) - s )) s"
    grep -E "FAIL|!!!!!" $L/l/f8w_${n}_$rep.log | head -3
    grep -E "^mla_decode fp8 " $L/l/f8w_${n}_$rep.log | cut -c1-110
  done
done
if [ "${SASS:-0}" = 1 ] && [ -n "${ok[0]}" ]; then
  cuobjdump -sass ${ok[0]}/dev_custom | awk '/Function : /{p = ($0 ~ /mla_wg2_kernel/)} p' > $L/l/sass_wg2.txt
  echo "sass lines $(wc -l < $L/l/sass_wg2.txt)"
fi
if [ "${PROF:-0}" = 1 ] && [ -n "${ok[0]}" ]; then
  d=${ok[0]}; s=$(date +%s)
  MOESIM_MLA_SWEEP=prof32 timeout 60 ncu --clock-control none --print-units base --section SpeedOfLight --section SchedulerStats \
    --section WarpStateStats --section InstructionStats --section ComputeWorkloadAnalysis \
    -k regex:mla_wg2_kernel --launch-skip 1 --launch-count 1 $d/dev_custom mla > $L/l/ncu_$(basename $d).txt 2>&1
  echo "ncu rc=$? $(( $(date +%s) - s )) s"
  grep -E "Duration|Issue Slots Busy|Executed Ipc Active|Warp Cycles Per Issued|Executed Instructions  |Bank" $L/l/ncu_$(basename $d).txt | head -20
fi
for d in $GRID; do
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=f8h32 timeout 40 $d/dev_custom mla > /dev/null 2> $L/l/grid_$n.log; rc=$?
  echo "== grid $n rc=$rc $(( $(date +%s) - s )) s points=$(grep -c '^mla_decode fp8 ' $L/l/grid_$n.log) fail=$(grep -c -E 'FAIL|!!!!!' $L/l/grid_$n.log)"
done
tar czf $O/all.tgz -C $L l
