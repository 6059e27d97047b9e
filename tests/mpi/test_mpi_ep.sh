#!/usr/bin/env bash
# Expert parallelism (--ep): the experts split over groups of consecutive
# data-parallel ranks, the rows routed to them exchanged by all-to-all.
# Each layout equals one process running the same global batch within that
# process's own float noise (lib.sh's equivalent: the batch computed six
# ways on one process): ep 2 on 2 ranks with 2 micro-batches each, ep 4 on 4 ranks with ZeRO-1, ep 2 x
# 2 data-parallel groups (ZeRO-0: each expert's gradient summed over the 2
# ranks computing it), the same with ZeRO-2 and full recomputation, a sigmoid
# router with a dense first layer under ZeRO-3, bf16. The load-balancing
# loss depends on how the batch is cut into micro-batches, so those runs
# have it off; with it on, ep 2 equals one process with the same
# micro-batches (noise: the same run on the other matmul kernels), also
# with DeepSeek-V3's bias balancing (the loads summed over the ranks).
# Checkpoints are layout-free: ep 4 -> 1 process and 1 process -> ep 4 load
# exactly and continue as the uninterrupted run. Bad layouts fail before
# step 1 with the reason.
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 20000 64
moe_json() { # PATH AUX_COEF [EXTRA FIELDS]
    cat >"$1" <<EOF
{"model_type": "mixtral", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 32, "intermediate_size": 24, "max_position_embeddings": 32, "vocab_size": 64,
 "num_local_experts": 4, "num_experts_per_tok": 2, "output_router_logits": true, "router_aux_loss_coef": $2,
 "n_shared_experts": 1${3:-}}
EOF
}
moe_json "$T/moe.json" 0
moe_json "$T/sig.json" 0 ', "scoring_func": "sigmoid", "first_k_dense_replace": 1, "dense_intermediate_size": 48'
moe_json "$T/aux.json" 0.05
BASE="--seq 16 --data $T/train.bin --steps 6 --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --quiet"
M="--model $T/moe.json $BASE"

equivalent "ep 2, accum 2" "$M" 2 "--batch 1 --grad-accum 2 --ep 2"
equivalent "ep 4, ZeRO-1" "$M" 4 "--batch 1 --grad-accum 1 --ep 4 --zero 1"
equivalent "ep 2 x dp 2" "$M" 4 "--batch 1 --grad-accum 1 --ep 2"
equivalent "ep 2 x dp 2, ZeRO-2, full recompute" "$M --recompute full" 4 "--batch 1 --grad-accum 1 --ep 2 --zero 2"
equivalent "ep 2 sigmoid router, dense first layer, ZeRO-3" "--model $T/sig.json $BASE" 2 \
    "--batch 1 --grad-accum 2 --ep 2 --zero 3"
equivalent "ep 2 bf16" "$M --precision bf16" 2 "--batch 2 --grad-accum 1 --ep 2"
a2a=$($CMP field "$T/ep 2, accum 2/par.jsonl" a2a_values)
[[ "$a2a" =~ ^[1-9][0-9]*\ [1-9][0-9]*$ ]] && echo "ok   the log counts the floats each rank sent: a2a_values $a2a" ||
    { echo "FAIL no a2a_values in the ep log: $a2a"; fails=$((fails + 1)); }

# the load-balancing loss on: the same micro-batches (2 x accum 2 == 2 ranks of 2)
d=$T/aux
mkdir -p "$d"
A="--model $T/aux.json $BASE --batch 2"
for dev in cpu cpu:avx2 cpu:c; do
    expect_ok "aux loss: 1 process 2 x accum 2 on $dev" $LMC train $A --grad-accum 2 --device $dev --save "$d/$dev.st" \
        --log "$d/$dev.jsonl"
done
expect_ok "aux loss: ep 2" $MPIRUN -np 2 $LMC train $A --grad-accum 1 --ep 2 --save "$d/ep.st" --log "$d/ep.jsonl"
TOL=$($CMP noise "$d/cpu.st" "$d/cpu:avx2.st" "$d/cpu:c.st")
check "aux loss: ep 2 weights within one process's noise" $CMP weights "$d/cpu.st" "$d/ep.st" "$TOL"
a=$($CMP field "$d/ep.jsonl" aux_loss) b=$($CMP field "$d/cpu.jsonl" aux_loss)
"$PY" -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-5 * abs(b))" "$a" "$b" &&
    echo "ok   aux loss: ep 2's last aux loss == one process's: $a" ||
    { echo "FAIL aux loss under ep 2: $a vs $b"; fails=$((fails + 1)); }

# aux-loss-free balancing: the loads are summed over the ranks, so every rank moves the same biases as one process
expect_ok "bias balancing: 1 process 2 x accum 2" $LMC train $A --grad-accum 2 --moe-bias-step 0.05 --save "$d/b1.st" \
    --log "$d/b1.jsonl"
expect_ok "bias balancing: ep 2" $MPIRUN -np 2 $LMC train $A --grad-accum 1 --ep 2 --moe-bias-step 0.05 \
    --save "$d/b2.st" --log "$d/b2.jsonl"
