#!/bin/bash
# DEV ONLY: mla dev sweep with the fp8 kernel's 64-token tiles, then fp8 h=16 points with 32-token tiles.
B=$1; O=$2
MOESIM_MLA_SWEEP=dev $B/dev_custom mla > $O/mla64.jsonl 2> $O/mla64.txt; echo "bn64 rc=$?"
MOESIM_MLA_FP8_BN=32 MOESIM_MLA_SWEEP=dev $B/dev_custom mla > $O/mla32.jsonl 2> $O/mla32.txt; echo "bn32 rc=$?"
grep -h -E "FAIL|CHECK" $O/*.txt | head
for f in $O/mla64.txt $O/mla32.txt; do echo "== $f"; grep -E "check fp8|fp8 .* h= 16" $f; done
