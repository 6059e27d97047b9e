#!/usr/bin/env bash
# lmc plan learns from the fleet's own runs (issue 23): a d6 run on this
# machine's cpu chip is fitted (--calibrate-log --save-calibration) and the
# calibrated plan predicts a d12 run and a 2-rank d6 run (--calibration);
# a 2-rank d6 fit (compute and communication apart) predicts a 2-rank d12
# run. Each prediction must be the fit's formula; its error against the
# run's median step is printed (timing: bench/bench_plan_calibrate.sh
# repeats this script and holds the errors to the issue's 15%).
# A shared machine stretches wall-clock steps, so only the steps that got
# their cores count, in the fit and in the runs compared: lmc train logs
# each rank's CPU time of each step (cpu_ms), and lmc plan keeps the steps
# where every rank got at least 90% of step x threads (it prints how many).
# The fit needs 5 such steps and each compared run 5 too; a run that does
# not get them is run again (3 tries); a machine that never gives them
# fails the test, with the shares it got. The fit and d12 run one thread:
# on a shared machine (the kernel's autogroups share the cores between
# sessions) one thread gets its core far more often than two, and the cpu
# chip's one-thread figures move less from one plan to the next; the
# 2-rank run needs both cores. Always checked: the calibrated
# prediction is the best case less its communication over the fitted
# factor, plus the communication (over its own factor where the fit had
# communication: the 2-rank fit; a 1-rank fit has none), the file
# is refused for another chip, and a log for another chip or model.
# The timed plans run the optimized binary: lmc plan measures the cpu chip
# in its own process, and a sanitizer build measures a slower chip.
. "$(dirname "$0")/lib.sh"
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
"$PY" - "$T/train_000000.bin" <<'PYEOF'
import sys, numpy as np
n = 200000; h = np.zeros(256, dtype=np.int32); h[0], h[1], h[2] = 20240520, 1, n
open(sys.argv[1], "wb").write(h.tobytes() + np.random.RandomState(0).randint(0, 50257, n).astype(np.uint16).tobytes())
PYEOF

# train NAME NP THREADS MODEL STEPS: a run with --log
train() {
    local name=$1 np=$2 th=$3 m=$4 steps=$5 pre=""
    [ "$np" -gt 1 ] && pre="$MPIRUN -np $np"
    $pre $LMC_FAST train --model "$m" --data "$T/train_000000.bin" --batch 2 --seq 64 --steps "$steps" \
        --threads "$th" --log "$T/$name.jsonl" --quiet >"$T/$name.out" 2>&1
}
# kept NAME: the steps of its log that got their cores (lmc plan's count)
kept() { grep -o "^  [0-9]* of the [0-9]* steps got" "$T/$1.pred" | awk '{ print $1 }'; }

for try in 1 2 3; do
    train d6 1 1 d6 16
    $LMC_FAST plan --calibrate-log "$T/d6.jsonl" --model d6 --fleet 1xcpu --save-calibration "$T/cal.json" \
        >"$T/fit.txt" 2>&1 && break
done
if grep -q "calibration .*cal.json: cpu reaches" "$T/fit.txt" && grep -q "only compute fitted" "$T/fit.txt" &&
    "$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); \
    e=c['efficiency']; sys.exit(0 if c['chip']=='cpu' and e['low']<=e['expected']<=e['high'] and c['steps']>=5 and \
    'comm' not in c and abs(e['expected']-c['predicted_ms']/c['measured_ms'])<1e-9 else 1)" "$T/cal.json"; then
    echo "ok   fit on d6 (try $try): $(grep 'reaches' "$T/fit.txt"); $(grep 'steps got' "$T/fit.txt")"
else
    echo "FAIL fit (try $try): $(cat "$T/fit.txt")"; fails=$((fails + 1))
fi

