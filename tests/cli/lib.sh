# lib.sh: helpers for the command-line tests (sourced).
# $LMC is the binary under test (the sanitizer build in scripts/test.sh).
set -u
PY=${PY:-/usr/bin/python3}
LMC=${LMC:-$(dirname "$0")/../../build/lmc}
LMC_FAST=${LMC_FAST:-$LMC}
T=$(mktemp -d /tmp/lmc_cli_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0

# make_shard PATH NTOKENS VOCAB [MAGIC] [VERSION] [EXTRA_BYTES]
make_shard() {
    "$PY" - "$@" <<'PYEOF'
import sys, numpy as np
path, n, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
magic = int(sys.argv[4]) if len(sys.argv) > 4 else 20240520
version = int(sys.argv[5]) if len(sys.argv) > 5 else 1
extra = int(sys.argv[6]) if len(sys.argv) > 6 else 0
toks = (np.arange(n) * 7 + np.arange(n) // 11) % vocab
h = np.zeros(256, dtype=np.int32); h[0], h[1], h[2] = magic, version, n
body = toks.astype(np.uint16 if version == 1 else np.uint32).tobytes()
open(path, "wb").write(h.tobytes() + body + b"\0" * extra)
PYEOF
}

# expect_fail NAME PATTERN CMD...: CMD must exit non-zero (not crash) and
# print PATTERN (grep -E) on stderr
expect_fail() {
    local name=$1 pat=$2; shift 2
    local out rc
    out=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 0 ]; then echo "FAIL $name: exit 0"; fails=$((fails + 1)); return; fi
    if [ $rc -ge 128 ] || echo "$out" | grep -qE "Sanitizer|runtime error|Segmentation"; then
        echo "FAIL $name: crashed (rc $rc): $out"; fails=$((fails + 1)); return
    fi
    if ! echo "$out" | grep -qE -- "$pat"; then
        echo "FAIL $name: message does not match /$pat/: $out"; fails=$((fails + 1)); return
    fi
    echo "ok   $name (rc $rc): $(echo "$out" | head -1)"
}

expect_ok() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then echo "ok   $name"; else echo "FAIL $name: $out" | tail -5; fails=$((fails + 1)); fi
}

finish() {
    echo "$fails failures"
    [ $fails -eq 0 ]
}

# same_as_sample NAME MODEL PROMPT-IDS TOKENS [extra generate flags]: lmc
# generate (the KV-cache engine) gives the greedy tokens of the plain
# full-recompute lmc sample
same_as_sample() {
    local name=$1 m=$2 ids=$3 n=$4; shift 4
    local want got
    want=$($LMC_FAST sample --model "$m" --prompt-ids "$ids" --max-tokens "$n" --temperature 0 2>&1)
    got=$($LMC generate --model "$m" --prompt-ids "$ids" --max-tokens "$n" --temperature 0 --quiet "$@" 2>&1)
    if [ "$want" = "$got" ] && [ -n "$got" ]; then echo "ok   $name"; else
        echo "FAIL $name: generate '$got' vs sample '$want'"; fails=$((fails + 1)); fi
}

# a tiny GPT-2 for fast runs
TINY="--model d6 --layers 2 --dim 32 --heads 2 --vocab 64 --max-seq 32 --batch 2 --seq 16"
