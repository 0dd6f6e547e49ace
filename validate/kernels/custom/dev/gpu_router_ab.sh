#!/bin/bash
# DEV ONLY: router suite of several harness binaries, interleaved twice. Usage: gpu_router_ab.sh OUT_DIR BIN...
O=$1; shift
for i in 1 2; do for bin in "$@"; do n=$(basename $bin)
  $bin --suite router --out $O/x.jsonl 2> $O/router_${n}_$i.log; echo "$n $i rc=$?"; done; done
cd $O; rm -f *.jsonl; grep -h -E "FAIL|!!!!!" *.log | head
for f in router_*.log; do echo "== $f"; grep -E "T=( 16384| 65536|131072)" $f | grep -E "deepseek|kimi" | cut -c1-70; done
