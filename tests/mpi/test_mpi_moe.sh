#!/usr/bin/env bash
# A mixture of experts under data parallelism (every rank holds every
# expert; expert parallelism, --ep, is not there yet): 2 ranks x accum 1 ==
# 1 rank x accum 2 (the same global batch): losses, the last step's
# load-balancing loss (averaged over the micro-batches) and the weights, without ZeRO and
# with ZeRO-1, 2 and 3 (the expert weights' gradients and weights sharded by layer units), within
# fp32 summation-order tolerance; a half-size batch differs by far more.
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 20000 64
cat >"$T/moe.json" <<EOF
{"model_type": "mixtral", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 32, "intermediate_size": 24, "max_position_embeddings": 32, "vocab_size": 64,
 "num_local_experts": 4, "num_experts_per_tok": 2, "output_router_logits": true, "router_aux_loss_coef": 0.05,
 "n_shared_experts": 1}
EOF
ARGS="--model $T/moe.json --batch 2 --seq 16 --data $T/train.bin --steps 6 --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --quiet"
TOL=2e-5

expect_ok "1 rank x accum 2" $LMC train $ARGS --grad-accum 2 --log "$T/one.jsonl" --save "$T/one.st"
expect_ok "2 ranks x accum 1" $MPIRUN -np 2 $LMC train $ARGS --grad-accum 1 --log "$T/two.jsonl" --save "$T/two.st"
expect_ok "2 ranks x accum 1, ZeRO-1" $MPIRUN -np 2 $LMC train $ARGS --grad-accum 1 --zero 1 \
    --log "$T/z1.jsonl" --save "$T/z1.st"
expect_ok "2 ranks x accum 1, ZeRO-2" $MPIRUN -np 2 $LMC train $ARGS --grad-accum 1 --zero 2 \
    --log "$T/z2.jsonl" --save "$T/z2.st"
expect_ok "2 ranks x accum 1, ZeRO-3" $MPIRUN -np 2 $LMC train $ARGS --grad-accum 1 --zero 3 \
    --log "$T/z3.jsonl" --save "$T/z3.st"
expect_ok "1 rank x accum 1 (half the batch)" $LMC train $ARGS --grad-accum 1 --save "$T/half.st"

for run in two z1 z2 z3; do
    check "$run weights == 1x2" $CMP weights "$T/one.st" "$T/$run.st" $TOL
    check "$run losses == 1x2" $CMP losses "$T/$run.jsonl" "$T/one.jsonl" 1e-5
    a=$($CMP field "$T/$run.jsonl" aux_loss) b=$($CMP field "$T/one.jsonl" aux_loss)
    "$PY" -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-5 * abs(b))" "$a" "$b" &&
        echo "ok   $run last step's aux loss == 1x2: $a" || { echo "FAIL $run aux loss $a vs $b"; fails=$((fails + 1)); }
done
check "a different batch is caught" $CMP differ "$T/one.st" "$T/half.st" 1e-3
finish
