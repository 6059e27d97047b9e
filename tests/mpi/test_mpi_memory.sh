#!/usr/bin/env bash
# ZeRO-1 memory: with 2 ranks each rank keeps AdamW's m and v for half of
# the parameters, so its peak RSS (the log's rss_mb, per rank) must fall by
# about half of the optimizer state (2 x 4 bytes x parameters / 2). The
# model's 3M-float buckets also take the communicator's chunked paths
# (pieces of 1M floats), so the two runs' weights must agree too.
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 5000 64
ARGS="--model d6 --layers 4 --dim 512 --heads 8 --vocab 64 --max-seq 16 --batch 1 --seq 16 --data $T/train.bin"
ARGS="$ARGS --steps 2 --threads 1 --quiet"
expect_ok "2 ranks" $MPIRUN -np 2 $LMC train $ARGS --log "$T/plain.jsonl" --save "$T/w.st"
expect_ok "2 ranks, ZeRO-1" $MPIRUN -np 2 $LMC train $ARGS --zero 1 --log "$T/zero.jsonl" --save "$T/z.st"
check "ZeRO-1 weights == plain" $CMP weights "$T/w.st" "$T/z.st" 2e-5
plain=$($CMP field "$T/plain.jsonl" rss_mb)
zero=$($CMP field "$T/zero.jsonl" rss_mb)
echo "     peak RSS per rank (MB): without ZeRO $plain; with ZeRO-1 $zero"
$PY - "$(dirname "$0")/../oracle" "$T/w.st" "$plain" "$zero" <<'PYEOF' || fails=$((fails + 1))
import sys
sys.path.insert(0, sys.argv[1])
from lmc_util import st_read
sys.argv = sys.argv[1:]
tensors, _ = st_read(sys.argv[1])
params = sum(t.size for t in tensors.values())
want = 2 * 4 * params / 2 / 1e6  # MB: half of m and v
plain = [float(x) for x in sys.argv[2].split()]
zero = [float(x) for x in sys.argv[3].split()]
ok = True
for r, (a, b) in enumerate(zip(plain, zero)):
    saved = a - b
    good = 0.7 * want <= saved <= 1.3 * want
    ok &= good
    print("%s rank %d saves %.1f MB with ZeRO-1 (half the optimizer state: %.1f MB)" % ("ok  " if good else "FAIL", r,
                                                                                       saved, want))
sys.exit(0 if ok else 1)
PYEOF
finish
