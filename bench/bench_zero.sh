#!/usr/bin/env bash
# ZeRO-3 and recomputation beside their references, in the same run:
#  1. throughput: d12, 2 ranks x 1 thread, ZeRO-3 vs ZeRO-1 (goal: at most
#     10% slower, the gathers hidden behind compute), with communication
#     busy (the collectives running) vs exposed (the step waiting for them);
#  2. --recompute full vs none, same layout (goal: at most 35% slower);
#  3. the headline: GPT-2 large (d36, 774M) on 2 ranks with --zero 3
#     --recompute full, beside --zero 0 under the same per-rank memory limit
#     (half this machine's memory each), where it cannot allocate.
# Usage: bash bench/bench_zero.sh [steps]   (run by hand; ~15 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # LMC, PY, MPIRUN
STEPS=${1:-8}
T=$(mktemp -d /tmp/lmc_bench_zero_XXXXXX)
trap 'rm -rf "$T"' EXIT
random_tokens "$T/train.bin" 2000000 50257

# summary LOG: median step ms (after the first two), exposed and busy comm ms, peak RSS per rank
summary() {
    "$PY" - "$1" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][2:]
med = lambda k: statistics.median(r[k] for r in rows)
print("%.0f %.1f %.1f %s" % (med("ms"), med("comm_ms"), med("comm_busy_ms"),
                             "/".join("%.0f" % x for x in rows[-1]["rss_mb"])))
PYEOF
}

run() { # NAME FLAGS...
    local name=$1; shift
    $MPIRUN -np 2 $LMC train --data "$T/train.bin" --threads 1 --steps "$STEPS" --quiet --log "$T/$name.jsonl" "$@" \
        >"$T/$name.out" 2>&1 || { echo "$name failed:"; tail -5 "$T/$name.out"; return 1; }
    summary "$T/$name.jsonl"
}

echo "== 1-2. d12, 2 ranks x 1 thread, batch 4 x 128 per rank, $STEPS steps (median step, from step 3)"
printf '%-28s %9s %10s %9s %12s\n' layout "step ms" "exposed" "busy" "RSS MB/rank"
declare -A ms
for cfg in "zero1:--zero 1" "zero3:--zero 3" "zero1-full:--zero 1 --recompute full" "zero3-full:--zero 3 --recompute full"; do
    name=${cfg%%:*}
    read -r m e b r <<<"$(run "$name" --model d12 --batch 4 --seq 128 ${cfg#*:})"
    ms[$name]=$m
    printf '%-28s %9s %10s %9s %12s\n' "$name" "$m" "$e" "$b" "$r"
done
"$PY" -c "import sys; a, b, c = map(float, sys.argv[1:]); print('ZeRO-3 / ZeRO-1 step time: %.3f (goal <= 1.10)' % (b / a)); print('recompute full / none (ZeRO-1): %.3f (goal <= 1.35)' % (c / a))" \
    "${ms[zero1]}" "${ms[zero3]}" "${ms[zero1-full]}"

echo
echo "== 3. GPT-2 large (d36, 774M) on 2 ranks, batch 1 x 256, each rank limited to half the machine's memory"
half=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) * 1024 / 2 ))
echo "per-rank address-space limit: $((half / 1000000)) MB"
$MPIRUN -np 2 prlimit --as=$half $LMC train --model d36 --data "$T/train.bin" --threads 1 --steps 3 --batch 1 \
    --seq 256 --zero 3 --recompute full --log "$T/d36z3.jsonl" >"$T/d36z3.out" 2>&1 &&
    echo "zero 3 + recompute full: trains; $(grep -m1 'done' "$T/d36z3.out"); per-step (ms, exposed, busy, RSS/rank): $(summary "$T/d36z3.jsonl" 2>/dev/null || tail -1 "$T/d36z3.jsonl")" ||
    { echo "zero 3 + recompute full FAILED:"; tail -5 "$T/d36z3.out"; }
$MPIRUN -np 2 prlimit --as=$half $LMC train --model d36 --data "$T/train.bin" --threads 1 --steps 3 --batch 1 \
    --seq 256 --zero 0 >"$T/d36z0.out" 2>&1 &&
    echo "zero 0: trains (unexpected)" || echo "zero 0: $(grep -m1 'error' "$T/d36z0.out")"
