#!/usr/bin/env bash
# bench_xvendor.sh: ranks of unequal speed in one job through the
# hierarchical communicator (issue 25), beside their solo throughputs.
#
# Two CPU ranks, each its own group (LMC_TEST_HIER_GROUPS=0,1: every
# gradient bucket goes through the cross-group stage, as between vendors),
# rank 1 made SLOW x slower (the test hook LMC_TEST_SLOWDOWN: a slower chip). Same global
# batch (2 x K micro-batches of B x T) four ways:
#   ceiling:  the two ranks' configurations as two independent processes,
#             K micro-batches each, run at the same time and pinned to cores
#             0 and 1 (no communication): their summed tokens/s is what the
#             two deliver at once (on the development VM the 2 vCPUs share
#             one core's vector units, so this, not 2x one core, is the peer)
#   equal:    the job, --balance off (each rank K micro-batches)
#   balanced: the job, --balance auto (split by measured speed after 2 steps)
#   mpi:      the balanced job on the plain MPI communicator (no groups), with
#             --zero 1 as hier runs it (a mixed job updates each parameter on
#             one rank): the peer that isolates the cross-group stage's cost
# Steps after WARM (the balance's measuring steps) count; rounds alternate.
# Prints median tokens/s, the ratio to the ceiling (goal: >= 0.9 for
# balanced), the split, and then the cross-group stage's time beside the
# formula for its volume (tests/mpi/test_mpi_hier bench).
# Usage: bash bench/bench_xvendor.sh   (env: LMC, MODEL, B, T, K, SLOW, STEPS, WARM, ROUNDS)
set -euo pipefail
cd "$(dirname "$0")/.."
LMC=${LMC:-$PWD/build/lmc}
HIER=${HIER:-$(dirname "$LMC")/tests/mpi/test_mpi_hier}
MODEL=${MODEL:---model d6 --layers 4 --dim 256 --heads 4 --vocab 4096}
B=${B:-4} T=${T:-64} K=${K:-6} SLOW=${SLOW:-2} STEPS=${STEPS:-8} WARM=${WARM:-3} ROUNDS=${ROUNDS:-2}
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
. bench/lib.sh # random_tokens (keeps the MPIRUN above)
W=$(mktemp -d /tmp/lmc_bench_xv_XXXXXX)
trap 'rm -rf "$W"' EXIT

random_tokens "$W/train.bin" 1000000 4096
ARGS="$MODEL --batch $B --seq $T --max-seq $T --data $W/train.bin --steps $STEPS --threads 1 --quiet"
JOB="$ARGS --grad-accum $K"
MPIRUN="$MPIRUN -x LMC_TEST_SLOWDOWN=$SLOW@1"
for ((r = 0; r < ROUNDS; r++)); do
    taskset -c 0 $LMC train $ARGS --grad-accum $K --log "$W/ceil.$r.a" >/dev/null 2>&1 &
    pa=$!
    LMC_TEST_SLOWDOWN=$SLOW@0 taskset -c 1 $LMC train $ARGS --grad-accum $K --log "$W/ceil.$r.b" \
        >/dev/null 2>&1
    wait $pa
    "$PY" -c "import json, sys
a, b = [[json.loads(l) for l in open(f)] for f in sys.argv[1:3]]
for x, y in zip(a, b):
    print(json.dumps({'tokens_per_s': x['tokens_per_s'] + y['tokens_per_s'], 'step': x['step']}))
" "$W/ceil.$r.a" "$W/ceil.$r.b" >"$W/ceil.$r.jsonl"
    LMC_TEST_HIER_GROUPS=0,1 $MPIRUN -np 2 -x LMC_TEST_HIER_GROUPS $LMC train $JOB --log "$W/equal.$r.jsonl" >/dev/null
    LMC_TEST_HIER_GROUPS=0,1 $MPIRUN -np 2 -x LMC_TEST_HIER_GROUPS $LMC train $JOB --balance auto \
        --log "$W/balanced.$r.jsonl" >/dev/null
    $MPIRUN -np 2 $LMC train $JOB --balance auto --zero 1 --log "$W/mpi.$r.jsonl" >/dev/null
done

"$PY" - "$W" "$WARM" <<'EOF'
import glob, json, statistics, sys
w, warm = sys.argv[1], int(sys.argv[2])
def rows(name):
    out = []
    for f in sorted(glob.glob(f"{w}/{name}.*.jsonl")):
        out += [json.loads(l) for l in open(f)][warm:]
    return out
ceil = statistics.median(r["tokens_per_s"] for r in rows("ceil"))
print(f"ceiling (two solo processes at once, rank 1 slowed): {ceil:8.0f} tokens/s")
for name in ("equal", "balanced", "mpi"):
    rs = rows(name)
    tps = statistics.median(r["tokens_per_s"] for r in rs)
    mb = rs[-1].get("mb")
    comm = statistics.median(r["comm_ms"] for r in rs)
    label = {"equal": "hier, equal split", "balanced": "hier, --balance auto", "mpi": "mpi, --balance auto, ZeRO-1"}[name]
    print(f"{label:28s} {tps:8.0f} tokens/s = {tps / ceil:.2f} of the ceiling; micro-batches per rank {mb}; "
          f"compute ms {rs[-1].get('compute_ms')}, idle ms {rs[-1].get('idle_ms')}, comm_ms (rank 0) {comm:.1f}")
EOF
if [ -x "$HIER" ]; then
    LMC_TEST_HIER_GROUPS=0,1 $MPIRUN -np 2 -x LMC_TEST_HIER_GROUPS "$HIER" bench
else
    echo "($HIER not built: make all builds it where mpicc is found)"
fi

# The planner's prediction for two pools (each a group: the cross-group
# stage in its model, src/plan/xgroup.c) beside the measured step of the
# command it prints, run through the hierarchical communicator.
PM="--model d6 --layers 4 --heads 4 --dim 256 --vocab 4096"
PLAN=$($LMC plan $PM --seq $T --global-batch 48 --tokens 1M --fleet 1xcpu,1xcpu --threads 1 --precision fp32 --top 1 \
    --json 2>/dev/null)
read -r pred cmd <<<"$("$PY" -c "import json, sys
b = json.loads(sys.argv[1])['layouts'][0]
print(b['step_s'], b['command'].split(' lmc train ', 1)[1])" "$PLAN")"
LMC_TEST_HIER_GROUPS=0,1 $MPIRUN -np 2 -x LMC_TEST_HIER_GROUPS $LMC train $cmd --data "$W/train.bin" --steps $STEPS \
    --threads 1 --quiet --log "$W/plan.jsonl" >/dev/null
"$PY" - "$W/plan.jsonl" "$WARM" "$pred" "$cmd" <<'EOF2'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
ms, pred = statistics.median(r["ms"] for r in rows), float(sys.argv[3]) * 1e3
print(f"lmc plan --fleet 1xcpu,1xcpu: predicted step {pred:.0f} ms; measured (lmc train {sys.argv[4]}, two groups) "
      f"{ms:.0f} ms; measured / predicted {ms / pred:.2f}")
EOF2