# predict NAME MODEL FLEET NP THREADS STEPS: the calibrated prediction of the run's median step
predict() {
    local name=$1 m=$2 fleet=$3 try
    for try in 1 2 3; do
        train "$name" "$4" "$5" "$m" "$6" || { echo "FAIL $name: $(tail -3 "$T/$name.out")"; fails=$((fails + 1)); return; }
        $LMC_FAST plan --calibrate-log "$T/$name.jsonl" --model "$m" --fleet "$fleet" --calibration "$T/${CAL:-cal}.json" \
            >"$T/$name.pred" 2>&1 || { echo "FAIL $name: $(cat "$T/$name.pred")"; fails=$((fails + 1)); return; }
        [ "$(kept "$name")" -ge 5 ] && break
    done
    "$PY" - "$name" "$m" "$try" "$T/$name.pred" "$T/${CAL:-cal}.json" <<'PYEOF' || fails=$((fails + 1))
import json, re, sys
name, m, tries, out = sys.argv[1], sys.argv[2], sys.argv[3], open(sys.argv[4]).read()
commfit = json.load(open(sys.argv[5])).get("comm", {}).get("expected")  # None: communication not fitted
got = re.search(r"^  (\d+) of the (\d+) steps got 90% of their cores .*median share (\d+)%", out, re.M)
cal = re.search(r"compute ([0-9.]+) of the best case, communication (?:not )?fitted.* best case ([0-9.]+) ms, "
                r"of it ([0-9.]+) ms exposed", out)
row = re.search(r"^  " + re.escape(m) + r" +(\d+) +([0-9.]+) +([0-9.]+) ", out, re.M)
if not (got and cal and row):
    print(f"FAIL {name}: unexpected output:\n{out}"); sys.exit(1)
kept, used, share = int(got[1]), int(got[2]), int(got[3])
fac, best, comm = float(cal[1]), float(cal[2]), float(cal[3])
measured, predicted = float(row[2]), float(row[3])
# the factor and times are printed rounded: that bounds the agreement
want = (best - comm) / fac + comm / (commfit or 1)
if abs(predicted - want) > 0.1 + (1e-3 + 0.0005 / fac) * want + 1e-4 * comm / (commfit or 1):
    print(f"FAIL {name}: calibrated {predicted} ms is not ({best} - {comm}) / {fac} + {comm} / {commfit or 1} = "
          f"{want:.1f}"); sys.exit(1)
if kept < 5:
    print(f"FAIL {name}: {tries} runs, the last with {kept} of {used} steps that got their cores (median share "
          f"{share}%): the machine is too busy to check the calibration"); sys.exit(1)
err = predicted / measured - 1
# the error is a timing figure: reported here, held to the issue's 15% by
# bench/bench_plan_calibrate.sh over repeated fits (a single short fit on a
# shared VM moves by 10-20%)
print(f"ok   {name}: calibrated {predicted:.1f} ms = the fit's formula; measured {measured:.1f} ms "
      f"(error {err:+.1%}; median of {kept} of {used} steps that got their cores, try {tries})")
PYEOF
}
predict d12 d12 1xcpu 1 1 10
# 2 ranks: the 1-rank fit predicting a 2-rank run (communication at the
# best case), and a 2-rank d6 run fitted (compute and the data-parallel
# sync apart, from its comm_ms) predicting a 2-rank d12 run
if command -v mpirun >/dev/null; then
    predict dp2 d6 2xcpu 2 1 12
    for try in 1 2 3; do
        train dp2fit 2 1 d6 16
        $LMC_FAST plan --calibrate-log "$T/dp2fit.jsonl" --model d6 --fleet 2xcpu --save-calibration "$T/cal2.json" \
            >"$T/fit2.txt" 2>&1 && break
    done
    if grep -q "compute and communication fitted apart" "$T/fit2.txt" &&
        "$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(0 if c['comm']['expected'] > 0 else 1)" \
            "$T/cal2.json"; then
        echo "ok   fit on 2-rank d6 (try $try): $(grep 'reaches' "$T/fit2.txt"); $(grep -m1 'fitted apart' "$T/fit2.txt")"
    else
        echo "FAIL 2-rank fit (try $try): $(cat "$T/fit2.txt")"; fails=$((fails + 1))
    fi
    CAL=cal2 predict dp2-d12 d12 2xcpu 2 1 10
else
    echo "FAIL mpirun not found"; fails=$((fails + 1))
fi

# refusals (the timed plans above run the optimized binary: lmc plan measures the cpu
# chip in its own process, and a sanitizer build measures a slower chip than the runs had)
expect_fail "calibration file for another chip" "cal.json: field 'chip' = 'cpu', but the fleet has H100" \
    $LMC plan --model d12 --tokens 10B --fleet 8xH100 --calibration "$T/cal.json"
expect_fail "log from another chip" "d6.jsonl: the run trained on device 'cpu', not on H100" \
    $LMC plan --calibrate-log "$T/d6.jsonl" --model d6 --fleet 1xH100 --save-calibration "$T/x.json"
expect_fail "log from another model" "d6.jsonl: the run's model has 30339456 parameters, --model d12 has" \
    $LMC plan --calibrate-log "$T/d6.jsonl" --model d12 --fleet 1xcpu --save-calibration "$T/x.json"
head -4 "$T/d6.jsonl" >"$T/short.jsonl"
expect_fail "log too short to fit" "short.jsonl: (3 steps after warm-up: too few|only [0-9] of the 3 steps after warm-up got)" \
    $LMC_FAST plan --calibrate-log "$T/short.jsonl" --model d6 --fleet 1xcpu --save-calibration "$T/x.json"
echo '{"format": "lmc-calibration-1", "chip": "cpu", "model": "d6", "params": 1, "steps": 3, "measured_ms": 5,
       "predicted_ms": 4, "efficiency": {"expected": 0.8, "low": 0.9, "high": 0.95}}' >"$T/badcal.json"
expect_fail "calibration file: low above expected" "badcal.json: efficiency needs low <= expected <= high" \
    $LMC plan --model d6 --tokens 1M --fleet 1xcpu --calibration "$T/badcal.json"
[ ! -e "$T/x.json" ] && echo "ok   nothing written when refused" || { echo "FAIL x.json written"; fails=$((fails + 1)); }
finish
