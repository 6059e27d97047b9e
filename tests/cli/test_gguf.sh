#!/usr/bin/env bash
# GGUF from the command line (runs under ASan + UBSan in scripts/test.sh):
# - lmc export writes f32 / f16 / bf16 / q8_0 files that generate, sample,
#   encode and serve read back; f32 is bit-exact: training from --init
#   x.gguf gives the same bits as from the safetensors it came from, and
#   a run resumed from its checkpoint equals an uninterrupted one;
# - bad GGUF files (truncated, wrong magic or version, absurd counts,
#   strings and arrays past the end, overflowing dimensions, unknown tensor
#   types or architectures, tensors outside the file) and bad export flags
#   get a clear message naming the key or tensor, a non-zero exit, no crash.
. "$(dirname "$0")/lib.sh"

printf 'The cat sat on the mat. The dog sat on the log. Hello world, it is 12:30.\n%.0s' $(seq 50) > "$T/text.txt"
expect_ok "tokenizer" $LMC_FAST tokenizer train --vocab-size 300 --input "$T/text.txt" --out "$T/tok" \
    --special "<|endoftext|>" --quiet
make_shard "$T/train.bin" 20000 300
M="--model d6 --layers 2 --dim 32 --heads 2 --vocab 300 --max-seq 32"
expect_ok "tiny GPT-2" $LMC_FAST train $M --batch 2 --seq 16 --data "$T/train.bin" --steps 3 --quiet \
    --save "$T/m.safetensors"
for t in f32 f16 bf16 q8_0; do
    expect_ok "export $t" $LMC export --model "$T/m.safetensors" --tokenizer "$T/tok" --type $t --out "$T/m-$t.gguf"
done

same() { # NAME FILE_A FILE_B
    if cmp -s "$2" "$3"; then echo "ok   $1"; else echo "FAIL $1: $2 and $3 differ"; fails=$((fails + 1)); fi
}

# reading back: text, ids, tokenizer
echo "The cat sat on the log." > "$T/in.txt"
$LMC encode --tokenizer "$T/tok" < "$T/in.txt" > "$T/ids_a"
$LMC encode --tokenizer "$T/m-f32.gguf" < "$T/in.txt" > "$T/ids_b"
same "encode with the GGUF's tokenizer" "$T/ids_a" "$T/ids_b"
$LMC generate --model "$T/m.safetensors" --tokenizer "$T/tok" --prompt "The cat" --max-tokens 8 --temperature 0 \
    --quiet > "$T/gen_a"
$LMC generate --model "$T/m-f32.gguf" --prompt "The cat" --max-tokens 8 --temperature 0 --quiet > "$T/gen_b"
same "generate from the GGUF (its own tokenizer) = from safetensors" "$T/gen_a" "$T/gen_b"
$LMC sample --model "$T/m-f32.gguf" --prompt-ids "5 6 7" --max-tokens 4 --temperature 0 > "$T/s_b"
$LMC sample --model "$T/m.safetensors" --prompt-ids "5 6 7" --max-tokens 4 --temperature 0 > "$T/s_a"
same "sample --prompt-ids from the GGUF" "$T/s_a" "$T/s_b"
for t in f16 bf16 q8_0; do
    expect_ok "generate from $t" $LMC generate --model "$T/m-$t.gguf" --prompt "The" --max-tokens 4 --quiet
done
expect_ok "re-export a GGUF (its tokenizer inside)" $LMC export --model "$T/m-f32.gguf" --out "$T/again.gguf" --name m
same "f32 GGUF -> f32 GGUF is byte-identical" "$T/m-f32.gguf" "$T/again.gguf"

# training from the GGUF: the same bits as from the safetensors; resume exact
ARGS="--data $T/train.bin --batch 2 --seq 16 --steps 6 --lr 3e-3 --warmup 2 --quiet"
expect_ok "train --init x.safetensors" $LMC train --init "$T/m.safetensors" $ARGS --save "$T/t_st.safetensors"
expect_ok "train --init x.gguf with checkpoints" $LMC train --init "$T/m-f32.gguf" $ARGS --out "$T/ck" \
    --save-every 3 --keep 0 --save "$T/t_gguf.safetensors"
same "training from the GGUF = from the safetensors" "$T/t_st.safetensors" "$T/t_gguf.safetensors"
expect_ok "resume from step 3" $LMC train --init "$T/m-f32.gguf" $ARGS --resume "$T/ck/step_00000003" \
    --save "$T/t_res.safetensors"
same "resumed run = uninterrupted run" "$T/t_gguf.safetensors" "$T/t_res.safetensors"

# bad files, made from the good one by the fields' offsets
"$PY" - "$T" <<'PYEOF'
import struct, sys
d = sys.argv[1]
good = open(f"{d}/m-f32.gguf", "rb").read()
def put(name, data): open(f"{d}/{name}.gguf", "wb").write(data)
def patch(name, at, fmt, value):
    b = bytearray(good); struct.pack_into(fmt, b, at, value); put(name, bytes(b))
def after(s): # offset just past the string s (a key or tensor name)
    i = good.find(s.encode()); assert i > 0, s; return i + len(s)
