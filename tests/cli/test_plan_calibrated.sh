#!/usr/bin/env bash
# lmc plan learns from the fleet's own runs (issue 23): a short d6 run on
# this machine's cpu chip is fitted (--calibrate-log --save-calibration) and
# the calibrated plan predicts a d12 run and a 2-rank d6 run (--calibration)
# within 15%. Wall-clock steps on a shared machine are longer than the
# model's: when a run got less than 90% of its cores (bash's time: user +
# sys over real x threads) that comparison is reported as inconclusive and
# not held to 15%, as lmc plan --calibrate does. Always checked: the
# calibrated prediction is the best case over the fitted factor, the file is
# refused for another chip, and a log is refused for another chip or model.
. "$(dirname "$0")/lib.sh"
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
TIMEFORMAT='%R %U %S'
"$PY" - "$T/train_000000.bin" <<'PYEOF'
import sys, numpy as np
n = 200000; h = np.zeros(256, dtype=np.int32); h[0], h[1], h[2] = 20240520, 1, n
open(sys.argv[1], "wb").write(h.tobytes() + np.random.RandomState(0).randint(0, 50257, n).astype(np.uint16).tobytes())
PYEOF

# train NAME NP THREADS MODEL STEPS: a short run with --log; prints its share of the cores
train() {
    local name=$1 np=$2 th=$3 m=$4 steps=$5 pre=""
    [ "$np" -gt 1 ] && pre="$MPIRUN -np $np"
    { time $pre $LMC_FAST train --model "$m" --data "$T/train_000000.bin" --batch 2 --seq 64 --steps "$steps" \
        --threads "$th" --log "$T/$name.jsonl" --quiet >"$T/$name.out" 2>&1; } 2>"$T/$name.time"
    awk -v c=$((np * th)) '{ printf "%.2f", ($2 + $3) / ($1 * c) }' "$T/$name.time"
}

share6=$(train d6 1 2 d6 8)
$LMC_FAST plan --calibrate-log "$T/d6.jsonl" --model d6 --fleet 1xcpu --save-calibration "$T/cal.json" >"$T/fit.txt" 2>&1
if grep -q "calibration .*cal.json: cpu reaches" "$T/fit.txt" && "$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); \
    e=c['efficiency']; sys.exit(0 if c['chip']=='cpu' and e['low']<=e['expected']<=e['high'] and \
    abs(e['expected']-c['predicted_ms']/c['measured_ms'])<1e-9 else 1)" "$T/cal.json"; then
    echo "ok   fit on d6: $(grep 'reaches' "$T/fit.txt")"
else
    echo "FAIL fit: $(cat "$T/fit.txt" "$T/cal.json")"; fails=$((fails + 1))
fi

# predict NAME MODEL SHARE FLEET: the calibrated prediction of the run's median step
predict() {
    local name=$1 m=$2 share=$3 fleet=$4
    $LMC_FAST plan --calibrate-log "$T/$name.jsonl" --model "$m" --fleet "$fleet" --calibration "$T/cal.json" >"$T/$name.pred" 2>&1 ||
        { echo "FAIL $name: $(cat "$T/$name.pred")"; fails=$((fails + 1)); return; }
    local row best fac
    row=$(grep -E "^  $m +[0-9]+ " "$T/$name.pred")
    best=$(grep -o "best case [0-9.]* ms" "$T/$name.pred" | grep -o "[0-9.]*")
    fac=$(grep -o "calibrated by .*: [0-9.]* of the best case" "$T/$name.pred" | grep -o "[0-9.]* of" | grep -o "[0-9.]*")
    "$PY" - "$row" "$best" "$fac" "$share" "$name" <<'PYEOF' || fails=$((fails + 1))
import sys
row, best, fac, share, name = sys.argv[1].split(), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
measured, predicted = float(row[2]), float(row[3])
# the factor is printed to 3 decimals: its rounding (0.0005 / fac) bounds the
# agreement, which matters when a loaded machine fits a small factor
if abs(predicted - best / fac) > 0.06 + (1e-3 + 0.0005 / fac) * predicted:
    print(f"FAIL {name}: calibrated {predicted} ms is not the best case {best} / {fac}"); sys.exit(1)
err = predicted / measured - 1
if share < 0.9:
    print(f"ok   {name}: calibrated {predicted:.1f} ms vs measured {measured:.1f} ms ({err:+.1%}); inconclusive: "
          f"busy machine (the runs got {share:.0%} of their cores), not held to 15%")
elif abs(err) > 0.15:
    print(f"FAIL {name}: calibrated {predicted:.1f} ms vs measured {measured:.1f} ms ({err:+.1%}), over 15%"); sys.exit(1)
else:
    print(f"ok   {name}: calibrated {predicted:.1f} ms vs measured {measured:.1f} ms ({err:+.1%}), within 15%")
PYEOF
}
share12=$(train d12 1 2 d12 5)
predict d12 d12 "$(awk -v a="$share6" -v b="$share12" 'BEGIN { print (a < b ? a : b) }')" 1xcpu
if command -v mpirun >/dev/null; then
    share2=$(train dp2 2 1 d6 8)
    predict dp2 d6 "$(awk -v a="$share6" -v b="$share2" 'BEGIN { print (a < b ? a : b) }')" 2xcpu
fi

# refusals (the timed plans above run the optimized binary: lmc plan measures the cpu
# chip in its own process, and a sanitizer build measures a slower chip than the runs had)
expect_fail "calibration file for another chip" "cal.json: field 'chip' = 'cpu', but the fleet has H100" \
    $LMC plan --model d12 --tokens 10B --fleet 8xH100 --calibration "$T/cal.json"
expect_fail "log from another chip" "d6.jsonl: the run trained on device 'cpu', not on H100" \
    $LMC plan --calibrate-log "$T/d6.jsonl" --model d6 --fleet 1xH100 --save-calibration "$T/x.json"
expect_fail "log from another model" "d6.jsonl: the run's model has 30339456 parameters, --model d12 has" \
    $LMC plan --calibrate-log "$T/d6.jsonl" --model d12 --fleet 1xcpu --save-calibration "$T/x.json"
echo '{"format": "lmc-calibration-1", "chip": "cpu", "model": "d6", "params": 1, "steps": 3, "measured_ms": 5,
       "predicted_ms": 4, "efficiency": {"expected": 0.8, "low": 0.9, "high": 0.95}}' >"$T/badcal.json"
expect_fail "calibration file: low above expected" "badcal.json: efficiency needs low <= expected <= high" \
    $LMC plan --model d6 --tokens 1M --fleet 1xcpu --calibration "$T/badcal.json"
[ ! -e "$T/x.json" ] && echo "ok   nothing written when refused" || { echo "FAIL x.json written"; fails=$((fails + 1)); }
finish
