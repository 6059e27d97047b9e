#!/usr/bin/env bash
# Elastic resume: a checkpoint written by N ranks continues on M ranks, the
# optimizer state re-sharded and the data order continued (no sequence seen
# twice or skipped). 2 ranks x accum 3 (ZeRO-1) for steps 1-2, then 1 rank x
# accum 6 for steps 3-4, then 3 ranks x accum 2 (ZeRO-1, uneven shards) for
# steps 5-6 must equal one uninterrupted 1 rank x accum 6 run: every step's
# loss and data position, and the final weights.
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 20000 64
ARGS="$TINY --data $T/train.bin --steps 6 --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --save-every 2 --keep 0 --quiet"
TOL=2e-5

expect_ok "uninterrupted: 1 rank x accum 6" $LMC train $ARGS --grad-accum 6 --out "$T/U" --log "$T/u.jsonl" \
    --save "$T/u.st"
expect_ok "leg 1: 2 ranks x accum 3, ZeRO-1" $MPIRUN -np 2 $LMC train $ARGS --grad-accum 3 --zero 1 \
    --out "$T/X" --log "$T/x.jsonl"
grep -q '"world_size": 2' "$T/X/step_00000002/state.json" && echo "ok   checkpoint records 2 ranks" ||
    { echo "FAIL state.json world_size"; fails=$((fails + 1)); }
expect_ok "leg 2: 1 rank x accum 6 from step 2" $LMC train $ARGS --grad-accum 6 \
    --resume "$T/X/step_00000002" --out "$T/Y" --log "$T/y.jsonl"
expect_ok "leg 3: 3 ranks x accum 2, ZeRO-1, from step 4" $MPIRUN -np 3 $LMC train $ARGS --grad-accum 2 --zero 1 \
    --resume "$T/Y/step_00000004" --out "$T/Z" --log "$T/z.jsonl" --save "$T/z.st"

check "steps 1-2 on 2 ranks" $CMP losses "$T/x.jsonl" "$T/u.jsonl" 1e-5 1 2
check "steps 3-4 on 1 rank" $CMP losses "$T/y.jsonl" "$T/u.jsonl" 1e-5 3 4
check "steps 5-6 on 3 ranks" $CMP losses "$T/z.jsonl" "$T/u.jsonl" 1e-5 5 6
check "final weights after 2 -> 1 -> 3 ranks" $CMP weights "$T/u.st" "$T/z.st" $TOL
for s in 2 4 6; do
    a=$($CMP field "$T/u.jsonl" tokens $s); b=$(cat "$T"/[xyz].jsonl | $PY -c "import json,sys
print([json.loads(l)['tokens'] for l in sys.stdin if json.loads(l)['step'] == $s][0])")
    [ "$a" = "$b" ] && echo "ok   tokens consumed after step $s: $b" ||
        { echo "FAIL tokens after step $s: $b, uninterrupted $a"; fails=$((fails + 1)); }
done
finish
