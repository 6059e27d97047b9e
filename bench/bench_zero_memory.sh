#!/usr/bin/env bash
# Per-rank peak memory of lmc train under ZeRO 0-3 x recompute none,
# selective, full, on RANKS MPI ranks of this machine, beside two
# predictions from the same run's layout:
#  - lmc plan --memory on the cpu chip (src/plan/memory.c: what the trainer
#    allocates; goal: within 15% of the measurement);
#  - the ZeRO paper's count (Rajbhandari et al. 2020, sec. 3) at fp32 with
#    Adam: 16 bytes per parameter (4 weights, 4 gradients, 8 Adam), the
#    stage's share of them divided by the ranks (ZeRO-3: 16 B/param / N),
#    plus the same activations.
# Measured: the largest rss_mb of the ranks in the run's JSONL log (peak RSS,
# MB = 1e6 bytes). A layout whose RANKS x predicted peak would not fit in
# this machine's available memory (less MARGIN_GB) is skipped and listed.
# First the process overhead: a 64-wide, 1-layer model's peak RSS beside
# the overhead lmc plan assumes.
# Usage: bash bench/bench_zero_memory.sh [MODELS...]   (default: d12 d24)
#   env: RANKS=4 BATCH=4 SEQ=128 STEPS=2 MARGIN_GB=3 LMC=build/lmc
# Run by hand, not in CI. On the 2-core development machine, shared with
# other work (load 5-9), d12 and d24 took 64 minutes (d6 alone: 5); the
# peak is reached at start-up, so STEPS=1 or one model shortens it.
set -uo pipefail
cd "$(dirname "$0")/.."
LMC=${LMC:-build/lmc}
PY=${PY:-python3}
RANKS=${RANKS:-4} BATCH=${BATCH:-4} SEQ=${SEQ:-128} STEPS=${STEPS:-2} MARGIN_GB=${MARGIN_GB:-3}
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(d12 d24)
# ranks wait for each other without spinning: 4 ranks share 2 cores
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none --mca mpi_yield_when_idle 1"
T=$(mktemp -d /tmp/lmc_bench_zero_memory_XXXXXX)
trap 'rm -rf "$T"' EXIT
cp "$LMC" "$T/lmc" || exit 1 # a rebuild during the hour does not touch the binary under test
LMC=$T/lmc

# shard PATH TOKENS VOCAB: llm.c's format, uniform random tokens
shard() {
    "$PY" - "$@" <<'PYEOF'
import array, random, sys
path, n, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(1234)
h = array.array("i", [0] * 256); h[0], h[1], h[2] = 20240520, 1, n
t = array.array("H", (rng.randrange(vocab) for _ in range(n)))
open(path, "wb").write(h.tobytes() + t.tobytes())
PYEOF
}

# peak LOG: the largest per-rank peak RSS (MB) of the run's last line
peak() {
    "$PY" -c 'import json, sys; print(max(json.loads(open(sys.argv[1]).read().splitlines()[-1])["rss_mb"]))' "$1"
}

# plan MODEL RANKS B T ZERO RC: "total activations params" (bytes) from lmc plan --memory
plan() {
    $LMC plan --memory --json --model "$1" --fleet "$2xcpu" --micro-batch "$3" --seq "$4" --zero "$5" \
        --recompute "$6" | "$PY" -c 'import json, sys; d = json.load(sys.stdin); b = d["bytes"]
print(b["total"], b["activations"], d["params"])'
}

# train MODEL NP DATA B T ZERO RC LOG: 0 on success
train() {
    local launch=""
    [ "$2" -gt 1 ] && launch="$MPIRUN -np $2"
    $launch $LMC train --model "$1" --data "$3" --batch "$4" --seq "$5" --zero "$6" --recompute "$7" \
        --steps "$STEPS" --threads 1 --quiet --log "$8" >"$8.out" 2>&1
}

avail_mb() { awk '/MemAvailable/ {printf "%.0f", $2 * 1024 / 1e6}' /proc/meminfo; } # kB -> MB (1e6)

