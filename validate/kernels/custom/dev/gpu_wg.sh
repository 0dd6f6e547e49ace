#!/bin/bash
# DEV ONLY (mla fp8 h=32 wgmma work): small-shape checks of each build dir given, then the
# f8 sweep (MOESIM_MLA_SWEEP=f8) with the first build whose checks all pass: new kernel,
# old kernel (MOESIM_MLA_F8H32=old), new again. Usage: gpu_wg.sh OUT BUILD_DIR...
O=$1; shift
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
pick=""
for d in "$@"; do
  n=$(basename $d); s=$(date +%s)
  MOESIM_MLA_SWEEP=checks timeout 60 $d/dev_custom mla > /dev/null 2> $O/chk_$n.log; rc=$?
  nf=$(grep -c FAILED $O/chk_$n.log); nok=$(grep -c " ok$" $O/chk_$n.log)
  echo "checks $n rc=$rc ok=$nok failed=$nf $(( $(date +%s) - s )) s"
  grep -E "fp8  B=[0-9]+ h=32" $O/chk_$n.log
  [ -z "$pick" ] && [ $rc = 0 ] && [ $nf = 0 ] && [ $nok -ge 20 ] && pick=$d
done
[ -z "$pick" ] && { echo "no build passed"; exit 1; }
echo "using $pick"
cuobjdump -sass $pick/dev_custom | awk '/Function : /{p = ($0 ~ /mla_wg_kernel/)} p' > $O/sass_wg.txt
for run in new1 old1 new2 ${EXTRA_RUNS}; do
  s=$(date +%s)
  case $run in old*) k=old ;; *) k=new ;; esac
  MOESIM_MLA_F8H32=$k MOESIM_MLA_SWEEP=f8 timeout 80 $pick/dev_custom mla > /dev/null 2> $O/f8_$run.log; rc=$?
  echo "== $run rc=$rc $(( $(date +%s) - s )) s"
  grep -E "FAIL|!!!!!" $O/f8_$run.log | head -5
  grep -E "^mla_decode (fp8|bf16) " $O/f8_$run.log | cut -c1-110
done
