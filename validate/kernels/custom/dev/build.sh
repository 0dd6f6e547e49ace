#!/bin/bash
# DEV ONLY: builds custom/dev/dev_custom into build-custom/ (run from the repo root).
set -e
OUT=${1:-build-custom}
mkdir -p "$OUT"
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
FLAGS="-O3 -std=c++20 -gencode arch=compute_90a,code=sm_90a -lineinfo -Xptxas -v"
K=validate/kernels
pids=()
for f in $K/custom/router.cu $K/custom/permute.cu $K/custom/mla_decode.cu $K/custom/dev/dev_harness.cu $K/custom/dev/dev_main.cu; do
  $NVCC $FLAGS -c $f -o $OUT/$(basename $f .cu).o > $OUT/$(basename $f .cu).log 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait $p || rc=1; done
if [ $rc != 0 ]; then cat $OUT/*.log | grep -v "^ptxas info" | head -80; exit 1; fi
$NVCC -gencode arch=compute_90a,code=sm_90a $OUT/*.o -o $OUT/dev_custom
echo built $OUT/dev_custom