check "bias balancing: ep 2 weights within one process's noise" $CMP weights "$d/b1.st" "$d/b2.st" "$TOL"
a=$($CMP field "$d/b2.jsonl" expert_load) b=$($CMP field "$d/b1.jsonl" expert_load)
[ -n "$a" ] && [ "$a" = "$b" ] && echo "ok   bias balancing: ep 2's expert loads == one process's: $a" ||
    { echo "FAIL expert loads under ep 2: $a vs $b"; fails=$((fails + 1)); }

# checkpoints: every rank holds every expert's tensors, whole, whatever --ep
d=$T/ckpt
A="$M --batch 1 --grad-accum 4"
P="$M --batch 1 --grad-accum 1"
expect_ok "ep 4 with checkpoints" $MPIRUN -np 4 $LMC train $P --ep 4 --out "$d/ep" --save-every 3 --keep 0 \
    --save "$d/ep.st"
expect_ok "1 process with checkpoints" $LMC train $A --out "$d/one" --save-every 3 --keep 0 --save "$d/one.st"
cp -r "$d/ep" "$d/r1" && rm -rf "$d/r1/step_00000006" && echo step_00000003 >"$d/r1/latest"
cp -r "$d/one" "$d/r4" && rm -rf "$d/r4/step_00000006" && echo step_00000003 >"$d/r4/latest"
expect_ok "the ep 4 checkpoint on 1 process, no steps" $LMC train $A --steps 3 --resume "$d/r1" --save "$d/at3-one.st"
check "ep 4 -> 1 process loads exactly" $CMP weights "$d/ep/step_00000003/model.safetensors" "$d/at3-one.st" 0
expect_ok "a 1-process checkpoint on ep 4, no steps" $MPIRUN -np 4 $LMC train $P --ep 4 --steps 3 --resume "$d/r4" \
    --save "$d/at3-ep.st"
check "1 process -> ep 4 loads exactly" $CMP weights "$d/one/step_00000003/model.safetensors" "$d/at3-ep.st" 0
expect_ok "resume the ep 4 checkpoint on 1 process" $LMC train $A --resume "$d/r1" --save "$d/r1.st"
expect_ok "resume the 1-process checkpoint on ep 4" $MPIRUN -np 4 $LMC train $P --ep 4 --resume "$d/r4" --save "$d/r4.st"
TOL=$($CMP noise "$T/ep 4, ZeRO-1"/one-*.st)
check "ep 4 -> 1 process continues as the uninterrupted run" $CMP weights "$d/one.st" "$d/r1.st" "$TOL"
check "1 process -> ep 4 continues as the uninterrupted run" $CMP weights "$d/ep.st" "$d/r4.st" "$TOL"
# ep 2 x dp 2: each rank's copy of the others' experts is stale until the checkpoint gathers the owners' weights and AdamW state
expect_ok "ep 2 x dp 2 with checkpoints" $MPIRUN -np 4 $LMC train $P --ep 2 --out "$d/e22" --save-every 3 --keep 0
cp -r "$d/e22" "$d/r22" && rm -rf "$d/r22/step_00000006" && echo step_00000003 >"$d/r22/latest"
expect_ok "resume the ep 2 x dp 2 checkpoint on 1 process" $LMC train $A --resume "$d/r22" --save "$d/r22.st"
check "ep 2 x dp 2 -> 1 process continues as the uninterrupted run" $CMP weights "$d/one.st" "$d/r22.st" "$TOL"

# evaluation: 3 validation batches over 2 ranks (one runs an extra, unused forward to join the exchanges)
ev="--val-data $T/train.bin --eval-every 3 --eval-batches 3"
one=$($LMC train ${M/--quiet/} --batch 1 --grad-accum 2 $ev 2>&1 | grep -E "val loss")
two=$($MPIRUN -np 2 $LMC train ${M/--quiet/} --batch 1 --grad-accum 1 --ep 2 $ev 2>&1 | grep -E "val loss")
[ -n "$one" ] && [ "$one" = "$two" ] && echo "ok   validation loss under ep 2 = one process: $(echo $two)" ||
    { echo "FAIL validation under ep 2: '$two' vs '$one'"; fails=$((fails + 1)); }

# bad layouts: a clear error before step 1
expect_fail "ep not dividing the experts" "--ep 3 must divide the model's 4 experts" \
    $MPIRUN -np 3 $LMC train $P --ep 3
expect_fail "ep not dividing the ranks" "--ep 2 does not divide the 3 data-parallel ranks" \
    $MPIRUN -np 3 $LMC train $P --ep 2
expect_fail "ep on one process" "--ep 2 does not divide the 1 data-parallel ranks" $LMC train $P --ep 2
expect_fail "ep with a dense model" "--ep 2 splits the experts of a mixture of experts over ranks, but this model is dense" \
    $MPIRUN -np 2 $LMC train $TINY --data "$T/train.bin" --steps 1 --threads 1 --quiet --ep 2
expect_fail "ep with --balance auto" "--ep 2 with --balance auto is not supported" \
    $MPIRUN -np 2 $LMC train $P --ep 2 --balance auto
finish
