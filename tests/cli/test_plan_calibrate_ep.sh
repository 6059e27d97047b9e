#!/usr/bin/env bash
# lmc plan --calibrate-log reads the layout of a mixture-of-experts run from
# its log's "run" line, expert parallelism included (issue 16): a 2-rank
# --ep 2 run's log, given with no layout flags, is planned as ep 2 (the
# command it prints has --ep 2, and its per-rank memory is the prediction
# `--ep 2` gives), so each rank's peak RSS is predicted as holding half the
# experts: within 5% of the log's, where the same log planned at --ep 1
# (every expert on every rank) is over 20% off. The plans run the optimized
# binary: they measure the cpu chip, minutes under the sanitizers.
. "$(dirname "$0")/lib.sh"
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
command -v mpirun >/dev/null || { echo "FAIL mpirun not found"; exit 1; }
make_shard "$T/train.bin" 20000 512
cat >"$T/moe.json" <<'JSON'
{"model_type": "mixtral", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 256, "intermediate_size": 1024, "max_position_embeddings": 64, "vocab_size": 512,
 "num_local_experts": 8, "num_experts_per_tok": 2, "output_router_logits": true, "router_aux_loss_coef": 0.01}
JSON
$MPIRUN -np 2 $LMC_FAST train --model "$T/moe.json" --data "$T/train.bin" --batch 1 --seq 32 --steps 2 --threads 1 \
    --ep 2 --log "$T/ep.jsonl" --quiet >"$T/train.out" 2>&1 || { echo "FAIL training: $(tail -5 "$T/train.out")"; exit 1; }

plan() { $LMC_FAST plan --calibrate-log "$T/ep.jsonl" --model "$T/moe.json" --fleet 2xcpu "$@" 2>&1; }
plan >"$T/log.txt"; plan --ep 2 >"$T/ep2.txt"; plan --ep 1 >"$T/ep1.txt"
mem() { grep "peak MB" "$1" | awk '{ print $6, $7 }'; } # measured predicted
if grep -q "lmc train .* --ep 2" "$T/log.txt" && [ -n "$(mem "$T/log.txt")" ] &&
    [ "$(mem "$T/log.txt")" = "$(mem "$T/ep2.txt")" ]; then
    echo "ok   the log's ep read: $(grep -o 'mpirun.*' "$T/log.txt"); peak MB (measured, predicted) $(mem "$T/log.txt")"
else
    echo "FAIL ep not taken from the log:"; cat "$T/log.txt" "$T/ep2.txt"; fails=$((fails + 1))
fi
read -r m p <<<"$(mem "$T/log.txt")"
read -r _ p1 <<<"$(mem "$T/ep1.txt")"
if awk -v m="$m" -v p="$p" -v q="$p1" 'BEGIN { e = p / m - 1; f = q / m - 1; exit !(e * e <= 0.0025 && f > 0.2) }'; then
    echo "ok   peak RSS per rank $m MB: predicted $p MB at the log's ep 2, $p1 MB at ep 1"
else
    echo "FAIL peak RSS per rank $m MB: predicted $p MB at the log's ep, $p1 MB at ep 1"; fails=$((fails + 1))
fi
finish
