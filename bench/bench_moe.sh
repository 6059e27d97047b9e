#!/usr/bin/env bash
# bench_moe.sh: builds lmc's library (BUILD=build by default) and
# bench/bench_moe.c, then prints a mixture of experts' matmuls on the CPU
# (one matmul per expert, as the model runs them) beside one dense GEMM of
# the same total size, GFLOP/s forward and backward, uniform routing and a
# skewed one. Extra arguments go to the bench (e.g. --threads 2, --tokens 8192).
# Then expert parallelism at ep 2, and each rank's memory at ep 1, 2 and 4
# beside lmc plan's prediction (below). MEM_ONLY=1: the memory part alone.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
make -j"$(nproc)" BUILD="$BUILD" "$BUILD/liblmc.a" >/dev/null
${CC:-cc} -O3 -g -std=gnu11 -fopenmp -Iinclude -Isrc bench/bench_moe.c "$BUILD/liblmc.a" -lm -lpthread \
    -o "$BUILD/bench_moe"
if [ -z "${MEM_ONLY:-}" ]; then
"$BUILD/bench_moe" "$@"
echo
"$BUILD/bench_moe" --skew 1 "$@"
echo
fi

# Expert parallelism: moe-8x (4 layers) on 2 ranks of 1 thread, --ep 2 beside
# plain data parallelism (every rank running every expert) in the same run:
# step time, MFU (active parameters), all-to-all time per step, and the
# floats each rank sent beside the formula for uniform routing: 4 trips
# (dispatch and combine, forward and backward) x MoE layers x B*T*top_k rows
# x (ep - 1)/ep leaving the rank x dim. EP_STEPS=N for a longer run.
. bench/lib.sh
d=$(mktemp -d /tmp/lmc_bench_ep_XXXXXX)
trap 'rm -rf "$d"' EXIT
random_tokens "$d/train.bin" 200000 50257
A="--model moe-8x --layers 4 --batch 2 --seq 256 --steps ${EP_STEPS:-6} --data $d/train.bin --threads 1 --quiet"
[ -n "${MEM_ONLY:-}" ] || $MPIRUN -np 2 "$LMC" train $A --ep 2 --log "$d/ep.jsonl"
[ -n "${MEM_ONLY:-}" ] || $MPIRUN -np 2 "$LMC" train $A --log "$d/dp.jsonl"
[ -n "${MEM_ONLY:-}" ] || "$PY" - "$d/ep.jsonl" "$d/dp.jsonl" <<'PYEOF'
import json, sys
ep, dp = ([json.loads(l) for l in open(p)][1:] for p in sys.argv[1:3])  # step 1 warms up
mean = lambda rows, f: sum(f(r) for r in rows) / len(rows)
L, BT, k, C, P = 4, 2 * 256, 2, 512, 2
formula = 4 * L * BT * k * (P - 1) / P * C
sent = mean(ep, lambda r: sum(r["a2a_values"]) / len(r["a2a_values"]))
print("ep 2 on 2 ranks (moe-8x, 4 layers, batch 2 x 256 per rank, 1 thread each), mean of %d steps:" % len(ep))
print("  step %.1f ms (dp 2 beside it: %.1f ms, ratio %.3f), MFU %.4f vs %.4f" % (
    mean(ep, lambda r: r["ms"]), mean(dp, lambda r: r["ms"]), mean(ep, lambda r: r["ms"]) / mean(dp, lambda r: r["ms"]),
    mean(ep, lambda r: r["mfu"]), mean(dp, lambda r: r["mfu"])))
print("  all-to-all %.1f ms per step (rank mean), %.0f floats sent per rank; formula (uniform routing) %.0f: "
      "ratio %.3f" % (mean(ep, lambda r: sum(r["a2a_ms"]) / len(r["a2a_ms"])), sent, formula, sent / formula))
print("  expert load max/mean per layer, last step: %s" % ep[-1]["expert_load"])
PYEOF

# Memory per rank: moe-8x (2 layers) on 4 ranks at ep 1, 2 and 4 (ZeRO-0),
# ep 4 with ZeRO-1, 2 and 3, and ep 2 x dp 2 with ZeRO-3: the parameters each
# rank holds (the log's params_local; under ZeRO-3 its shards) and its peak
# RSS beside lmc plan --memory's prediction for the same layout (the cpu
# chip: what lmc train allocates), and the second step's time beside the
# first layout's (ep 1, ZeRO-0) in the same run. 2 steps each (MEM_LAYOUTS
# to choose: "EP ZERO" pairs).
M="--model moe-8x --layers 2 --batch 1 --seq 64 --steps 2 --data $d/train.bin --threads 1 --quiet"
echo
echo "memory per rank, moe-8x (2 layers, batch 1 x 64) on 4 ranks:"
eval "layouts=(${MEM_LAYOUTS:-'1 0' '2 0' '4 0' '4 1' '4 2' '4 3' '2 3'})"
for lay in "${layouts[@]}"; do
    set -- $lay
    $MPIRUN -np 4 "$LMC" train $M --ep "$1" --zero "$2" --log "$d/mem.jsonl"
    plan=$("$LMC" plan --memory --model moe-8x --layers 2 --fleet 4xcpu --dp 4 --ep "$1" --zero "$2" --precision fp32 \
        --seq 64 --micro-batch 1 --json)
    "$PY" - "$d/mem.jsonl" "$plan" "$1" "$2" "$d/first_ms" <<'PYEOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
plan = json.loads(sys.argv[2])["bytes"]["total"] / 1e6
held, rss, ms, mfu = rows[0]["run"]["params_local"], rows[-1]["rss_mb"], rows[-1]["ms"], rows[-1]["mfu"]
if not os.path.exists(sys.argv[5]):
    open(sys.argv[5], "w").write(str(ms))
first = float(open(sys.argv[5]).read())
print("  ep %s ZeRO-%s: params_local %.1fM, peak RSS %s MB (max %.1f); lmc plan --memory %.1f MB: ratio %.3f; "
      "step %.0f ms (%.2fx the first layout's), MFU %.4f" % (sys.argv[3], sys.argv[4], held[0] / 1e6,
      " ".join("%.1f" % x for x in rss), max(rss), plan, max(rss) / plan, ms, ms / first, mfu))
PYEOF
done
