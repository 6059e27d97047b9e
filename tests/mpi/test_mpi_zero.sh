#!/usr/bin/env bash
# ZeRO-2 and ZeRO-3 are exact: 4 ranks x 1 sequence give the final weights
# and losses of one process running the same global batch (1 x accum 4),
# within the float noise of that process computing the batch other ways
# (lib.sh's equivalent): the tolerance is measured, not chosen. The same with Llama
# (GQA), with bf16, with recomputation, and with --balance auto and a
# slowed rank (a rank with fewer micro-batches joins the others' gathers and
# reduce-scatters). A
# half-size batch must differ by more than the tolerance, so the check can
# fail. Checkpoints written by 4 ZeRO-3 ranks (each rank its own files, HF's
# sharded layout) resume on 2 ranks and on 1 process and continue as the
# uninterrupted run.
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 40000 64
COMMON="--vocab 64 --max-seq 32 --seq 16 --data $T/train.bin --steps 6 --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --quiet"
GPT="--model d6 --layers 3 --dim 32 --heads 2 $COMMON"
LLAMA="--model llama-15m --layers 2 --dim 64 --heads 4 --kv-heads 2 --ffn 96 $COMMON"

P4="--batch 1 --grad-accum 1"
equivalent gpt2-zero2 "$GPT" 4 "$P4 --zero 2"
equivalent gpt2-zero3 "$GPT" 4 "$P4 --zero 3"
expect_ok "half the batch" $LMC train $GPT --batch 1 --grad-accum 2 --save "$T/half.st"
check "a different batch is caught" $CMP differ "$T/gpt2-zero3/one-1-cpu.st" "$T/half.st" "$TOL"
equivalent gpt2-zero3-recompute "$GPT" 4 "$P4 --zero 3 --recompute full"
equivalent llama-zero3 "$LLAMA" 4 "$P4 --zero 3"
equivalent llama-zero2 "$LLAMA" 4 "$P4 --zero 2 --recompute selective"
equivalent gpt2-zero3-bf16 "$GPT --precision bf16" 4 "$P4 --zero 3"
MPIRUN="$MPIRUN -x LMC_TEST_SLOWDOWN=4@1" equivalent gpt2-zero3-balance "$GPT" 2 "--batch 1 --grad-accum 2 --zero 3 --balance auto"
mb=$($CMP field "$T/gpt2-zero3-balance/par.jsonl" mb)
read -r mb0 mb1 <<<"$mb"
[ "$mb0" -gt "$mb1" ] && echo "ok   balanced micro-batches per rank: $mb" ||
    { echo "FAIL balance did not move micro-batches to the fast rank: $mb"; fails=$((fails + 1)); }

# checkpoints: 4 ranks write, 2 ranks and 1 process resume
d=$T/ckpt
expect_ok "4 ranks ZeRO-3 with checkpoints" $MPIRUN -np 4 $LMC train $GPT --batch 1 --zero 3 --out "$d/run" \
    --save-every 3 --keep 0 --save "$d/full.st" --log "$d/full.jsonl"
ls "$d/run/step_00000003" | grep -q "model-00004-of-00004.safetensors" &&
    ls "$d/run/step_00000003" | grep -q "optim-00004-of-00004.safetensors" &&
    [ -f "$d/run/step_00000003/model.safetensors.index.json" ] &&
    echo "ok   each rank wrote its weights and optimizer shard: $(ls "$d/run/step_00000003" | tr '\n' ' ')" ||
    { echo "FAIL checkpoint files: $(ls "$d/run/step_00000003")"; fails=$((fails + 1)); }
for np in 2 1; do
    cp -r "$d/run" "$d/r$np" && rm -rf "$d/r$np/step_00000006" && echo step_00000003 >"$d/r$np/latest"
done
expect_ok "resume on 2 ranks (ZeRO-3)" $MPIRUN -np 2 $LMC train $GPT --batch 1 --grad-accum 2 --zero 3 \
    --resume "$d/r2" --save "$d/r2.st"
expect_ok "resume on 1 process (no ZeRO)" $LMC train $GPT --batch 1 --grad-accum 4 --resume "$d/r1" --save "$d/r1.st"
check "4 -> 2 ranks continues as the uninterrupted run" $CMP weights "$d/full.st" "$d/r2.st" "$TOL"
check "4 -> 1 process continues as the uninterrupted run" $CMP weights "$d/full.st" "$d/r1.st" "$TOL"
expect_ok "a ZeRO-3 checkpoint loads in lmc sample" $LMC_FAST sample --model "$d/run/step_00000006" --max-tokens 4 \
    --prompt-ids "1 2 3"
finish
