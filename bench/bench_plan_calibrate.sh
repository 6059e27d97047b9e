#!/usr/bin/env bash
# The planner's accuracy on this machine; the goal is within 15%. Timing
# checks, so they live here and not in the test suite: run on a quiet machine.
#
#   bash bench/bench_plan_calibrate.sh [threads]
#       lmc plan --calibrate trains GPT-2 d6 and d12 for a few steps with
#       `lmc train` and prints the predicted step time beside the measured one.
#   bash bench/bench_plan_calibrate.sh --fits N
#       runs tests/cli/test_plan_calibrated.sh N times (each: a fresh d6 fit
#       on 1 rank predicting a d12 run and a 2-rank d6 run, a 2-rank d6 fit
#       predicting a 2-rank d12 run; only steps that got their cores count)
#       and prints each case's errors, their median and how many are within
#       15%, with the load average of each repetition.
cd "$(dirname "$0")/.."
LMC=${LMC:-build/lmc}
if [ "${1:-}" != --fits ]; then
    exec $LMC plan --calibrate --model d6,d12 --batch 2 --seq 128 --steps 4 --skip 1 --threads "${1:-1}" --tolerance 0.15
fi
N=${2:-3}
PY=${PY:-/usr/bin/python3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$N"); do
    echo "-- fit $i of $N, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    LMC=$LMC bash tests/cli/test_plan_calibrated.sh 2>&1 | grep -E "error [+-]|^FAIL" | tee -a "$out"
done
"$PY" - "$out" <<'PYEOF'
import re, statistics, sys
cases = {}
for line in open(sys.argv[1]):
    m = re.match(r"ok   (\S+): .*\(error ([+-][0-9.]+)%", line)
    if m:
        cases.setdefault(m[1], []).append(float(m[2]))
names = {"d12": "1-rank d6 fit -> d12", "dp2": "1-rank d6 fit -> 2-rank d6", "dp2-d12": "2-rank d6 fit -> 2-rank d12"}
print("%-30s %6s %8s %10s  errors" % ("case", "fits", "median", "within 15%"))
for k, v in cases.items():
    print("%-30s %6d %+7.1f%% %7d/%-2d  %s" % (names.get(k, k), len(v), statistics.median(v),
          sum(abs(e) <= 15 for e in v), len(v), " ".join("%+.1f" % e for e in v)))
PYEOF
