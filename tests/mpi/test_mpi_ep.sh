#!/usr/bin/env bash
# Expert parallelism (--ep): the experts split over groups of consecutive
# data-parallel ranks, each rank holding only its own experts (weights,
# gradients, AdamW state), the rows routed to them exchanged by all-to-all.
# Each layout equals one process running the same global batch within that
# process's own float noise (lib.sh's equivalent: the batch computed six
# ways on one process): ep 2 on 2 ranks with 2 micro-batches each, ep 4 on
# 4 ranks (also ZeRO-1 and ZeRO-3), ep 2 x 2 data-parallel groups (each
# expert's gradient summed over the 2 ranks holding it), the same with
# ZeRO-1 and full recomputation, ZeRO-2, ZeRO-3 and full recomputation,
# ZeRO-3 with 2 micro-batches per rank, a sigmoid router with a dense
# first layer, bf16 (also ep 2 x dp 2 with ZeRO-2). The load-balancing loss depends on
# how the batch is cut into micro-batches, so those runs have it off; with
# it on, ep 2 equals one process with the same micro-batches (noise: the
# same run on the other matmul kernels), also with DeepSeek-V3's bias
# balancing (the loads summed over the ranks).
# Memory: each rank holds the rest of the model and E/ep experts, exactly
# (the log's params_local against the saved file's tensors), and its peak
# RSS falls against plain data parallelism by what lmc plan --memory
# predicts for the two layouts.
# Checkpoints hold whole Mixtral tensors (each expert block from its rank):
# ep 4 -> 1 process -> ep 2 load exactly and continue as the uninterrupted
# run; on the same layout a resumed run's losses are bit-identical. ZeRO-1
# shards AdamW's state: the rest over every data-parallel rank, each
# expert over the ranks holding it (equivalence, memory against lmc plan,
# checkpoints). ZeRO-2 and 3 cut each unit the same way (the gradients
# reduce-scattered piece by piece as the unit completes, ZeRO-3's
# parameters gathered from the same shards): equivalence, params_local and
# memory against lmc plan for ZeRO-3, checkpoints still whole tensors that
# resume across layouts (ZeRO-3 ep 2 x dp 2 -> 1 process -> ep 4 ZeRO-2
# load exactly). Bad layouts fail before step 1 with the reason.
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
equivalent "ep 4" "$M" 4 "--batch 1 --grad-accum 1 --ep 4"
equivalent "ep 4, ZeRO-1" "$M" 4 "--batch 1 --grad-accum 1 --ep 4 --zero 1"
equivalent "ep 2 x dp 2" "$M" 4 "--batch 1 --grad-accum 1 --ep 2"
equivalent "ep 2 x dp 2, ZeRO-1, full recompute" "$M --recompute full" 4 "--batch 1 --grad-accum 1 --ep 2 --zero 1"
equivalent "ep 2 x dp 2, ZeRO-2" "$M" 4 "--batch 1 --grad-accum 1 --ep 2 --zero 2"
equivalent "ep 2 x dp 2, ZeRO-3, full recompute" "$M --recompute full" 4 "--batch 1 --grad-accum 1 --ep 2 --zero 3"
equivalent "ep 4, ZeRO-3" "$M" 4 "--batch 1 --grad-accum 1 --ep 4 --zero 3"
equivalent "ep 2, ZeRO-3, accum 2" "$M" 2 "--batch 1 --grad-accum 2 --ep 2 --zero 3"
equivalent "ep 2 sigmoid router, dense first layer" "--model $T/sig.json $BASE" 2 "--batch 1 --grad-accum 2 --ep 2"
equivalent "ep 2 bf16" "$M --precision bf16" 2 "--batch 2 --grad-accum 1 --ep 2"
equivalent "ep 2 x dp 2 bf16, ZeRO-2" "$M --precision bf16" 4 "--batch 1 --grad-accum 1 --ep 2 --zero 2"
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

# memory: params_local == the rest of the model + E/ep of the experts, counted from the saved file's tensors
d=$T/mem
mkdir -p "$d"
# wider, 8 experts, 6 layers: their state dominates a rank's memory, and the few MB that Open MPI's shared-memory
# transport touches on some ranks and not others (outside lmc's heap: valgrind's massif sees the same heap peak on
# every rank) stay small beside the savings checked
moe_json "$d/big.json" 0
sed -i 's/"num_hidden_layers": 2/"num_hidden_layers": 6/; s/"hidden_size": 32/"hidden_size": 64/; s/"intermediate_size": 24/"intermediate_size": 512/;
        s/"num_local_experts": 4/"num_local_experts": 8/' "$d/big.json"
