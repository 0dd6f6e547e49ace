#!/bin/bash
# DEV ONLY: SASS of the custom kernels (cuobjdump exists on the GPU machine only).
B=$1; O=$2; PAT=${3:-router_kernel|mla_fp8_kernel}
cuobjdump -sass $B/dev_custom | awk -v pat="$PAT" '/Function : /{p = ($0 ~ pat)} p' > $O/sass.txt; wc -l $O/sass.txt
