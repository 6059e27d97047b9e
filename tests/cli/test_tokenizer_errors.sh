#!/usr/bin/env bash
# test_tokenizer_errors.sh: the tokenizer commands on bad input: missing or
# malformed encoder.json / vocab.bpe / lmc-tokenizer.json, merges naming
# unknown tokens, ids out of range, a vocabulary too large for uint16 shards,
# unreadable inputs. Each must fail with a non-zero exit and a message that
# names the file, the field or line, and the value. Also a short success path
# (train, encode, decode, tokenize, convert) so the fixtures are known good.
# Usage: LMC=build/lmc bash tests/cli/test_tokenizer_errors.sh
set -u
LMC=${LMC:-build/lmc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

# expect CODE NEEDLE... -- CMD...: CMD exits with CODE and stderr holds every NEEDLE
expect() {
    local code=$1; shift
    local needles=()
    while [ "$1" != "--" ]; do needles+=("$1"); shift; done
    shift
    local err rc
    err=$("$@" 2>&1 >/dev/null </dev/null)
    rc=$?
    if [ "$rc" != "$code" ]; then
        echo "FAIL: exit $rc (want $code): $*"; echo "      $err"; fails=$((fails + 1)); return
    fi
    for n in "${needles[@]}"; do
        if [[ "$err" != *"$n"* ]]; then
            echo "FAIL: message lacks '$n': $*"; echo "      $err"; fails=$((fails + 1)); return
        fi
    done
}

ok() { # CMD...: must succeed
    if ! "$@" >/dev/null 2>"$T/err"; then
        echo "FAIL: $* -> $(cat "$T/err")"; fails=$((fails + 1))
    fi
}

# ---------- fixtures: a small trained tokenizer, in both formats ----------
awk 'BEGIN { srand(7); split("the of and a to in is it\047s café naïve 中文 fox dog", w, " ")
    for (l = 0; l < 600; l++) {
        line = ""
        for (k = 0; k < 12; k++) {
            if (rand() < 0.5) word = w[int(rand() * 13) + 1]
            else { word = ""; n = 1 + int(rand() * 6); for (c = 0; c < n; c++) word = word substr("etaoinshrdlucmfw", int(rand() * 16) + 1, 1) }
            line = line (k ? " " : "") word
        }
        print line "."; if (rand() < 0.3) print ""
    } }' > "$T/text.txt"
ok "$LMC" tokenizer train --vocab-size 400 --input "$T/text.txt" --out "$T/tok" --special "<|endoftext|>" --quiet
mkdir -p "$T/g2"
cp "$T/tok/encoder.json" "$T/tok/vocab.bpe" "$T/g2/"

# ---------- a short success path ----------
printf 'Hello <|endoftext|> wörld\n' > "$T/in.txt"
"$LMC" encode --tokenizer "$T/g2" < "$T/in.txt" > "$T/ids.txt" || { echo "FAIL: encode"; fails=$((fails + 1)); }
"$LMC" decode --tokenizer "$T/tok" < "$T/ids.txt" > "$T/back.txt" || { echo "FAIL: decode"; fails=$((fails + 1)); }
cmp -s "$T/in.txt" "$T/back.txt" || { echo "FAIL: decode(encode(x)) != x"; fails=$((fails + 1)); }
eot=$("$LMC" tokenizer info --tokenizer "$T/tok" | awk '$1 == "special" {print $2}')
[ "$eot" = 399 ] || { echo "FAIL: info: special id '$eot'"; fails=$((fails + 1)); }
ids=$(printf 'a<|endoftext|>b' | "$LMC" encode --tokenizer "$T/tok" --special)
[[ " $ids " == *" 399 "* ]] || { echo "FAIL: encode --special: $ids"; fails=$((fails + 1)); }
# a word holding a NUL byte is no id (it read as the digits before the NUL)
err=$(printf '1\0009 2' | "$LMC" decode --tokenizer "$T/tok" 2>&1 >/dev/null)
[ $? = 1 ] && [[ "$err" == *"<stdin>: token 1 holds a NUL byte"* ]] || { echo "FAIL: decode of '1<NUL>9': $err"; fails=$((fails + 1)); }
ok "$LMC" tokenize --tokenizer "$T/tok" --input "$T/text.txt" --out "$T/sh/x" --quiet --block-bytes 1000
[ -s "$T/sh/x_train_000000.bin" ] && [ -s "$T/sh/x_val_000000.bin" ] || { echo "FAIL: tokenize wrote no shards"; fails=$((fails + 1)); }
ok "$LMC" tokenizer convert --tokenizer "$T/g2" --out "$T/conv"
cmp -s "$T/conv/vocab.bpe" "$T/g2/vocab.bpe" || { echo "FAIL: convert changed vocab.bpe"; fails=$((fails + 1)); }
ok "$LMC" tokenizer eval --tokenizer "$T/tok" --input "$T/text.txt"