G="--model $d/big.json --seq 16 --data $T/train.bin --steps 2 --threads 1 --quiet --batch 1"
expect_ok "memory: 4 ranks data parallel" $MPIRUN -np 4 $LMC train $G --log "$d/dp.jsonl" --save "$d/dp.st"
expect_ok "memory: 4 ranks --ep 4" $MPIRUN -np 4 $LMC train $G --ep 4 --log "$d/ep4.jsonl"
expect_ok "memory: 4 ranks --ep 2" $MPIRUN -np 4 $LMC train $G --ep 2 --log "$d/ep2.jsonl"
expect_ok "memory: 4 ranks --ep 2 --zero 1" $MPIRUN -np 4 $LMC train $G --ep 2 --zero 1 --log "$d/ep2z1.jsonl"
expect_ok "memory: 4 ranks --ep 2 --zero 3" $MPIRUN -np 4 $LMC train $G --ep 2 --zero 3 --log "$d/ep2z3.jsonl"
plan_total() { # EP ZERO: lmc plan's per-rank memory (bytes) for this job on 4 cpu ranks
    $LMC plan --memory --model "$d/big.json" --fleet 4xcpu --dp 4 --ep "$1" --zero "$2" --precision fp32 --seq 16 \
        --micro-batch 1 --json | $PY -c "import json, sys; print(json.load(sys.stdin)['bytes']['total'])"
}
$PY - "$(dirname "$0")/../oracle" "$d" "$(plan_total 1 0)" "$(plan_total 4 0)" "$(plan_total 2 0)" \
    "$(plan_total 2 1)" "$(plan_total 2 3)" <<'PYEOF' || fails=$((fails + 1))
import json, sys
sys.path.insert(0, sys.argv[1])
from lmc_util import st_read
d, plan1, plan4, plan2, plan2z1, plan2z3 = sys.argv[2], *map(float, sys.argv[3:8])
tensors, _ = st_read(d + "/dp.st")
total = sum(t.size for t in tensors.values())
experts = sum(t.size for n, t in tensors.items() if ".experts." in n)
def run(name):
    lines = [json.loads(x) for x in open("%s/%s.jsonl" % (d, name))]
    return lines[0]["run"]["params_local"], lines[-1]["rss_mb"]
ok = True
for ep in (1, 2, 4):
    held, _ = run("dp" if ep == 1 else "ep%d" % ep)
    want = total - experts + experts // ep
    good = held == [want] * 4
    ok &= good
    print("%s ep %d: params_local %s == %d - %d experts' + %d / %d = %d" % ("ok  " if good else "FAIL", ep, held,
                                                                           total, experts, experts, ep, want))
def saves(x, y, px, py, what):  # peak RSS of runs x -> y per rank against lmc plan's x -> y
    global ok
    want = (px - py) / 1e6
    for r, (a, b) in enumerate(zip(run(x)[1], run(y)[1])):
        good = 0.7 * want <= a - b <= 1.3 * want
        ok &= good
        print("%s rank %d: peak RSS %.1f MB %s, %.1f MB %s: saves %.1f MB, lmc plan --memory predicts %.1f (%.1f -> "
              "%.1f)" % ("ok  " if good else "FAIL", r, a, what[0], b, what[1], a - b, want, px / 1e6, py / 1e6))
