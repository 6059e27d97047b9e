#!/usr/bin/env bash
# Determinism and checkpoints:
# - the same seed gives the same bits;
# - 20 steps == 10 steps, checkpoint, resume, 10 more: identical losses and
#   byte-identical final weights (shuffled data, warmup + cosine, clipping,
#   gradient accumulation);
# - a process killed while checkpointing never damages the last good
#   checkpoint, and training resumes from it.
. "$(dirname "$0")/lib.sh"

make_shard "$T/train.bin" 20000 64
ARGS="$TINY --data $T/train.bin --steps 20 --lr 3e-3 --warmup 4 --grad-accum 2 --clip 0.5 --quiet"

expect_ok "run A: 20 steps with checkpoints" $LMC train $ARGS --out "$T/A" --save-every 10 --keep 0 \
    --log "$T/a.jsonl" --save "$T/a.safetensors"
expect_ok "run A again: same seed" $LMC train $ARGS --log "$T/a2.jsonl" --save "$T/a2.safetensors"
if cmp -s "$T/a.safetensors" "$T/a2.safetensors"; then echo "ok   same seed, same bits"; else
    echo "FAIL same seed gave different weights"; fails=$((fails + 1)); fi
expect_ok "run B: resume from step 10" $LMC train $ARGS --resume "$T/A/step_00000010" --log "$T/b.jsonl" \
    --save "$T/b.safetensors"
if cmp -s "$T/a.safetensors" "$T/b.safetensors"; then echo "ok   resumed weights are bit-identical"; else
    echo "FAIL resumed weights differ"; fails=$((fails + 1)); fi
a=$(tail -n 10 "$T/a.jsonl" | sed 's/.*"loss":\([^,]*\),.*/\1/' | tr '\n' ' ')
b=$(sed 's/.*"loss":\([^,]*\),.*/\1/' "$T/b.jsonl" | tr '\n' ' ')
if [ "$a" = "$b" ] && [ -n "$a" ]; then echo "ok   steps 11-20 losses identical: $b"; else
    echo "FAIL losses differ: uninterrupted '$a' vs resumed '$b'"; fails=$((fails + 1)); fi
[ "$(cat "$T/A/latest")" = "step_00000020" ] && echo "ok   latest names the newest checkpoint" ||
    { echo "FAIL latest = $(cat "$T/A/latest")"; fails=$((fails + 1)); }
different=$($LMC train $ARGS --seed 7 --steps 2 --log "$T/c.jsonl" >/dev/null 2>&1; head -1 "$T/c.jsonl")
[ "$different" != "$(head -1 "$T/a.jsonl")" ] && echo "ok   another seed, another run" ||
    { echo "FAIL seed ignored"; fails=$((fails + 1)); }

# kill -9 at random moments while checkpointing every step: each round waits
# until the run has written a new checkpoint (so a slow machine still gets
# there), then kills it a random fraction of a step later
BIG="--model d6 --layers 4 --dim 128 --heads 4 --vocab 64 --max-seq 32 --batch 2 --seq 16"
for i in 1 2 3 4 5; do
    resume=""; [ -f "$T/K/latest" ] && resume="--resume $T/K"
    before=$(cat "$T/K/latest" 2>/dev/null)
    $LMC_FAST train $BIG --data "$T/train.bin" --steps 100000 --out "$T/K" --save-every 1 --keep 2 --quiet $resume &
    pid=$!
    for _ in $(seq 600); do
        [ -f "$T/K/latest" ] && [ "$(cat "$T/K/latest")" != "$before" ] && break
        sleep 0.05
    done
    sleep "0.$((RANDOM % 9))"
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
done
latest=$(cat "$T/K/latest" 2>/dev/null)
if [ -n "$latest" ] && [ -f "$T/K/$latest/state.json" ] && [ -f "$T/K/$latest/model.safetensors" ] &&
    [ -f "$T/K/$latest/optim.safetensors" ]; then echo "ok   after 5 kills latest ($latest) is complete"; else
    echo "FAIL latest checkpoint incomplete: '$latest'"; ls -la "$T/K"; fails=$((fails + 1)); fi
step=$((10#${latest#step_}))
expect_fail "resume with a different model" "holds a different model" $LMC_FAST train $TINY \
    --data "$T/train.bin" --resume "$T/K"
expect_ok "resume after kills" $LMC_FAST train $BIG --data "$T/train.bin" --steps $((step + 1)) --resume "$T/K" \
    --out "$T/K" --quiet
finish
