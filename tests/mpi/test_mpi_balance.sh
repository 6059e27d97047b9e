#!/usr/bin/env bash
# Unequal ranks: rank 1 is made 6x slower (the test hook LMC_TEST_SLOWDOWN). With --balance
# auto the ranks measure their speed for two steps and then split the same
# global batch (2 x 5 micro-batches) by speed: rank 0 must get at least 8 of the 10, log per-rank
# micro-batches and idle time, and reach the same weights (the same data and
# gradient, summed in another order).
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 40000 64
ARGS="--model d6 --layers 2 --dim 128 --heads 4 --vocab 64 --max-seq 32 --batch 2 --seq 32 --data $T/train.bin"
ARGS="$ARGS --steps 10 --grad-accum 5 --lr 1e-3 --threads 1 --quiet"
MPIRUN="$MPIRUN -x LMC_TEST_SLOWDOWN=6@1"

expect_ok "equal split" $MPIRUN -np 2 $LMC train $ARGS --log "$T/eq.jsonl" --save "$T/eq.st"
expect_ok "--balance auto" $MPIRUN -np 2 $LMC train $ARGS --balance auto --log "$T/bal.jsonl" --save "$T/bal.st"

check "same weights as the equal split" $CMP weights "$T/eq.st" "$T/bal.st" 2e-5
check "same losses as the equal split" $CMP losses "$T/bal.jsonl" "$T/eq.jsonl" 1e-5
read -r mb0 mb1 <<<"$($CMP field "$T/bal.jsonl" mb)"
# A 6x slower rank gets 1 of 10 micro-batches at the measured speeds (9/1
# while rank 1 measures >= 4.5x slower, 8/2 from 2.7x): at least 8 for rank 0
# however a loaded machine bends the measurement. The time saved is a speed
# figure: bench/bench_xvendor.sh measures it beside the equal split.
[ "$mb0" -ge 8 ] && [ $((mb0 + mb1)) -eq 10 ] &&
    echo "ok   micro-batches per rank after measuring: $mb0 $mb1" ||
    { echo "FAIL micro-batches per rank: $mb0 $mb1 (rank 0 should get >= 8 of 10)"; fails=$((fails + 1)); }
echo "     idle ms per rank, equal split: $($CMP field "$T/eq.jsonl" idle_ms); balanced: $($CMP field "$T/bal.jsonl" idle_ms)"
sum_ms() { $PY -c "import json,sys; print(sum(json.loads(l)['ms'] for l in open(sys.argv[1])))" "$1"; }
echo "     10 steps take $(sum_ms "$T/bal.jsonl") ms balanced vs $(sum_ms "$T/eq.jsonl") ms equal (not asserted: bench/)"
finish