# ---------- flags ----------
expect 2 "--tokenizer is required" -- "$LMC" encode
expect 2 "unknown flag '--nope'" -- "$LMC" decode --nope
expect 2 "'<a>' is given twice" -- "$LMC" tokenizer train --vocab-size 300 --input "$T/text.txt" --out "$T/x" --special "<a>" --special "<a>"
expect 1 "--vocab-size: 100 is out of range" -- "$LMC" tokenizer train --vocab-size 100 --input "$T/text.txt" --out "$T/x"
expect 2 "unknown subcommand 'bogus'" -- "$LMC" tokenizer bogus
expect 1 "--val-fraction: 2 is out of range" -- "$LMC" tokenize --tokenizer "$T/tok" --input "$T/text.txt" --out "$T/y" --val-fraction 2
expect 2 "--docs: 'lines' is not one of the choices" -- "$LMC" tokenize --tokenizer "$T/tok" --input "$T/text.txt" --out "$T/y" --docs lines
expect 2 "--doc-separator: '<|nope|>' is neither a special token" -- "$LMC" tokenize --tokenizer "$T/tok" --input "$T/text.txt" --out "$T/y" --doc-separator "<|nope|>"
expect 2 "--shard-tokens: 'lots' is not a count" -- "$LMC" tokenize --tokenizer "$T/tok" --input "$T/text.txt" --out "$T/y" --shard-tokens lots

# ---------- tokenizer folders and files ----------
expect 1 "$T/none: not a directory" -- "$LMC" encode --tokenizer "$T/none"
mkdir -p "$T/empty"
expect 1 "$T/empty: no tokenizer here" -- "$LMC" encode --tokenizer "$T/empty"

bad() { # NAME: a fresh copy of the GPT-2 pair in $T/NAME
    rm -rf "${T:?}/$1"; cp -r "$T/g2" "$T/$1"
}
bad nobpe; rm "$T/nobpe/vocab.bpe"
expect 1 "nobpe/vocab.bpe: cannot open" -- "$LMC" encode --tokenizer "$T/nobpe"
bad noenc; rm "$T/noenc/encoder.json"
expect 1 "noenc/encoder.json: cannot open" -- "$LMC" decode --tokenizer "$T/noenc"
bad trunc; head -c 500 "$T/g2/encoder.json" > "$T/trunc/encoder.json"
expect 1 "trunc/encoder.json: malformed JSON at line 1" -- "$LMC" encode --tokenizer "$T/trunc"
bad arr; echo '[1, 2, 3]' > "$T/arr/encoder.json"
expect 1 "arr/encoder.json: expected a JSON object" -- "$LMC" encode --tokenizer "$T/arr"
bad range; sed 's/"<|endoftext|>": [0-9]*/"<|endoftext|>": 123456/' "$T/g2/encoder.json" > "$T/range/encoder.json"
expect 1 "range/encoder.json: token '<|endoftext|>': id 123456 is out of range" -- "$LMC" encode --tokenizer "$T/range"
bad dupid; sed 's/"<|endoftext|>": [0-9]*/"<|endoftext|>": 5/' "$T/g2/encoder.json" > "$T/dupid/encoder.json"
expect 1 "dupid/encoder.json: tokens" "both have id 5" -- "$LMC" encode --tokenizer "$T/dupid"
bad alpha; sed 's/"<|endoftext|>": /"<|endoftext|>中": /' "$T/g2/encoder.json" > "$T/alpha/encoder.json"
expect 1 "alpha/encoder.json: token '<|endoftext|>中': character U+4E2D is not in GPT-2's byte alphabet" -- "$LMC" encode --tokenizer "$T/alpha"
bad unknown; sed '3s/^\([^ ]*\) .*/\1 QQQQ/' "$T/g2/vocab.bpe" > "$T/unknown/vocab.bpe"
expect 1 "unknown/vocab.bpe: line 3: right token 'QQQQ' is not in" "encoder.json" -- "$LMC" encode --tokenizer "$T/unknown"
bad oneword; sed '2s/ .*//' "$T/g2/vocab.bpe" > "$T/oneword/vocab.bpe"
expect 1 "oneword/vocab.bpe: line 2: expected two tokens separated by one space" -- "$LMC" encode --tokenizer "$T/oneword"
bad dupmerge; { cat "$T/g2/vocab.bpe"; sed -n 2p "$T/g2/vocab.bpe"; } > "$T/dupmerge/vocab.bpe"
expect 1 "dupmerge/vocab.bpe: line" "duplicate merge of tokens" -- "$LMC" encode --tokenizer "$T/dupmerge"

