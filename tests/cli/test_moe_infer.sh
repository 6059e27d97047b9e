#!/usr/bin/env bash
# Mixture-of-experts models in the inference engine: lmc generate (KV cache,
# tokens grouped by expert) gives exactly the tokens of the plain
# full-recompute `lmc sample` (greedy) for a Mixtral-format model (softmax
# router, top 2 of 4) and a DeepSeek-shaped one (a dense first layer, a
# sigmoid router, a shared expert); --quant bf16/int8 run (the router stays
# fp32). The engine-vs-forward logits and batching are
# tests/unit/test_infer.c's; lmc serve and llama.cpp on the GGUF export
# are tests/node/test_moe.mjs's.
. "$(dirname "$0")/lib.sh"

make_shard "$T/d.bin" 6000 64
cat >"$T/mixtral.json" <<JSON
{"model_type": "mixtral", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 32, "intermediate_size": 24, "max_position_embeddings": 64, "vocab_size": 300,
 "num_local_experts": 4, "num_experts_per_tok": 2, "router_aux_loss_coef": 0.02}
JSON
cat >"$T/deepseek.json" <<JSON
{"model_type": "mixtral", "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4,
 "hidden_size": 32, "intermediate_size": 16, "max_position_embeddings": 64, "vocab_size": 64,
 "num_local_experts": 6, "num_experts_per_tok": 2, "router_aux_loss_coef": 0.01,
 "scoring_func": "sigmoid", "n_shared_experts": 1, "first_k_dense_replace": 1}
JSON
for m in mixtral deepseek; do
    expect_ok "$m: trained" $LMC_FAST train --model "$T/$m.json" --data "$T/d.bin" --batch 4 --seq 32 --steps 40 \
        --lr 1e-2 --warmup 4 --save "$T/$m/" --quiet
done

for m in mixtral deepseek; do
    same_as_sample "$m greedy == sample, 1-token prompt" "$T/$m/" "5" 24
    same_as_sample "$m greedy == sample, 11-token prompt" "$T/$m/" "1 8 15 22 29 36 43 50 57 0 7" 24
    for q in bf16 int8; do
        out=$($LMC generate --model "$T/$m/" --prompt-ids "1 2 3" --max-tokens 8 --temperature 0 --quant $q --quiet 2>&1)
        if [ "$(echo "$out" | wc -w)" -eq 8 ]; then echo "ok   $m --quant $q"; else
            echo "FAIL $m --quant $q: $out"; fails=$((fails + 1)); fi
    done
done

# GGUF (llama.cpp's Mixtral layout) and back: the same greedy tokens; what
# llama.cpp's llama architecture cannot hold is refused, naming it
for i in $(seq 1 200); do echo "the cat sat on the mat $i times, the dog did not"; done >"$T/text.txt"
expect_ok "a 300-token tokenizer" $LMC_FAST tokenizer train --vocab-size 300 --input "$T/text.txt" --out "$T/tok" \
    --special "<|endoftext|>"
expect_ok "mixtral: lmc export --type f32" $LMC export --model "$T/mixtral/" --out "$T/mixtral.gguf" --type f32 \
    --tokenizer "$T/tok"
same_as_sample "mixtral.gguf greedy == sample of the safetensors" "$T/mixtral/" "3 1 4 1 5" 16 --model "$T/mixtral.gguf"
expect_fail "deepseek: export refused" "sigmoid scores \(scoring_func sigmoid\)" \
    $LMC export --model "$T/deepseek/" --out "$T/deepseek.gguf" --tokenizer "$T/tok"
finish