put("trunc_header", good[:20])
put("trunc_kv", good[:1000])
put("trunc_data", good[:len(good) - 100])
patch("magic", 0, "<I", 0x58554747)
patch("version", 4, "<I", 7)
patch("n_tensors", 8, "<Q", 1 << 62)
patch("n_kv", 16, "<Q", (1 << 64) - 1)
patch("key_len", 24, "<Q", 1 << 63)
patch("arr_count", after("tokenizer.ggml.tokens") + 8, "<Q", 1 << 61)
patch("arr_type", after("tokenizer.ggml.token_type") + 4, "<I", 9)
patch("dims", after("token_embd.weight") + 4, "<Q", 1 << 62)
patch("ndims", after("token_embd.weight"), "<I", 9)
patch("ttype", after("blk.0.attn_qkv.weight") + 4 + 16, "<I", 12)
patch("offset", after("output_norm.bias") + 4 + 8 + 4, "<Q", 1 << 40)
b = bytearray(good); i = after("general.architecture") + 12; b[i:i + 4] = b"gpX2"; put("arch", bytes(b))
b = bytearray(good); i = after("tokenizer.ggml.pre") + 12; b[i:i + 5] = b"gpt-9"; put("pre", bytes(b))
PYEOF
bad() { # NAME PATTERN: as --model of generate
    expect_fail "$1" "$2" $LMC generate --model "$T/$1.gguf" --prompt-ids "1 2" --max-tokens 2
}
bad trunc_header "trunc_header.gguf: truncated: the header needs 8 bytes at offset 16, but the file ends at 20"
bad trunc_kv "trunc_kv.gguf: key 'tokenizer.ggml.tokens': 300 strings cannot fit in the [0-9]+ bytes left"
bad trunc_data "trunc_data.gguf: tensor '.*': its [0-9]+ bytes at data offset [0-9]+ lie outside the file"
bad magic "magic.gguf: not a GGUF file \(magic bytes 47 47 55 58, expected 'GGUF'\)"
bad version "version.gguf: GGUF version 7; lmc reads versions 2 and 3"
bad n_tensors "n_tensors.gguf: header claims 4611686018427387904 tensors"
bad n_kv "n_kv.gguf: header claims 18446744073709551615 keys"
bad key_len "key_len.gguf: key 0: a string of 9223372036854775808 bytes at offset 24 runs past the end"
bad arr_count "arr_count.gguf: key 'tokenizer.ggml.tokens': 2305843009213693952 strings cannot fit"
bad arr_type "arr_type.gguf: key 'tokenizer.ggml.token_type': arrays of arrays are not supported"
bad dims "dims.gguf: tensor 'token_embd.weight': dimension 1 \(300\) makes the element count overflow"
bad ndims "ndims.gguf: tensor 'token_embd.weight' has 9 dimensions \(1 to 4 allowed\)"
bad ttype "ttype.gguf: tensor 'blk.0.attn_qkv.weight' has type Q4_K \(12\); lmc reads F32, F16, BF16 and Q8_0"
bad offset "offset.gguf: tensor 'output_norm.bias': its 128 bytes at data offset 1099511627776 lie outside"
bad arch "arch.gguf: key 'general.architecture' is 'gpX2'; lmc reads 'gpt2' and 'llama'"
expect_fail "unknown pre-tokenizer (encode)" "pre.gguf: key 'tokenizer.ggml.pre' is 'gpt-9'" \
    $LMC encode --tokenizer "$T/pre.gguf" < "$T/in.txt"
expect_fail "truncated file as --init" "trunc_data.gguf: tensor .* lie outside the file" \
    $LMC train --init "$T/trunc_data.gguf" --data "$T/train.bin" --steps 1
expect_fail "truncated file as serve's model" "trunc_kv.gguf" $LMC serve --model "$T/trunc_kv.gguf" --port 0
expect_fail "missing GGUF" "nope.gguf: cannot open" $LMC generate --model "$T/nope.gguf" --prompt-ids 1

# bad export requests
expect_fail "export: unknown type" "--type: unknown type 'q4_0' \(use f32, f16, bf16 or q8_0\)" \
    $LMC export --model "$T/m.safetensors" --tokenizer "$T/tok" --type q4_0 --out "$T/x.gguf"
expect_fail "export: unknown format" "--format: unknown format 'onnx'" \
    $LMC export --model "$T/m.safetensors" --tokenizer "$T/tok" --format onnx --out "$T/x.gguf"
expect_fail "export: no tokenizer" "--tokenizer DIR is required" $LMC export --model "$T/m.safetensors" --out "$T/x.gguf"
expect_ok "a model with fewer rows than tokens" $LMC_FAST train --model d6 --layers 1 --dim 32 --heads 2 --vocab 64 \
    --max-seq 32 --batch 2 --seq 16 --data "$T/train.bin" --steps 0 --quiet --save "$T/small.safetensors"
expect_fail "export: tokenizer larger than the model" "the tokenizer has [0-9]+ tokens but the model only 64" \
    $LMC export --model "$T/small.safetensors" --tokenizer "$T/tok" --out "$T/x.gguf"
[ ! -e "$T/x.gguf" ] && echo "ok   no file left by a failed export" || { echo "FAIL x.gguf exists"; fails=$((fails + 1)); }
expect_fail "serve: neither tokenizer nor GGUF" "--tokenizer DIR are required" $LMC serve --model "$T/m.safetensors"
finish
