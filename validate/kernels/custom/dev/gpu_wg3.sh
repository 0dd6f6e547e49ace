#!/bin/bash
# DEV ONLY (session 4b): gpu_wg2.sh (checks of the new builds, f8w A/B x2, ncu of the first
# new build), then the 42 fp8 h=32 grid points (MOESIM_MLA_SWEEP=f8h32, timed + sampled-head
# checks) for each dir in $GRID. Usage: GRID="d1 d2" gpu_wg3.sh OUT BASE_DIR NEW_DIR...
O=$1
PROF=1 bash $(dirname $0)/gpu_wg2.sh "$@"
for d in $GRID; do
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=f8h32 timeout 40 $d/dev_custom mla > /dev/null 2> $O/grid_$n.log; rc=$?
  echo "== grid $n rc=$rc $(( $(date +%s) - s )) s points=$(grep -c '^mla_decode fp8 ' $O/grid_$n.log) fail=$(grep -c -E 'FAIL|!!!!!' $O/grid_$n.log)"
done
