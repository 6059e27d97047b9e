#!/usr/bin/env bash
# Pipeline parallelism (--pp, 1F1B; --vpp, Megatron-LM's interleaved
# schedule) is exact: pp 2, pp 3 with a hand-set cut, pp 2 x vpp 2, pp 2 x
# tp 2, pp 2 x tp 2 x 2 data-parallel ranks with ZeRO-1, pp 2 x dp 2 with
# ZeRO-2 and with ZeRO-3 (interleaved, full recomputation) and Llama each
# give the weights and losses of one process running the same global batch,
# within that process's own float noise (lib.sh's equivalent). Evaluation
# and samples run through the stages and match one process. Checkpoints
# hold whole tensors whatever the layout: a pp 2 x tp 2 checkpoint loads
# exactly on 1 process and the reverse, and resumed runs continue as the
# uninterrupted one. Every stage's bubble is in the log. Bad layouts fail
# before step 1 with the reason.
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 40000 64
COMMON="--vocab 64 --max-seq 32 --seq 16 --data $T/train.bin --steps 6 --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --quiet"
GPT="--model d6 --layers 4 --dim 32 --heads 4 $COMMON"
LLAMA="--model llama-15m --layers 2 --dim 64 --heads 4 --kv-heads 2 --ffn 96 $COMMON"

equivalent gpt2-pp2 "$GPT" 2 "--batch 1 --grad-accum 4 --pp 2"
TOLG=$TOL
equivalent gpt2-pp3-cut "$GPT" 3 "--batch 1 --grad-accum 4 --pp 3 --pp-layers 2,1,1"
equivalent gpt2-pp2-vpp2 "$GPT" 2 "--batch 1 --grad-accum 4 --pp 2 --vpp 2"
equivalent gpt2-pp2-tp2 "$GPT" 4 "--batch 1 --grad-accum 4 --pp 2 --tp 2"
equivalent gpt2-pp2-tp2-sp "$GPT" 4 "--batch 1 --grad-accum 4 --pp 2 --tp 2 --sp"
equivalent gpt2-pp2-tp2-dp2-zero1 "$GPT" 8 "--batch 1 --grad-accum 2 --pp 2 --tp 2 --zero 1"
equivalent llama-pp2 "$LLAMA" 2 "--batch 1 --grad-accum 4 --pp 2 --recompute full"
equivalent gpt2-pp2-dp2-zero2 "$GPT" 4 "--batch 1 --grad-accum 2 --pp 2 --zero 2"
equivalent gpt2-pp2-vpp2-dp2-zero3 "$GPT" 4 "--batch 1 --grad-accum 2 --pp 2 --vpp 2 --zero 3 --recompute full"

# the bubble: each stage's share of the step spent waiting, in the log
check "every stage's bubble is logged" "$PY" -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
b = rows[-1]['pp_bubble']
assert len(b) == 2 and all(0 <= x < 1 for x in b), b
print('ok   pp_bubble', b)" "$T/gpt2-pp2/par.jsonl"
# the layout on the first step line (lmc plan --calibrate-log reads it) and
# each stage's peak memory
check "the log gives the run's layout and each stage's memory" "$PY" -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
run = rows[0]['run']
want = dict(dp=2, tp=2, pp=2, vpp=1, sp=False, zero=1, recompute='none', batch=1, grad_accum=2, seq=16,
            precision='fp32', threads=1, device='cpu')
assert {k: run[k] for k in want} == want, run
assert not any('run' in r for r in rows[1:])
m = rows[-1]['stage_rss_mb']
assert len(m) == 2 and all(x > 0 for x in m), m
print('ok   run', run, 'stage_rss_mb', m)" "$T/gpt2-pp2-tp2-dp2-zero1/par.jsonl"

# evaluation and samples go through the stages: the same as one process
ev="--val-data $T/train.bin --eval-every 3 --sample-every 3 --sample-tokens 8"
one=$($LMC train ${GPT/--quiet/} --batch 1 --grad-accum 4 $ev 2>&1 | grep -E "val loss|sample:")
two=$($MPIRUN -np 2 $LMC train ${GPT/--quiet/} --batch 1 --grad-accum 4 --pp 2 --vpp 2 $ev 2>&1 | grep -E "val loss|sample:")
[ -n "$one" ] && [ "$one" = "$two" ] && echo "ok   validation loss and samples under pp 2 x vpp 2 = one process" ||
    { echo "FAIL validation and samples under pp: '$two' vs '$one'"; fails=$((fails + 1)); }
ev3="--val-data $T/train.bin --eval-every 3 --eval-batches 3 --sample-every 3 --sample-tokens 8"
one=$($LMC train ${GPT/--quiet/} --batch 1 --grad-accum 4 $ev3 2>&1 | grep -E "val loss|sample:")
z3=$($MPIRUN -np 4 $LMC train ${GPT/--quiet/} --batch 1 --grad-accum 2 --pp 2 --zero 3 $ev3 --out "$T/z3" --save-every 3 \
    2>&1 | grep -E "val loss|sample:")
