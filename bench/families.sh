#!/usr/bin/env bash
# GPT-2 d6 beside a Llama-style model of the same parameter count, trained
# the same way on tinyshakespeare (GPT-2 tokens): prints both validation-loss
# curves as a table. The Llama model has RMSNorm, RoPE, SwiGLU, grouped-query
# attention (6 heads, 3 KV heads), no biases and a tied head; its MLP is 1152
# wide so that its blocks hold exactly as many weights as GPT-2's.
# Usage: bash bench/families.sh [steps] [text file]   (about 15 minutes on 2 cores at 300 steps)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-300}
TEXT=${2:-../shared/data/tinyshakespeare.txt}
LMC=${LMC:-build/lmc}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
[ -f data/gpt2/encoder.json ] || bash scripts/fetch_corpus.sh >/dev/null
$LMC tokenize --tokenizer data/gpt2 --input "$TEXT" --out "$W/ts" --val-fraction 0.1 2>/dev/null | tail -3
COMMON=(--data "$W/ts_train_*.bin" --val-data "$W/ts_val_*.bin" --tokenizer data/gpt2 --batch 8 --seq 256
    --steps "$STEPS" --lr 1e-3 --warmup 30 --weight-decay 0.1 --clip 1 --eval-every 25 --eval-batches 16
    --seed 1 --quiet)
$LMC train --model d6 "${COMMON[@]}" --log "$W/gpt2.jsonl"
$LMC train --model llama-15m --layers 6 --heads 6 --kv-heads 3 --dim 384 --ffn 1152 --vocab 50257 \
    --max-seq 1024 "${COMMON[@]}" --log "$W/llama.jsonl"
/usr/bin/python3 - "$W" <<'EOF'
import json, sys
w = sys.argv[1]
def curve(name):
    rows = [json.loads(l) for l in open("%s/%s.jsonl" % (w, name))]
    return {r["step"]: (r["val_loss"], r["tokens_per_s"]) for r in rows if "val_loss" in r}
g, l = curve("gpt2"), curve("llama")
print("%6s | %14s | %14s" % ("step", "GPT-2 d6 val", "Llama val"))
for s in sorted(g):
    print("%6d | %14.4f | %14.4f" % (s, g[s][0], l[s][0]))
EOF
