#!/bin/bash
# DEV ONLY (session 5 follow-up, mla fp8 h=32): nvidia-smi log (clocks, power, throttle reasons,
# every 100 ms) around everything; small-shape checks of each build; then ROUNDS rounds of
# SWEEP (default f8g: the fp8 h=32 points with B*s >= 2^20) over BASE and the builds whose
# checks pass, interleaved, each run stamped with its start/end time; then GRID="dirs" (f8h32).
# Stops starting runs once LIMIT seconds (default 170) have passed. Results: $O/all.tgz.
# F8="dirs": MOESIM_MLA_SWEEP=f8 (the other fp8 / bf16 paths) after everything else.
# Usage: [ROUNDS=n] [SWEEP=f8g] [GRID="d"] [F8="d"] [LIMIT=s] gpu_wg6.sh OUT BASE_DIR NEW_DIR...
O=$1; BASE=$2; shift 2
T0=$(date +%s)
L=$(mktemp -d); mkdir -p $L/l
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader | tee $L/l/gpu.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms 100 > $L/l/smi.csv 2> $L/l/smi.err & SMI=$!
left() { [ $(( $(date +%s) - T0 )) -lt ${LIMIT:-170} ]; }
ok=()
for d in "$@"; do
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=checks timeout 45 $d/dev_custom mla > /dev/null 2> $L/l/chk_$n.log; rc=$?
  nf=$(grep -c FAILED $L/l/chk_$n.log); nok=$(grep -c ' ok$' $L/l/chk_$n.log)
  echo "checks $n rc=$rc ok=$nok failed=$nf $(( $(date +%s) - s )) s"
  [ $rc = 0 ] && [ $nf = 0 ] && [ $nok -ge 24 ] && ok+=($d)
done
for rep in $(seq 1 ${ROUNDS:-3}); do
  for d in $BASE "${ok[@]}"; do
    left || break 2
    n=$(basename $d); s=$(date +%s.%N)
    MOESIM_MLA_SWEEP=${SWEEP:-f8g} timeout ${TO:-40} $d/dev_custom mla > /dev/null 2> $L/l/sw_${n}_$rep.log; rc=$?
    echo "== $n rep$rep rc=$rc $(date -d @${s%.*} +%T)-$(date +%T) fails=$(grep -c -E 'FAIL|!!!!!' $L/l/sw_${n}_$rep.log)"
    grep -E "^mla_decode fp8 +B= *(64|128|256) s= *(4096|8192|16384|32768) h= 32" $L/l/sw_${n}_$rep.log | awk '{printf "%s%s %s%s %s us | ", $3,$4,$5,$6,$11} END {print ""}'
  done
done
for d in $GRID; do
  left || break
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=f8h32 timeout 45 $d/dev_custom mla > /dev/null 2> $L/l/grid_$n.log; rc=$?
  echo "== grid $n rc=$rc $(( $(date +%s) - s )) s points=$(grep -c '^mla_decode fp8 ' $L/l/grid_$n.log) fail=$(grep -c -E 'FAIL|!!!!!' $L/l/grid_$n.log)"
done
for d in $F8; do
  left || break
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=f8 timeout 45 $d/dev_custom mla > /dev/null 2> $L/l/f8_$n.log; rc=$?
  echo "== f8 $n rc=$rc $(( $(date +%s) - s )) s fail=$(grep -c -E 'FAIL|!!!!!' $L/l/f8_$n.log)"
  grep -E "^mla_decode " $L/l/f8_$n.log | awk '{printf "%s %s%s %s%s h%s %s us | ", $2,$3,$4,$5,$6,$8,$11} END {print ""}'
done
kill $SMI
awk -F', ' 'NR>1 {c[$2]++} END {for (k in c) print "smi clocks.sm", k, c[k]}' $L/l/smi.csv | sort -k3 -n | tail -6
awk -F', ' 'NR>1 {c[$6]++} END {for (k in c) print "smi reasons", k, c[k]}' $L/l/smi.csv | sort -k4 -n | tail -6
echo "total $(( $(date +%s) - T0 )) s"
tar czf $O/all.tgz -C $L l
