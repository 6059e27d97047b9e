#!/usr/bin/env bash
# Data parallelism is exact: 2 ranks x grad-accum 1 == 1 rank x grad-accum 2
# (the same global batch): the same losses and final weights within fp32
# summation-order tolerance, without and with ZeRO-1 (which shards AdamW's
# state and computes the clipped norm from shards). A half-size batch must
# differ by far more than the tolerance, so the check can fail. Each rank
# reads different data: were both reading the same, the weights would differ.
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 20000 64
ARGS="$TINY --data $T/train.bin --steps 8 --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --quiet"
TOL=2e-5

expect_ok "1 rank x accum 2" $LMC train $ARGS --grad-accum 2 --log "$T/one.jsonl" --save "$T/one.st"
expect_ok "2 ranks x accum 1" $MPIRUN -np 2 $LMC train $ARGS --grad-accum 1 --log "$T/two.jsonl" --save "$T/two.st"
expect_ok "2 ranks x accum 1, ZeRO-1" $MPIRUN -np 2 $LMC train $ARGS --grad-accum 1 --zero 1 \
    --log "$T/zero.jsonl" --save "$T/zero.st"
expect_ok "1 rank x accum 1 (half the batch)" $LMC train $ARGS --grad-accum 1 --save "$T/half.st"

check "2x1 weights == 1x2" $CMP weights "$T/one.st" "$T/two.st" $TOL
check "2x1 losses == 1x2" $CMP losses "$T/two.jsonl" "$T/one.jsonl" 1e-5
check "2x1 ZeRO-1 weights == 1x2" $CMP weights "$T/one.st" "$T/zero.st" $TOL
check "2x1 ZeRO-1 losses == 1x2" $CMP losses "$T/zero.jsonl" "$T/one.jsonl" 1e-5
check "a different batch is caught" $CMP differ "$T/one.st" "$T/half.st" 1e-3
mb=$($CMP field "$T/two.jsonl" mb)
[ "$mb" = "1 1" ] && echo "ok   log shows micro-batches per rank: $mb" ||
    { echo "FAIL log micro-batches per rank: '$mb'"; fails=$((fails + 1)); }
comm=$($CMP field "$T/two.jsonl" comm_ms)
[ -n "$comm" ] && echo "ok   log has comm_ms ($comm ms exposed on rank 0)" ||
    { echo "FAIL log lacks comm_ms"; fails=$((fails + 1)); }
finish
