#!/bin/bash
# DEV ONLY: dev_custom for mla_decode work, built into OUT (default build-mla) from the
# working tree's mla_decode.cu and HEAD's router.cu / permute.cu (so concurrent edits of
# those files do not break the build). Extra args go to nvcc for mla_decode.cu only,
# e.g. build_mla.sh build-mla-swap -DMLA_WG_SWAP=1.
set -e
OUT=${1:-build-mla}; shift || true
mkdir -p "$OUT"
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
FLAGS="-O3 -std=c++20 -gencode arch=compute_90a,code=sm_90a -lineinfo -Xptxas -v"
K=validate/kernels
INC="-I $K/custom -I $K"
git show HEAD:$K/custom/router.cu > $OUT/router_head.cu
git show HEAD:$K/custom/permute.cu > $OUT/permute_head.cu
pids=()
$NVCC $FLAGS "$@" -c $K/custom/mla_decode.cu -o $OUT/mla_decode.o > $OUT/mla_decode.log 2>&1 & pids+=($!)
for f in router_head permute_head; do
  [ -f $OUT/$f.o ] && [ $OUT/$f.o -nt $OUT/$f.cu ] && continue
  $NVCC $FLAGS $INC -c $OUT/$f.cu -o $OUT/$f.o > $OUT/$f.log 2>&1 & pids+=($!)
done
for f in dev_harness dev_main; do
  [ -f $OUT/$f.o ] && continue
  $NVCC $FLAGS -c $K/custom/dev/$f.cu -o $OUT/$f.o > $OUT/$f.log 2>&1 & pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait $p || rc=1; done
if [ $rc != 0 ]; then cat $OUT/*.log | grep -v "^ptxas info" | head -80; exit 1; fi
$NVCC -gencode arch=compute_90a,code=sm_90a $OUT/*.o -o $OUT/dev_custom
echo built $OUT/dev_custom