saves("dp", "ep4", plan1, plan4, ("at ep 1", "at ep 4"))  # the expert state not held, less the owner's row buffers
saves("ep2", "ep2z1", plan2, plan2z1, ("at ep 2", "with ZeRO-1"))  # AdamW state: the rest / 4, the experts / 2 of 2
# ep 2 with ZeRO-3 beside plain data parallelism: each rank reads only its shards of its part at start-up
saves("dp", "ep2z3", plan1, plan2z3, ("at ep 1", "at ep 2 with ZeRO-3"))
# ZeRO-3: a rank holds its shards only (the rest / 4, its experts / 2), together every parameter once; each
# piece's shard rounds up to 16 floats and the layout pads its tensors to 16, hence the slack of 16 per tensor
held = run("ep2z3")[0]
slack = 16 * len(tensors)
good = total <= sum(held) <= total + slack and max(held) - min(held) <= slack
ok &= good
print("%s ep 2 ZeRO-3: params_local %s: each about %d / 4 = %d, together %d of %d (slack %d)" % (
    "ok  " if good else "FAIL", held, total, total // 4, sum(held), total, slack))
sys.exit(0 if ok else 1)
PYEOF

# checkpoints: whole Mixtral tensors, each expert from the rank holding it
d=$T/ckpt
A="$M --batch 1 --grad-accum 4"
P="$M --batch 1 --grad-accum 1"
at() { # DIR STEP: DIR's copy resuming from STEP
    rm -rf "$1-$2" && cp -r "$1" "$1-$2" && echo "step_0000000$2" >"$1-$2/latest"
}
expect_ok "ep 4 with checkpoints" $MPIRUN -np 4 $LMC train $P --ep 4 --out "$d/ep" --save-every 2 --keep 0 \
    --save "$d/ep.st" --log "$d/ep.jsonl"
expect_ok "1 process with checkpoints" $LMC train $A --out "$d/one" --save-every 3 --keep 0 --save "$d/one.st"
at "$d/ep" 2
expect_ok "ep 4 resumed at step 2 on ep 4" $MPIRUN -np 4 $LMC train $P --ep 4 --resume "$d/ep-2" --log "$d/ep-2.jsonl"
check "ep 4 -> ep 4: losses of steps 3-6 bit-identical" $CMP losses "$d/ep-2.jsonl" "$d/ep.jsonl" 0 3 6
at "$d/ep" 4
expect_ok "the ep 4 checkpoint on 1 process, no steps" $LMC train $A --steps 4 --resume "$d/ep-4" --save "$d/at4-one.st"
check "ep 4 -> 1 process loads exactly" $CMP weights "$d/ep/step_00000004/model.safetensors" "$d/at4-one.st" 0
expect_ok "ep 4 -> 1 process" $LMC train $A --resume "$d/ep-4" --out "$d/one5" --save-every 1 --keep 0
at "$d/one5" 5
expect_ok "ep 4 -> 1 process -> ep 2, no steps" $MPIRUN -np 2 $LMC train $M --batch 1 --grad-accum 2 --ep 2 --steps 5 \
    --resume "$d/one5-5" --save "$d/at5-ep2.st"
check "1 process -> ep 2 loads exactly" $CMP weights "$d/one5/step_00000005/model.safetensors" "$d/at5-ep2.st" 0
expect_ok "ep 4 -> 1 process -> ep 2" $MPIRUN -np 2 $LMC train $M --batch 1 --grad-accum 2 --ep 2 --resume "$d/one5-5" \
    --save "$d/chain.st"
TOL=$($CMP noise "$T/ep 4"/one-*.st)
check "ep 4 -> 1 process -> ep 2 continues as the uninterrupted ep 4 run" $CMP weights "$d/ep.st" "$d/chain.st" "$TOL"
check "ep 4 -> 1 process -> ep 2 continues as the uninterrupted 1-process run" $CMP weights "$d/one.st" "$d/chain.st" \
    "$TOL"
at "$d/one" 3
expect_ok "a 1-process checkpoint on ep 4, no steps" $MPIRUN -np 4 $LMC train $P --ep 4 --steps 3 --resume "$d/one-3" \
    --save "$d/at3-ep.st"
check "1 process -> ep 4 loads exactly" $CMP weights "$d/one/step_00000003/model.safetensors" "$d/at3-ep.st" 0
expect_ok "resume the 1-process checkpoint on ep 4" $MPIRUN -np 4 $LMC train $P --ep 4 --resume "$d/one-3" --save "$d/r4.st"
check "1 process -> ep 4 continues as the uninterrupted run" $CMP weights "$d/ep.st" "$d/r4.st" "$TOL"
# ep 2 x dp 2: each expert on 2 of the 4 ranks, written once; ZeRO-1/2/3: AdamW state (and ZeRO-3's
# parameters) gathered from its shards (ep 4: the experts' shards are whole on their one rank, the rest's over all 4)
for lay in "2 0" "2 1" "4 1" "2 2" "2 3" "4 3"; do
    set -- $lay
    n="ep $1 on 4 ranks, ZeRO-$2" e="$d/e$1z$2"
    expect_ok "$n with checkpoints" $MPIRUN -np 4 $LMC train $P --ep $1 --zero $2 --out "$e" --save-every 3 --keep 0 \
        --log "$e.jsonl"
    at "$e" 3
    expect_ok "resume the $n checkpoint on 1 process" $LMC train $A --resume "$e-3" --save "$e-one.st"
    check "$n -> 1 process continues as the uninterrupted run" $CMP weights "$d/one.st" "$e-one.st" "$TOL"
done
expect_ok "ep 2 x dp 2, ZeRO-1 resumed at step 3 on the same layout" $MPIRUN -np 4 $LMC train $P --ep 2 --zero 1 \
    --resume "$d/e2z1-3" --log "$d/e2z1-3.jsonl"
check "ep 2 x dp 2, ZeRO-1 -> the same: losses of steps 4-6 bit-identical" $CMP losses "$d/e2z1-3.jsonl" \
    "$d/e2z1.jsonl" 0 4 6
expect_ok "1 process -> ep 2 x dp 2, ZeRO-1" $MPIRUN -np 4 $LMC train $P --ep 2 --zero 1 --resume "$d/one-3" \
    --save "$d/r4z1.st"
check "1 process -> ep 2 x dp 2, ZeRO-1 continues as the uninterrupted run" $CMP weights "$d/one.st" "$d/r4z1.st" "$TOL"

# ZeRO-3 ep 2 x dp 2 -> 1 process -> ep 4 ZeRO-2: each loads the last one's weights exactly and continues
expect_ok "ep 2 x dp 2, ZeRO-3 resumed at step 3 on the same layout" $MPIRUN -np 4 $LMC train $P --ep 2 --zero 3 \
    --resume "$d/e2z3-3" --log "$d/e2z3-3.jsonl"
check "ep 2 x dp 2, ZeRO-3 -> the same: losses of steps 4-6 bit-identical" $CMP losses "$d/e2z3-3.jsonl" \
    "$d/e2z3.jsonl" 0 4 6
expect_ok "ep 2 x dp 2, ZeRO-3 -> 1 process, no steps" $LMC train $A --steps 3 --resume "$d/e2z3-3" --save "$d/z3-one.st"
check "ep 2 x dp 2, ZeRO-3 -> 1 process loads exactly" $CMP weights "$d/e2z3/step_00000003/model.safetensors" \
    "$d/z3-one.st" 0
expect_ok "ep 2 x dp 2, ZeRO-3 -> 1 process" $LMC train $A --resume "$d/e2z3-3" --out "$d/z3one" --save-every 1 \
    --keep 0
at "$d/z3one" 4
expect_ok "-> 1 process -> ep 4, ZeRO-2, no steps" $MPIRUN -np 4 $LMC train $P --ep 4 --zero 2 --steps 4 \
    --resume "$d/z3one-4" --save "$d/z3one-e4z2.st"
check "1 process -> ep 4, ZeRO-2 loads exactly" $CMP weights "$d/z3one/step_00000004/model.safetensors" \
    "$d/z3one-e4z2.st" 0
expect_ok "ZeRO-3 ep 2 x dp 2 -> 1 process -> ep 4, ZeRO-2" $MPIRUN -np 4 $LMC train $P --ep 4 --zero 2 \
    --resume "$d/z3one-4" --save "$d/z3chain.st"
check "ZeRO-3 ep 2 x dp 2 -> 1 process -> ep 4, ZeRO-2 continues as the uninterrupted run" $CMP weights \
    "$d/one.st" "$d/z3chain.st" "$TOL"

# evaluation: 3 validation batches over 2 ranks (one runs an extra, unused forward to join the exchanges), also
# under ZeRO-3 (every forward gathers each unit's shards)
ev="--val-data $T/train.bin --eval-every 3 --eval-batches 3"
one=$($LMC train ${M/--quiet/} --batch 1 --grad-accum 2 $ev 2>&1 | grep -E "val loss")
two=$($MPIRUN -np 2 $LMC train ${M/--quiet/} --batch 1 --grad-accum 1 --ep 2 $ev 2>&1 | grep -E "val loss")
[ -n "$one" ] && [ "$one" = "$two" ] && echo "ok   validation loss under ep 2 = one process: $(echo $two)" ||
    { echo "FAIL validation under ep 2: '$two' vs '$one'"; fails=$((fails + 1)); }
two=$($MPIRUN -np 2 $LMC train ${M/--quiet/} --batch 1 --grad-accum 1 --ep 2 --zero 3 $ev 2>&1 | grep -E "val loss")
[ -n "$one" ] && [ "$one" = "$two" ] && echo "ok   validation loss under ep 2, ZeRO-3 = one process: $(echo $two)" ||
    { echo "FAIL validation under ep 2, ZeRO-3: '$two' vs '$one'"; fails=$((fails + 1)); }

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
