#!/usr/bin/env bash
# One job across chip kinds (issue 25): CPU ranks and Ascend NPU ranks (the
# CPU mock of CANN, tests/ascend/mock, built here without sanitizers) train
# one model together under mpirun's MPMD syntax, each rank with its own
# --device; --dist auto gives them the hierarchical communicator
# (src/dist/hier.c: MPI inside the CPU group, HCCL inside the NPU group,
# the groups' leaders over MPI through host memory).
#
# Each job must give the weights and losses of one process running the same
# global batch (4 sequences) within that process's own float noise: the
# largest difference between it computing the batch seven ways (1 x accum
# 4, 2 x 2, 4 x 1 on the CPU, on the AVX2 and the portable matmul kernels,
# in blocks of 16, and 1 x 4 on the NPU mock, whose kernels round
# differently). Jobs: 1 CPU + 1 NPU; 2 CPU + 2 NPU (an HCCL group of two
# beside an MPI group of two); --balance auto with the NPU rank made slower
# (the split must move); --zero 2 and 3 (ranged reduce-scatter and
# all-gather);
# steps 1-3 on 2 CPU + 2 NPU, then 4-6 resumed on NPU + CPU (rank 0 on the
# NPU); CPU ranks alone under --dist auto get the bits of --dist mpi. Ranks
# that disagree on the model, the precision or a flag stop at
# start-up naming the rank and both values; --tp across kinds is refused;
# --check-every names a rank whose
# weights drifted after that step (two NPU ranks whose collectives are not
# ordered after the backend's work).
. "$(dirname "$0")/lib.sh"
need_mpi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$T/mock"
gcc -O1 -std=gnu11 -fPIC -shared -o "$T/mock/libascend_mock.so" "$ROOT"/tests/ascend/mock/*.c -DMOCK_HAVE_MPI \
    $(mpicc --showme:compile) $(mpicc --showme:link) -lm -lpthread ||
    { echo "FAIL building the Ascend mock"; exit 1; }
for l in libascendcl libnnopbase libopapi libhccl; do ln -sf libascend_mock.so "$T/mock/$l.so"; done
export LMC_ASCEND_LIBDIR=$T/mock

make_shard "$T/train.bin" 40000 64
ARGS="--model d6 --layers 2 --dim 32 --heads 4 --vocab 64 --max-seq 32 --seq 16 --data $T/train.bin --steps 6"
ARGS="$ARGS --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --quiet"
CPU="$LMC train $ARGS --device cpu"
NPU="$LMC train $ARGS --device npu"

# the reference: one process, the global batch computed seven ways
d=$T/one
mkdir -p "$d"
for w in "1 4 cpu" "2 2 cpu" "4 1 cpu" "1 4 cpu:avx2" "1 4 cpu:c" "1 4 cpu:kc=16" "1 4 npu"; do
    set -- $w
    expect_ok "1 process, $1 x accum $2 on $3" $LMC train $ARGS --batch "$1" --grad-accum "$2" --device "$3" \
        --save "$d/$1-$3.st" --log "$d/$1-$3.jsonl"
done
TOL=$($CMP noise "$d"/*.st)
RTOL=$($PY -c "import sys; print(max(float(sys.argv[1]), 2**-23))" "$($CMP lossnoise "$d"/*.jsonl)")
echo "     one process's noise: weights $TOL, losses $RTOL (relative)"

# same NAME: the job's weights and losses against one process (1 x accum 4)
same() {
    check "$1: weights within one process's noise" $CMP weights "$d/1-cpu.st" "$T/$1.st" "$TOL"
    check "$1: losses within one process's noise" $CMP losses "$T/$1.jsonl" "$d/1-cpu.jsonl" "$RTOL" ${2:-} ${3:-}
}
out() { echo "--save $T/$1.st --log $T/$1.jsonl"; }

expect_ok "1 CPU + 1 NPU rank" $MPIRUN -np 1 $CPU --batch 2 --check-every 2 $(out a) : \
    -np 1 $NPU --batch 2 --check-every 2 $(out a)
same a
expect_ok "2 CPU + 2 NPU ranks (MPI group, HCCL group)" $MPIRUN -np 2 $CPU --batch 1 $(out b) : \
    -np 2 $NPU --batch 1 $(out b)
same b

BAL="--batch 1 --grad-accum 2 --balance auto"
expect_ok "--balance auto, the NPU rank 4x slower" $MPIRUN -x LMC_TEST_SLOWDOWN=4@1 -np 1 $CPU $BAL $(out c) : -np 1 $NPU $BAL $(out c)
same c
read -r mb0 mb1 <<<"$($CMP field "$T/c.jsonl" mb)"
[ "$mb0" -gt "$mb1" ] && [ $((mb0 + mb1)) -eq 4 ] &&
    echo "ok   --balance auto: micro-batches per rank (cpu, npu) $mb0 $mb1; compute ms $($CMP field "$T/c.jsonl" \
compute_ms), idle ms $($CMP field "$T/c.jsonl" idle_ms)" ||
    { echo "FAIL --balance auto: micro-batches per rank $mb0 $mb1"; fails=$((fails + 1)); }

expect_ok "--zero 2: 1 NPU + 1 CPU rank" $MPIRUN -np 1 $NPU --batch 2 --zero 2 $(out z) : -np 1 $CPU --batch 2 \
    --zero 2 $(out z)
same z
expect_ok "--zero 3: 1 CPU + 1 NPU rank" $MPIRUN -np 1 $CPU --batch 2 --zero 3 $(out z3) : -np 1 $NPU --batch 2 \
    --zero 3 $(out z3)
same z3
# groups of two: the HCCL group's reduce to each run's owner and broadcast
# from it (hier_shard.c), ZeRO-3's gathers in flight with the reductions
for z in 2 3; do
    expect_ok "--zero $z: 2 CPU + 2 NPU ranks (MPI group, HCCL group)" $MPIRUN -np 2 $CPU --batch 1 --zero $z \
        $(out zz$z) : -np 2 $NPU --batch 1 --zero $z $(out zz$z)
    same zz$z
done

RES="--save-every 3 --keep 0"
expect_ok "steps 1-3 on 2 CPU + 2 NPU ranks" $MPIRUN -np 2 $CPU --batch 1 --steps 3 $RES --out "$T/R1" \
    --log "$T/r1.jsonl" : -np 2 $NPU --batch 1 --steps 3 $RES --out "$T/R1" --log "$T/r1.jsonl"
expect_ok "steps 4-6 resumed on 1 NPU + 1 CPU rank" $MPIRUN -np 1 $NPU --batch 2 --resume "$T/R1/step_00000003" \
    $(out r2) : -np 1 $CPU --batch 2 --resume "$T/R1/step_00000003" $(out r2)
check "resumed: steps 1-3 within noise" $CMP losses "$T/r1.jsonl" "$d/1-cpu.jsonl" "$RTOL" 1 3
same r2 4 6

# CPU ranks alone: --dist auto is the MPI communicator, bit for bit
expect_ok "2 CPU ranks, --dist auto" $MPIRUN -np 2 $CPU --batch 2 $(out cpu_auto)
expect_ok "2 CPU ranks, --dist mpi" $MPIRUN -np 2 $CPU --batch 2 --dist mpi $(out cpu_mpi)
check "CPU ranks alone: --dist auto == --dist mpi, bit for bit" $CMP weights "$T/cpu_mpi.st" "$T/cpu_auto.st" 0

expect_fail "a rank with another model width" "rank 1 has model width 64 but rank 0 has 32" \
    $MPIRUN -np 1 $CPU --batch 2 : -np 1 $NPU --batch 2 --dim 64
expect_fail "a rank with another precision" "rank 1 has --precision bf16 but rank 0 has fp32" \
    $MPIRUN -np 1 $CPU --batch 2 : -np 1 $NPU --batch 2 --precision bf16
expect_fail "a rank with another learning rate" "rank 2 has --lr 0.001 but rank 0 has 0.003" \
    $MPIRUN -np 2 $CPU --batch 1 : -np 2 $NPU --batch 1 --lr 1e-3
expect_fail "a rank with another batch" "rank 1 has --batch 1 but rank 0 has 2" \
    $MPIRUN -np 1 $CPU --batch 2 : -np 1 $NPU --batch 1
expect_fail "--tp across chip kinds is refused" "process groups \(--tp, --pp\) need ranks of one kind" \
    $MPIRUN -np 1 $CPU --batch 2 --tp 2 : -np 1 $NPU --batch 2 --tp 2
expect_fail "--check-every 1 names the drifted rank after step 1" "after step 1 rank 1 holds different weights" \
    env LMC_TEST_HCCL_UNORDERED=1 $MPIRUN -np 2 $NPU --batch 2 --dist hccl --check-every 1
finish
