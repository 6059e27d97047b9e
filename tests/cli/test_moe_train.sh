#!/usr/bin/env bash
# Training a mixture of experts on one process, beyond the oracle
# (tests/oracle/test_moe_oracle.py): the same seed gives the same bits; 10
# steps == 5, checkpoint, resume, 5 more (byte-identical weights, identical
# losses and aux losses; gradient accumulation, clipping, warmup); the log
# has aux_loss beside loss; the moe-8x preset's shape; a Mixtral-format
# folder written by lmc loads back in lmc sample.
. "$(dirname "$0")/lib.sh"

make_shard "$T/train.bin" 20000 64
cat >"$T/moe.json" <<EOF
{"model_type": "mixtral", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 32, "intermediate_size": 24, "max_position_embeddings": 32, "vocab_size": 64,
 "num_local_experts": 4, "num_experts_per_tok": 2, "output_router_logits": true, "router_aux_loss_coef": 0.02}
EOF
ARGS="--model $T/moe.json --data $T/train.bin --batch 2 --seq 16 --steps 10 --lr 3e-3 --warmup 2 --grad-accum 2 --clip 0.5 --quiet"

expect_ok "run A: 10 steps with checkpoints" $LMC train $ARGS --out "$T/A" --save-every 5 --keep 0 \
    --log "$T/a.jsonl" --save "$T/a.safetensors"
expect_ok "run A again: same seed" $LMC train $ARGS --log "$T/a2.jsonl" --save "$T/a2.safetensors"
if cmp -s "$T/a.safetensors" "$T/a2.safetensors"; then echo "ok   same seed, same bits"; else
    echo "FAIL same seed gave different weights"; fails=$((fails + 1)); fi
expect_ok "run B: resume from step 5" $LMC train $ARGS --resume "$T/A/step_00000005" --log "$T/b.jsonl" \
    --save "$T/b.safetensors"
if cmp -s "$T/a.safetensors" "$T/b.safetensors"; then echo "ok   resumed weights are bit-identical"; else
    echo "FAIL resumed weights differ"; fails=$((fails + 1)); fi
cols() { "$PY" -c "import json,sys; [print(r['loss'], r['aux_loss']) for r in map(json.loads, open(sys.argv[1]))]" "$1"; }
if [ "$(cols "$T/a.jsonl" | tail -n 5)" = "$(cols "$T/b.jsonl")" ] && [ -n "$(cols "$T/b.jsonl")" ]; then
    echo "ok   steps 6-10: losses and aux losses identical"
else
    echo "FAIL resumed losses differ"; fails=$((fails + 1))
fi
# the load-balancing loss: E * sum_e f_e P_e lies in [k, E k]; k = 2 at perfect balance
if "$PY" -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(not (len(rows) == 10 and all(2 - 1e-4 <= r.get("aux_loss", -1) <= 8 for r in rows)))' "$T/a.jsonl"; then
    echo "ok   aux_loss logged beside loss, in [2, 8]"
else
    echo "FAIL aux_loss missing or out of range: $(head -1 "$T/a.jsonl")"; fails=$((fails + 1))
fi

out=$($LMC train --model moe-8x --vocab 64 --layers 2 --data "$T/train.bin" --batch 1 --seq 8 --steps 0 2>&1)
echo "$out" | grep -q "8 experts of width 704, top 2 (softmax)" && echo "ok   moe-8x: $(echo "$out" | head -1)" ||
    { echo "FAIL moe-8x: $out"; fails=$((fails + 1)); }
out=$($LMC train --model moe-8x --data "$T/train.bin" --batch 1 --seq 8 --steps 0 2>&1)
echo "$out" | grep -q "vocab 50257, ctx 1024, 103.4M params" && echo "ok   moe-8x has 103.4M parameters" ||
    { echo "FAIL moe-8x size: $(echo "$out" | head -1)"; fails=$((fails + 1)); }

expect_ok "saved as a Mixtral folder" $LMC train $ARGS --steps 2 --save "$T/hf/"
grep -q '"model_type": "mixtral"' "$T/hf/config.json" && echo "ok   config.json says mixtral" ||
    { echo "FAIL config.json"; fails=$((fails + 1)); }
expect_ok "lmc sample runs it" $LMC sample --model "$T/hf/" --prompt-ids "1 2 3" --max-tokens 4
finish