[ -n "$one" ] && [ "$one" = "$z3" ] &&
    echo "ok   validation (3 batches on 2 replicas) and samples under pp 2 x dp 2 ZeRO-3 = one process" ||
    { echo "FAIL validation and samples under pp x ZeRO-3: '$z3' vs '$one'"; fails=$((fails + 1)); }
cp -r "$T/z3" "$T/z3r" && rm -rf "$T/z3r/step_00000006" && echo step_00000003 >"$T/z3r/latest"
expect_ok "the pp 2 x dp 2 ZeRO-3 checkpoint on 1 process, no steps" $LMC train $GPT --batch 1 --grad-accum 4 --steps 3 \
    --resume "$T/z3r" --save "$T/z3at3.st"
check "pp 2 x ZeRO-3 -> 1 process loads exactly" $CMP weights "$T/z3/step_00000003/model.safetensors" "$T/z3at3.st" 0

# checkpoints: whole tensors whatever the layout
d=$T/ckpt
A="$GPT --batch 1 --grad-accum 4"
expect_ok "pp 2 x tp 2 with checkpoints" $MPIRUN -np 4 $LMC train $A --pp 2 --tp 2 --out "$d/run" --save-every 3 \
    --keep 0 --save "$d/full.st"
expect_ok "1 process with checkpoints" $LMC train $A --out "$d/one" --save-every 3 --keep 0 --save "$d/one.st"
for w in r1 rpp; do
    cp -r "$d/run" "$d/$w" && rm -rf "$d/$w/step_00000006" && echo step_00000003 >"$d/$w/latest"
done
cp -r "$d/one" "$d/r3d" && rm -rf "$d/r3d/step_00000006" && echo step_00000003 >"$d/r3d/latest"
expect_ok "the pp 2 x tp 2 checkpoint on 1 process, no steps" $LMC train $A --steps 3 --resume "$d/r1" --save "$d/at3-one.st"
check "pp 2 x tp 2 -> 1 process loads exactly" $CMP weights "$d/run/step_00000003/model.safetensors" "$d/at3-one.st" 0
expect_ok "a 1-process checkpoint on pp 2 x tp 2, no steps" $MPIRUN -np 4 $LMC train $A --pp 2 --tp 2 --steps 3 \
    --resume "$d/r3d" --save "$d/at3-pp.st"
check "1 process -> pp 2 x tp 2 loads exactly" $CMP weights "$d/one/step_00000003/model.safetensors" "$d/at3-pp.st" 0
expect_ok "resume the pp 2 x tp 2 checkpoint on 1 process" $LMC train $A --resume "$d/r1" --save "$d/r1.st"
expect_ok "resume the pp 2 x tp 2 checkpoint on pp 2" $MPIRUN -np 2 $LMC train $A --pp 2 --resume "$d/rpp" \
    --save "$d/rpp.st"
check "pp 2 x tp 2 -> 1 process continues as the uninterrupted run" $CMP weights "$d/full.st" "$d/r1.st" "$TOLG"
check "pp 2 x tp 2 -> pp 2 continues as the uninterrupted run" $CMP weights "$d/full.st" "$d/rpp.st" "$TOLG"

# bad layouts: a clear error before step 1
expect_fail "more stages than layers" "a model of 4 layers has 1 to 4 pipeline stages" \
    $MPIRUN -np 5 $LMC train $GPT --batch 1 --grad-accum 5 --pp 5
expect_fail "grad-accum smaller than pp" "--grad-accum 1 is smaller than --pp 2" \
    $MPIRUN -np 2 $LMC train $GPT --batch 1 --grad-accum 1 --pp 2
expect_fail "a cut that does not sum to the layers" "--pp-layers 2,1: the counts sum to 3 but the model has 4 layers" \
    $MPIRUN -np 2 $LMC train $GPT --batch 1 --grad-accum 2 --pp 2 --pp-layers 2,1
expect_fail "a cut with too few stages" "--pp-layers 4: give 2 counts" \
    $MPIRUN -np 2 $LMC train $GPT --batch 1 --grad-accum 2 --pp 2 --pp-layers 4
expect_fail "pp not dividing the ranks" "--pp 2 does not divide the 3 ranks" \
    $MPIRUN -np 3 $LMC train $GPT --batch 1 --grad-accum 2 --pp 2
expect_fail "vpp without pp" "--vpp 2 interleaves the chunks of a pipeline: it needs --pp >= 2" \
    $LMC train $GPT --batch 1 --vpp 2
expect_fail "vpp with grad-accum not a multiple of pp" "--grad-accum 3 must be a multiple of --pp 2" \
    $MPIRUN -np 2 $LMC train $GPT --batch 1 --grad-accum 3 --pp 2 --vpp 2
expect_fail "pp x vpp more than the layers" "--pp 2 x --vpp 4 = 8 virtual stages but the model has 4 layers" \
    $MPIRUN -np 2 $LMC train $GPT --batch 1 --grad-accum 2 --pp 2 --vpp 4
expect_fail "pp with ZeRO-2 and --balance auto" "--pp with --zero 2 and --balance auto is not supported" \
    $MPIRUN -np 4 $LMC train $GPT --batch 1 --grad-accum 2 --pp 2 --zero 2 --balance auto

finish
