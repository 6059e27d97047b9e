# lib.sh: helpers for the benchmarks (sourced): the binary, Debian's python
# (numpy, torch) and mpirun as the benchmarks run it.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
LMC=${LMC:-build/lmc}
PY=${PY:-/usr/bin/python3}
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe --bind-to none}

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
