#!/usr/bin/env bash
# Tensor parallelism beside its references, in the same run:
#  1. communication: the values the tensor-parallel group moves per step (the
#     log's tp_values) beside Megatron-LM's count: per micro-batch 4
#     allreduces of B*T*C values per layer (2 forward, 2 backward) plus the
#     vocabulary-parallel embedding's and head's 2; with --sp each allreduce
#     is a reduce-scatter + all-gather of the same B*T*C values and backward
#     gathers the norms' outputs again: 10 per layer + 5. The ratio must be 1.
#  2. throughput: d12, 2 ranks x 1 thread, tp 2 (and tp 2 + sp) vs dp 2 at
#     the same global batch, median step (from step 3), tokens/s and MFU
#     against the 2 cores' peak; peak RSS per rank (sp shrinks activations).
# Usage: bash bench/bench_tp.sh [steps] [model]   (run by hand; ~10 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # LMC, PY, MPIRUN
STEPS=${1:-6}
MODEL=${2:-d12}
SEQ=128
T=$(mktemp -d /tmp/lmc_bench_tp_XXXXXX)
trap 'rm -rf "$T"' EXIT
random_tokens "$T/train.bin" 1000000 50257

read -r L C <<<"$($LMC train --model "$MODEL" --data "$T/train.bin" --steps 0 --seq $SEQ 2>&1 |
    "$PY" -c "import re,sys; t=sys.stdin.read(); print(re.search(r'(\d+) layers', t)[1], re.search(r'dim (\d+)', t)[1])")"

# summary LOG: median ms, tokens/s, MFU, tp_values (median), RSS per rank
summary() {
    "$PY" - "$1" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][2:]
med = lambda k: statistics.median(r.get(k, 0) for r in rows)
print("%.0f %.1f %.1f %.0f %s" % (med("ms"), med("tokens_per_s"), 100 * med("mfu"), med("tp_values"),
                                  "/".join("%.0f" % x for x in rows[-1]["rss_mb"])))
PYEOF
}

run() { # NAME FLAGS...
    local name=$1; shift
    $MPIRUN -np 2 $LMC train --model "$MODEL" --data "$T/train.bin" --seq $SEQ --threads 1 --steps "$STEPS" --quiet \
        --log "$T/$name.jsonl" "$@" >"$T/$name.out" 2>&1 || { echo "$name failed:"; tail -5 "$T/$name.out"; return 1; }
    summary "$T/$name.jsonl"
}

echo "== $MODEL ($L layers, dim $C), 2 ranks x 1 thread, global batch 8 x $SEQ tokens (median step from step 3)"
printf '%-12s %9s %9s %6s %14s %14s %7s %12s\n' layout "step ms" "tok/s" "MFU%" "tp values" "formula" ratio "RSS MB/rank"
declare -A ms
for cfg in "dp2:--batch 2 --grad-accum 2:0" "tp2:--batch 4 --grad-accum 2 --tp 2:4" "tp2-sp:--batch 4 --grad-accum 2 --tp 2 --sp:10"; do
    IFS=: read -r name flags per_layer <<<"$cfg"
    read -r m tps mfu vals rss <<<"$(run "$name" $flags)"
    ms[$name]=$m
    # per micro-batch (B = 4 rows of SEQ on the tp group, accum 2): per-layer count and the ends' (2, or 5 with sp)
    ends=$([ "$name" = tp2-sp ] && echo 5 || echo 2)
    formula=$([ "$per_layer" = 0 ] && echo 0 || echo $(( (per_layer * L + ends) * 4 * SEQ * C * 2 )))
    ratio=$("$PY" -c "import sys; a, b = map(float, sys.argv[1:]); print('%.3f' % (a / b) if b else '-')" "$vals" "$formula")
    printf '%-12s %9s %9s %6s %14s %14s %7s %12s\n' "$name" "$m" "$tps" "$mfu" "$vals" "$formula" "$ratio" "$rss"
done
"$PY" -c "import sys; d, t, s = map(float, sys.argv[1:]); print('tp 2 / dp 2 step time: %.3f; tp 2 + sp / tp 2: %.3f' % (t / d, s / t))" \
    "${ms[dp2]}" "${ms[tp2]}" "${ms[tp2-sp]}"
echo "bytes per rank per collective: allreduce 2(t-1)/t x 4 B x values, gather or scatter (t-1)/t x 4 B x values"
