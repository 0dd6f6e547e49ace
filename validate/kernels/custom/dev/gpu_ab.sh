#!/bin/bash
# DEV ONLY: A/B of harness binaries on the large fp8 MLA points (MOESIM_MLA_SWEEP=f8),
# interleaved twice, then the router suite of the last one (ROUTER=0 skips it).
# Usage: gpu_ab.sh OUT_DIR BIN...
O=$1; shift
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
for i in 1 2; do
  for bin in "$@"; do
    n=$(basename $bin)
    MOESIM_MLA_SWEEP=f8 $bin --suite mla_decode --out $O/x.jsonl 2> $O/mla_${n}_$i.log; echo "$n $i rc=$?"
  done
done
if [ "${ROUTER:-1}" = 1 ]; then
  s=$(date +%s); ${@: -1} --suite router --out $O/router.jsonl 2> $O/router.log; echo "router rc=$? $(( $(date +%s) - s )) s"
fi
cd $O; rm -f *.jsonl; grep -h -E "FAIL|!!!!!" *.log | head
for f in mla_*.log; do echo "== $f"; grep -E "^mla_decode .*(fp8|bf16)" $f | grep -v check | head -8 | cut -c1-100; done
grep -E "T=( 16384| 65536|131072)" router.log 2>/dev/null
