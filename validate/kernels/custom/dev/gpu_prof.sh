#!/bin/bash
# DEV ONLY: ncu profiles of single points. Usage: gpu_prof.sh BIN_DIR OUT_DIR
B=$1; O=$2
NCU="ncu --clock-control none --set full --print-units base"
MOESIM_ROUTER_ONLY=deepseek_r1:16384 $NCU -k regex:router_kernel --launch-skip 2 --launch-count 1 $B/dev_custom router > $O/ncu_router_ds.txt 2>&1; echo "ncu router ds rc=$?"
MOESIM_ROUTER_ONLY=qwen3:16384 $NCU -k regex:router_kernel --launch-skip 2 --launch-count 1 $B/dev_custom router > $O/ncu_router_qw.txt 2>&1; echo "ncu router qw rc=$?"
MOESIM_MLA_SWEEP=prof16 $NCU -k regex:mla_fp8_kernel --launch-skip 1 --launch-count 1 $B/dev_custom mla > $O/ncu_mla16.txt 2>&1; echo "ncu mla16 rc=$?"
MOESIM_MLA_SWEEP=prof32 $NCU -k regex:mla_fp8_kernel --launch-skip 1 --launch-count 1 $B/dev_custom mla > $O/ncu_mla32.txt 2>&1; echo "ncu mla32 rc=$?"
cuobjdump -sass $B/dev_custom | awk '/Function : .*(router_kernel|mla_fp8_kernel)/{p=1} /Function : /{if ($0 !~ /router_kernel|mla_fp8_kernel/) p=0} p' > $O/sass.txt
wc -l $O/*.txt
grep -h -E "Duration|Issue Slots Busy|Executed Ipc Active|Warp Cycles Per Issued|Achieved Occupancy|Memory Throughput|DRAM Throughput" $O/ncu_*.txt
