#!/usr/bin/env bash
# Pipeline parallelism beside its references, in the same run: d12 (12
# layers), sequences of 128, micro-batch 1, 2 ranks x 1 thread.
#  1. throughput at one global batch (8 sequences): pp 2 (grad-accum 8, so
#     m = 8 micro-batches), dp 2 (grad-accum 4 per rank) and tp 2
#     (grad-accum 8): median step time from step 3, tokens/s, MFU (the
#     log's, against the backend's peak), and each layout's step time as
#     `lmc plan` predicts it for this machine (the cpu chip measured with 1
#     thread, two of them in one node) with predicted / measured;
#  2. the bubble: each stage's waiting share of the step (the log's
#     pp_bubble) for m = 4, 8, 16, plain and with --vpp 2, beside the
#     schedule's (p-1)/(m+p-1) and (p-1)/(v m+p-1). A stage also waits for
#     a slower neighbour, so the stage with the least wait is the one to
#     hold to the formula.
# Usage: bash bench/bench_pp.sh [steps] [model]   (run by hand on a quiet
# machine; about 10 minutes for d12 with 8 steps; STEPS=2 is a smoke run
# with no medians)
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # LMC, PY, MPIRUN
STEPS=${1:-8}
MODEL=${2:-d12}
SEQ=128
T=$(mktemp -d /tmp/lmc_bench_pp_XXXXXX)
trap 'rm -rf "$T"' EXIT
random_tokens "$T/train.bin" 1000000 50257
# two cpu "chips" on one node: the ranks share this machine's memory
echo '{"pools": [{"chip": "cpu", "count": 2, "chips_per_node": 2}]}' >"$T/fleet.json"

# summary LOG: median ms, tokens/s and MFU % from step 3, each stage's median bubble
summary() {
    "$PY" - "$1" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"ms"' in l]
rows = rows[2:] or rows[-1:]  # from step 3 (a smoke run keeps its last)
med = lambda f: statistics.median(f(r) for r in rows)
stages = len(rows[-1].get("pp_bubble", []))
bub = "/".join("%.3f" % med(lambda r: r["pp_bubble"][k]) for k in range(stages)) or "-"
tp = "%.1f" % med(lambda r: r["tp_ms"]) if "tp_ms" in rows[-1] else "-"
print("%.1f %.1f %.2f %s %s" % (med(lambda r: r["ms"]), med(lambda r: r["tokens_per_s"]),
                                100 * med(lambda r: r["mfu"]), bub, tp))
PYEOF
}

# predict GLOBAL_BATCH LAYOUT-FLAGS: the plan's step ms, bubble fraction and
# tensor-parallel ms
predict() {
    local gb=$1; shift
    $LMC plan --model "$MODEL" --tokens 1B --fleet "$T/fleet.json" --seq $SEQ --global-batch "$gb" --micro-batch 1 \
        --zero 0 --recompute none --precision fp32 --threads 1 "$@" --json 2>"$T/plan.err" |
        "$PY" -c "import json, sys; b = json.load(sys.stdin)['best']; print('%.1f %.3f %.1f' % (1e3 * b['step_s'], b['pp_bubble_fraction'], 1e3 * b['step_parts_s']['tensor_parallel']))" ||
        { echo "- - -"; sed 's/^/  plan: /' "$T/plan.err" >&2; }
}

run() { # NAME FLAGS...
    local name=$1; shift
    $MPIRUN -np 2 $LMC train --model "$MODEL" --data "$T/train.bin" --seq $SEQ --batch 1 --threads 1 \
        --steps "$STEPS" --quiet --log "$T/$name.jsonl" "$@" >"$T/$name.out" 2>&1 </dev/null ||
        { echo "$name failed:" >&2; tail -5 "$T/$name.out" >&2; echo "- - - - -"; return 1; }
    summary "$T/$name.jsonl"
}

ratio() { "$PY" -c "import sys; a, b = sys.argv[1:]; print('%.2f' % (float(a) / float(b)) if '-' not in (a, b) else '-')" "$1" "$2"; }

echo "== $MODEL, 2 ranks x 1 thread, sequences of $SEQ, micro-batch 1, fp32 (median step from step 3 of $STEPS)"
echo "-- throughput at a global batch of 8 sequences"
printf '%-8s %4s %10s %9s %6s %10s %8s %8s %16s %12s\n' layout m "step ms" "tok/s" "MFU%" "plan ms" "plan/run" "vs dp 2" \
    "bubble/stage" "tp ms/plan"
declare -A tps
for cfg in "dp2:4:--dp 2:--grad-accum 4" "pp2:8:--pp 2 --vpp 1:--grad-accum 8 --pp 2" "tp2:8:--tp 2:--grad-accum 8 --tp 2 --sp"; do
    IFS=: read -r name m plan flags <<<"$cfg"
    read -r ms tok mfu bub tpms <<<"$(run "$name" $flags)"
    read -r pms pbub ptp <<<"$(predict 8 $plan)"
    tps[$name]=$tok
    printf '%-8s %4s %10s %9s %6s %10s %8s %8s %16s %12s\n' "$name" "$m" "$ms" "$tok" "$mfu" "$pms" "$(ratio "$pms" "$ms")" \
        "$(ratio "$tok" "${tps[dp2]}")" "$bub" "$([ "$tpms" = - ] && echo - || echo "$tpms/$ptp")"
done

echo "-- the bubble of pp 2 (each stage's waiting share) beside the schedule's"
printf '%-10s %4s %10s %10s %8s %16s %10s\n' layout m "step ms" "plan ms" "plan/run" "bubble/stage" formula
for v in 1 2; do
    for m in 4 8 16; do
        name=pp2-v$v-m$m
        read -r ms tok mfu bub _ <<<"$(run "$name" --grad-accum $m --pp 2 --vpp $v)"
        read -r pms pbub _ <<<"$(predict $m --pp 2 --vpp $v --dp 1)"
        printf '%-10s %4s %10s %10s %8s %16s %10s\n' "pp2 vpp$v" "$m" "$ms" "$pms" "$(ratio "$pms" "$ms")" "$bub" "$pbub"
    done
done
echo "formula: (p-1)/(m+p-1), with --vpp v (p-1)/(v m+p-1); plan ms: lmc plan's step for the same layout (cpu chip measured here);"
echo "tp ms/plan: the log's tp_ms (time in the tensor-parallel collectives, waiting included) / the plan's tensor_parallel"
