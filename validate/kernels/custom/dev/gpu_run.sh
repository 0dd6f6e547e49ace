#!/bin/bash
# DEV ONLY: one GPU call of the dev loop. Usage: gpu_run.sh BIN_DIR OUT_DIR [router] [mla] [mlafull]
# Runs the dev binary's suites and keeps stderr logs under OUT_DIR.
B=$1; O=$2; shift 2
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
for what in "$@"; do
  case $what in
    router) $B/dev_custom router > $O/router.jsonl 2> $O/router.txt; echo "router rc=$?" ;;
    mla) MOESIM_MLA_SWEEP=dev $B/dev_custom mla > $O/mla.jsonl 2> $O/mla.txt; echo "mla rc=$?" ;;
    mlaquick) $B/dev_custom --quick mla > $O/mlaq.jsonl 2> $O/mlaq.txt; echo "mlaq rc=$?" ;;
  esac
done
cd $O; grep -h -E "FAIL|CHECK|rc=|FATAL" *.txt | head -20
grep -h -E "T= 16384|T=     1 " router.txt 2>/dev/null
grep -h -E "check|fp8 .*(B= 256|B=  64)|bf16 .*B= 256 s= 32768 h= (16|32)" mla.txt 2>/dev/null