cat >"$T/tiny.json" <<'EOF'
{"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 64, "vocab_size": 256, "n_positions": 1024}
EOF
shard "$T/tiny.bin" 20000 256
shard "$T/train.bin" $((RANKS * BATCH * (SEQ + 1) * (STEPS + 2) + 1)) 50257

echo "== process overhead: a 1-layer, 64-wide model, batch 1 x 16 (MB per rank)"
printf '%-8s %10s %10s %8s\n' ranks measured "lmc plan" ratio
for np in 1 "$RANKS"; do
    if train "$T/tiny.json" "$np" "$T/tiny.bin" 1 16 0 none "$T/tiny$np.jsonl"; then
        read -r tot _ _ <<<"$(plan "$T/tiny.json" "$np" 1 16 0 none)"
        m=$(peak "$T/tiny$np.jsonl")
        "$PY" -c 'import sys; m, p = float(sys.argv[2]), float(sys.argv[3]) / 1e6
print("%-8s %10.1f %10.1f %8.2f" % (sys.argv[1], m, p, p / m))' "$np" "$m" "$tot"
    else
        echo "$np ranks: lmc train failed: $(tail -3 "$T/tiny$np.jsonl.out")"
    fi
done

echo
echo "== per-rank peak memory, $RANKS ranks x 1 thread, batch $BATCH x $SEQ, $STEPS steps (MB = 1e6 bytes)"
echo "   plan: lmc plan --memory (cpu chip); paper: 16 B/param, the ZeRO stage's share / $RANKS, + activations"
printf '| %-5s | %4s | %-9s | %11s | %9s | %10s | %9s | %11s |\n' model zero recompute "measured MB" "plan MB" \
    plan/meas "paper MB" paper/meas
echo "|-------|------|-----------|-------------|-----------|------------|-----------|-------------|"
worst=0
for model in "${MODELS[@]}"; do
    for z in 0 1 2 3; do
        for rc in none selective full; do
            row=$(printf '| %-5s | %4s | %-9s |' "$model" "$z" "$rc")
            read -r tot act params <<<"$(plan "$model" "$RANKS" "$BATCH" "$SEQ" "$z" "$rc")"
            if [ -z "$params" ]; then
                echo "$row lmc plan --memory failed"
                worst=1
                continue
            fi
            paper=$("$PY" -c 'import sys; z, n, p, a = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
w, g, o = 4 * p / (n if z >= 3 else 1), 4 * p / (n if z >= 2 else 1), 8 * p / (n if z >= 1 else 1)
print((w + g + o + a) / 1e6)' "$z" "$RANKS" "$params" "$act")
            need=$("$PY" -c 'import sys; print(int(float(sys.argv[1]) * int(sys.argv[2]) / 1e6))' "$tot" "$RANKS")
            have=$(($(avail_mb) - MARGIN_GB * 1000))
            if [ "$need" -gt "$have" ]; then
                "$PY" -c 'import sys; row, p, q, n, need, free, mg = sys.argv[1:]
print("%s %11s | %9.0f | %10s | %9.0f | %11s | skipped: %s ranks need %.1f GB, %.1f GB free (less %s GB)"
      % (row, "-", float(p) / 1e6, "-", float(q), "-", n, int(need) / 1e3, int(free) / 1e3, mg))' \
                    "$row" "$tot" "$paper" "$RANKS" "$need" "$((have + MARGIN_GB * 1000))" "$MARGIN_GB"
                continue
            fi
            log="$T/$model-$z-$rc.jsonl"
            if ! train "$model" "$RANKS" "$T/train.bin" "$BATCH" "$SEQ" "$z" "$rc" "$log"; then
                echo "$row failed: $(tail -3 "$log.out" | tr '\n' ' ')"
                worst=1
                continue
            fi
            m=$(peak "$log")
            "$PY" -c 'import sys; row, m, p, q = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]) / 1e6, float(sys.argv[4])
print("%s %11.0f | %9.0f | %10.3f | %9.0f | %11.3f |" % (row, m, p, p / m, q, q / m))
sys.exit(0 if abs(p / m - 1) <= 0.15 else 1)' "$row" "$m" "$tot" "$paper" || worst=1
        done
    done
done
echo
[ "$worst" = 0 ] && echo "every measured layout within 15% of lmc plan" ||
    echo "some layout is more than 15% from lmc plan, or failed (see above)"
exit "$worst"
