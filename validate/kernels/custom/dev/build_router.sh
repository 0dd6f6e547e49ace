#!/bin/bash
# DEV ONLY: router-only dev binary OUT/router_dev from ROUTER_CU (default: custom/router.cu).
# Run from the repo root. A copy of another router.cu (e.g. `git show HEAD:...`) may live in OUT.
set -e
OUT=${1:-build-router}; SRC=${2:-validate/kernels/custom/router.cu}
mkdir -p "$OUT"
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
FLAGS="-O3 -std=c++20 -gencode arch=compute_90a,code=sm_90a -lineinfo -I validate/kernels/custom $DEFS"
$NVCC $FLAGS -Xptxas -v -c $SRC -o $OUT/router.o > $OUT/router.log 2>&1 || { grep -v "^ptxas info" $OUT/router.log | head -60; exit 1; }
$NVCC $FLAGS -c validate/kernels/custom/dev/router_dev.cu -o $OUT/router_dev.o
$NVCC -gencode arch=compute_90a,code=sm_90a $OUT/router.o $OUT/router_dev.o -o $OUT/router_dev
grep -A1 -E "Compiling entry.*router" $OUT/router.log | grep -E "Used|spill" | head; grep -E "spill" $OUT/router.log | sort | uniq -c | head
echo built $OUT/router_dev
