#!/usr/bin/env bash
# Calibration machinery: lmc plan --calibrate trains GPT-2 d6 and d12 for a
# few steps with `lmc train` and prints, for each, the measured and the
# predicted step time and their error. How close the prediction is on this machine is a
# timing question: bench/bench_plan_calibrate.sh measures it (goal 15%).
. "$(dirname "$0")/lib.sh"

$LMC_FAST plan --calibrate --model d6,d12 --batch 2 --seq 64 --steps 3 --skip 1 --threads 1 \
    --tolerance 0 >"$T/cal.txt" 2>&1
rc=$?
cat "$T/cal.txt"
[ $rc -eq 0 ] && echo "ok   calibration ran (--tolerance 0: not held to one)" || { echo "FAIL calibration rc $rc"; fails=$((fails + 1)); }
for m in d6 d12; do
    if grep -qE "^  $m +[0-9]+ +[0-9.]+ +[0-9.]+ +[-+][0-9.]+%" "$T/cal.txt"; then
        echo "ok   row for $m: $(grep -E "^  $m " "$T/cal.txt")"
    else
        echo "FAIL no measured/predicted row for $m"; fails=$((fails + 1))
    fi
done
finish
