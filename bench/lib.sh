# lib.sh: helpers for the benchmarks (sourced).

# random_tokens PATH N VOCAB: an llm.c token shard of N random ids below VOCAB
random_tokens() {
    "${PY:-/usr/bin/python3}" - "$@" <<'PYEOF'
import sys, numpy as np
path, n, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
toks = np.random.default_rng(0).integers(0, vocab, n)
h = np.zeros(256, dtype=np.int32); h[0], h[1], h[2] = 20240520, 1, n
open(path, "wb").write(h.tobytes() + toks.astype(np.uint16).tobytes())
PYEOF
}
