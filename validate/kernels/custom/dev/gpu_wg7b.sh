#!/bin/bash
# DEV ONLY (session 5, third helper): call 2. nvidia-smi log; checks of NEW (default + F8H16=wg2);
# f8h16cmp (new kernel vs mla_fp8_kernel, all outputs); f8h16 grid of NEW with F8H16=wg2 (new
# kernel everywhere) and default (GRIDK="wg2 def"; "def def" = default twice); then ROUNDS rounds of SWEEP (default f8; BSWEEP /
# NSWEEP per build) BASE / NEW interleaved.
O=$1; BASE=$2; NEW=$3
T0=$(date +%s)
L=$(mktemp -d); mkdir -p $L/l
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms 100 > $L/l/smi.csv 2> $L/l/smi.err & SMI=$!
left() { [ $(( $(date +%s) - T0 )) -lt ${LIMIT:-170} ]; }
n=$(basename $NEW)
for k in def wg2; do
  s=$(date +%s)
  if [ $k = wg2 ]; then export MOESIM_MLA_F8H16=wg2; fi
  MOESIM_MLA_SWEEP=checks timeout 45 $NEW/dev_custom mla > /dev/null 2> $L/l/chk_${n}_$k.log; rc=$?
  unset MOESIM_MLA_F8H16
  echo "checks $n $k rc=$rc ok=$(grep -c ' ok$' $L/l/chk_${n}_$k.log) failed=$(grep -c FAILED $L/l/chk_${n}_$k.log) $(( $(date +%s) - s )) s"
done
s=$(date +%s)
MOESIM_MLA_SWEEP=f8h16cmp timeout 60 $NEW/dev_custom mla > /dev/null 2> $L/l/cmp_$n.log; echo "cmp rc=$? $(( $(date +%s) - s )) s"
grep "cmp" $L/l/cmp_$n.log
for k in ${GRIDK:-wg2 def}; do
  s=$(date +%s)
  if [ $k = wg2 ]; then export MOESIM_MLA_F8H16=wg2; fi
  MOESIM_MLA_SWEEP=f8h16 timeout 60 $NEW/dev_custom mla > /dev/null 2> $L/l/grid_${n}_$k.log; rc=$?
  unset MOESIM_MLA_F8H16
  echo "== grid $n $k rc=$rc $(( $(date +%s) - s )) s points=$(grep -c '^mla_decode fp8 ' $L/l/grid_${n}_$k.log) fail=$(grep -c -E 'FAIL|!!!!!' $L/l/grid_${n}_$k.log)"
done
for rep in $(seq 1 ${ROUNDS:-2}); do
  for d in $BASE $NEW; do
    left || break 2
    m=$(basename $d); s=$(date +%s); sw=${NSWEEP:-${SWEEP:-f8}}; [ $d = $BASE ] && sw=${BSWEEP:-${SWEEP:-f8}}
    MOESIM_MLA_SWEEP=$sw timeout 45 $d/dev_custom mla > /dev/null 2> $L/l/sw_${m}_$rep.log; rc=$?
    echo "== $m rep$rep rc=$rc $(date -d @$s +%T)-$(date +%T) fails=$(grep -c -E 'FAIL|!!!!!' $L/l/sw_${m}_$rep.log)"
    grep -E '^mla_decode ' $L/l/sw_${m}_$rep.log | sed -E 's/ +/ /g; s/mla_decode //; s/ TFLOP.*//'
  done
done
kill $SMI
awk -F', ' 'NR>1 {c[$2]++} END {for (k in c) print "smi clocks.sm", k, c[k]}' $L/l/smi.csv | sort -k3 -n | tail -4
awk -F', ' 'NR>1 {c[$6]++} END {for (k in c) print "smi reasons", k, c[k]}' $L/l/smi.csv | sort -k4 -n | tail -4
echo "total $(( $(date +%s) - T0 )) s"
tar czf $O/all.tgz -C $L l
