#!/bin/bash
# DEV ONLY: dev sweep then ncu profiles. Usage: gpu_both.sh BIN_DIR OUT_DIR
D=$(dirname $0)
bash $D/gpu_run.sh $1 $2 router mla
mkdir -p $2/prof && bash $D/gpu_prof.sh $1 $2/prof > /dev/null 2>&1
cd $2/prof && grep -H -E "Duration|Executed Instructions  |Issue Slots Busy|SM Frequency" ncu_*.txt | sed 's/  */ /g'
rm -f sass.txt
