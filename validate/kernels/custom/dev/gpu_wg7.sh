#!/bin/bash
# DEV ONLY (session 5, third helper, mla fp8 h=16 -> mla_wg2h16_kernel): nvidia-smi log; small-shape
# checks of each NEW build, default routing and MOESIM_MLA_F8H16=wg2 (the new kernel on every fp8
# h=16 shape); ROUNDS rounds of SWEEP (default f8h16g) over BASE and the NEW builds whose checks
# pass, interleaved; then GRID="dirs" (f8h16 grid), F8="dirs" (f8 sweep). LIMIT s (default 190).
# Usage: [ROUNDS=n] [SWEEP=f8h16g] [GRID="d"] [F8="d"] [LIMIT=s] gpu_wg7.sh OUT BASE_DIR NEW_DIR...
O=$1; BASE=$2; shift 2
T0=$(date +%s)
L=$(mktemp -d); mkdir -p $L/l
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader | tee $L/l/gpu.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms 100 > $L/l/smi.csv 2> $L/l/smi.err & SMI=$!
left() { [ $(( $(date +%s) - T0 )) -lt ${LIMIT:-190} ]; }
ok=()
for d in "$@"; do
  n=$(basename $d); good=1
  for k in def wg2; do
    s=$(date +%s)
    if [ $k = wg2 ]; then export MOESIM_MLA_F8H16=wg2; fi
    MOESIM_MLA_SWEEP=checks timeout 45 $d/dev_custom mla > /dev/null 2> $L/l/chk_${n}_$k.log; rc=$?
    unset MOESIM_MLA_F8H16
    nf=$(grep -c FAILED $L/l/chk_${n}_$k.log); nok=$(grep -c ' ok$' $L/l/chk_${n}_$k.log)
    echo "checks $n $k rc=$rc ok=$nok failed=$nf $(( $(date +%s) - s )) s"
    grep -E "fp8  B=[0-9]+ h=16" $L/l/chk_${n}_$k.log
    [ $rc = 0 ] && [ $nf = 0 ] && [ $nok -ge 24 ] || good=0
  done
  [ $good = 1 ] && ok+=($d)
done
for rep in $(seq 1 ${ROUNDS:-3}); do
  for d in $BASE "${ok[@]}"; do
    left || break 2
    n=$(basename $d); s=$(date +%s.%N)
    MOESIM_MLA_SWEEP=${SWEEP:-f8h16g} timeout ${TO:-40} $d/dev_custom mla > /dev/null 2> $L/l/sw_${n}_$rep.log; rc=$?
    echo "== $n rep$rep rc=$rc $(date -d @${s%.*} +%T)-$(date +%T) fails=$(grep -c -E 'FAIL|!!!!!' $L/l/sw_${n}_$rep.log)"
    grep -E '^mla_decode fp8 ' $L/l/sw_${n}_$rep.log | sed -E 's/ +/ /g; s/mla_decode fp8 //; s/ TFLOP.*//'
  done
done
for d in $GRID; do
  left || break
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=f8h16 timeout 60 $d/dev_custom mla > /dev/null 2> $L/l/grid_$n.log; rc=$?
  echo "== grid $n rc=$rc $(( $(date +%s) - s )) s points=$(grep -c '^mla_decode fp8 ' $L/l/grid_$n.log) fail=$(grep -c -E 'FAIL|!!!!!' $L/l/grid_$n.log)"
done
for d in $F8; do
  left || break
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=f8 timeout 45 $d/dev_custom mla > /dev/null 2> $L/l/f8_$n.log; rc=$?
  echo "== f8 $n rc=$rc $(( $(date +%s) - s )) s fail=$(grep -c -E 'FAIL|!!!!!' $L/l/f8_$n.log)"
done
kill $SMI
awk -F', ' 'NR>1 {c[$2]++} END {for (k in c) print "smi clocks.sm", k, c[k]}' $L/l/smi.csv | sort -k3 -n | tail -4
awk -F', ' 'NR>1 {c[$6]++} END {for (k in c) print "smi reasons", k, c[k]}' $L/l/smi.csv | sort -k4 -n | tail -4
echo "total $(( $(date +%s) - T0 )) s"
tar czf $O/all.tgz -C $L l
