#!/usr/bin/env bash
# --save into a folder writes Hugging Face's sharded layout once the model
# exceeds --max-shard-mb (model-0000k-of-0000n.safetensors + index), and
# --init / lmc sample read it: the weights read back are the ones a
# single-file save holds, to the bit.
. "$(dirname "$0")/lib.sh"
make_shard "$T/train.bin" 20000 64
ARGS="--data $T/train.bin --batch 2 --seq 16 --threads 1 --quiet"
MODEL="--model d6 --layers 3 --dim 32 --heads 2 --vocab 64 --max-seq 32"
expect_ok "train, save one file" $LMC train $MODEL $ARGS --steps 2 --save "$T/one.safetensors"
expect_ok "train, save sharded" $LMC train $MODEL $ARGS --steps 2 --save "$T/sharded/" --max-shard-mb 0.05
n=$(ls "$T/sharded" | grep -c '^model-000..-of-000..\.safetensors$')
[ "$n" -gt 1 ] && [ -f "$T/sharded/model.safetensors.index.json" ] && echo "ok   $n shard files and an index" ||
    { echo "FAIL sharded layout: $(ls "$T/sharded")"; fails=$((fails + 1)); }
expect_ok "--init reads the sharded folder" $LMC train --init "$T/sharded" $ARGS --steps 0 --save "$T/back.safetensors"
cmp -s "$T/one.safetensors" "$T/back.safetensors" && echo "ok   sharded weights read back equal the single file" ||
    { echo "FAIL weights read from the shards differ"; fails=$((fails + 1)); }
expect_ok "lmc sample reads the sharded folder" $LMC sample --model "$T/sharded" --max-tokens 2 --prompt-ids "1 2"
finish