lmcbad() { # NAME SED-EXPR: lmc-tokenizer.json edited by SED-EXPR
    mkdir -p "$T/$1"; sed "$2" "$T/tok/lmc-tokenizer.json" > "$T/$1/lmc-tokenizer.json"
}
lmcbad ver 's/"version": 1/"version": 9/'
expect 1 "ver/lmc-tokenizer.json: version 9 is not supported" -- "$LMC" encode --tokenizer "$T/ver"
lmcbad fmt 's/"format": "lmc-bpe"/"format": "other"/'
expect 1 "fmt/lmc-tokenizer.json: format is 'other'" -- "$LMC" encode --tokenizer "$T/fmt"
lmcbad order '0,/^  \[[0-9]*, [0-9]*, 256\]/s/^  \[[0-9]*, [0-9]*, 256\]/  [300, 301, 256]/'
expect 1 "order/lmc-tokenizer.json: merges[0]: token id 300 is used before it is defined" -- "$LMC" encode --tokenizer "$T/order"
lmcbad vs 's/"vocab_size": [0-9]*/"vocab_size": 99/'
expect 1 "vs/lmc-tokenizer.json: vocab_size 99 is out of range" -- "$LMC" encode --tokenizer "$T/vs"

# ---------- ids and inputs ----------
expect 1 "token 3: id 400 is out of range (vocab size 400)" -- sh -c "echo '1 2 400' | '$LMC' decode --tokenizer '$T/tok'"
expect 1 "token 2 ('abc') is not an integer" -- sh -c "echo '1 abc' | '$LMC' decode --tokenizer '$T/tok'"
expect 1 "token 1: id -5 is out of range" -- sh -c "echo '-5' | '$LMC' decode --tokenizer '$T/tok'"
expect 1 "$T/missing.txt: no such file" -- "$LMC" tokenize --tokenizer "$T/tok" --input "$T/missing.txt" --out "$T/y"
expect 1 "$T/missing.txt: no such file" -- "$LMC" tokenizer train --vocab-size 300 --input "$T/missing.txt" --out "$T/y"
mkdir -p "$T/indir"; ln -s "$T/nowhere" "$T/indir/broken"
expect 1 "indir/broken: cannot stat" -- "$LMC" tokenize --tokenizer "$T/tok" --input "$T/indir" --out "$T/y"
if [ "$(id -u)" != 0 ]; then # root reads anything
    cp "$T/text.txt" "$T/locked.txt"; chmod 000 "$T/locked.txt"
    expect 1 "locked.txt: cannot open" -- "$LMC" tokenize --tokenizer "$T/tok" --input "$T/locked.txt" --out "$T/y"
fi
expect 1 "$T/empty: directory holds no files" -- "$LMC" tokenizer eval --tokenizer "$T/tok" --input "$T/empty"

# a vocabulary past 65536 ids does not fit uint16 shards
python3 - "$T/g2" "$T/big" <<'EOF' 2>/dev/null || cp -r "$T/g2" "$T/big"
import json, sys, os
enc = json.load(open(os.path.join(sys.argv[1], "encoder.json"), encoding="utf-8"))
n = len(enc)
for i in range(70000 - n):
    enc["<|x%d|>" % i] = n + i
os.makedirs(sys.argv[2], exist_ok=True)
json.dump(enc, open(os.path.join(sys.argv[2], "encoder.json"), "w", encoding="utf-8"), ensure_ascii=False)
open(os.path.join(sys.argv[2], "vocab.bpe"), "w", encoding="utf-8").write(open(os.path.join(sys.argv[1], "vocab.bpe"), encoding="utf-8").read())
EOF
expect 1 "a vocabulary of 70000 tokens does not fit uint16 shards" -- "$LMC" tokenize --tokenizer "$T/big" --input "$T/in.txt" --out "$T/z" --dtype u16
ok "$LMC" tokenize --tokenizer "$T/big" --input "$T/in.txt" --out "$T/z" --dtype auto --quiet

if [ "$fails" != 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo ok
