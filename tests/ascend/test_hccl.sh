#!/usr/bin/env bash
# --dist hccl through the Ascend mock (tests/ascend/run.sh sets
# LMC_ASCEND_LIBDIR), or on NPUs (tests/ascend/run_npu.sh: CANN from
# $ASCEND_TOOLKIT_HOME): 2 data-parallel ranks on --device npu give the
# weights and losses of one process running the same global batch, within
# that process's own float noise (tests/mpi lib.sh's equivalent): plain,
# ZeRO-1 (reduce-scatter, all-gather), Llama with GQA. Gradients travel as
# HCCL collectives on the communicator's stream, ordered after the
# backend's through events; the mock runs each as an MPI call when the
# stream runs; without that ordering (LMC_TEST_HCCL_UNORDERED) the mock's
# streams make the collectives read stale gradients and the run fails.
# Then what --dist hccl refuses: process groups, no NPU.
. "$(dirname "$0")/../mpi/lib.sh"
need_mpi
[ -n "${LMC_ASCEND_LIBDIR:-}${ASCEND_TOOLKIT_HOME:-}" ] ||
    { echo "set LMC_ASCEND_LIBDIR (tests/ascend/run.sh does, for the mock) or ASCEND_TOOLKIT_HOME"; exit 1; }

make_shard "$T/train.bin" 40000 64
COMMON="--vocab 64 --max-seq 32 --seq 16 --data $T/train.bin --steps 6 --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --quiet"
GPT="--model d6 --layers 2 --dim 32 --heads 4 $COMMON"
LLAMA="--model llama-15m --layers 2 --dim 64 --heads 4 --kv-heads 2 --ffn 96 $COMMON"
NPU="--dist hccl --device npu"

equivalent hccl-dp2 "$GPT" 2 "--batch 2 $NPU"
equivalent hccl-dp2-zero1 "$GPT" 2 "--batch 2 --zero 1 $NPU"
equivalent hccl-llama-dp2 "$LLAMA" 2 "--batch 2 $NPU"
expect_fail "collectives not ordered after the backend's work are caught" "diverged|differ" \
    env LMC_TEST_HCCL_UNORDERED=1 $MPIRUN -np 2 $LMC train $GPT --batch 2 $NPU
expect_fail "process groups are refused" "not implemented" $MPIRUN -np 2 $LMC train $GPT --batch 2 --tp 2 $NPU
expect_fail "--dist hccl without an NPU backend" "needs --device npu|device memory" \
    $MPIRUN -np 2 $LMC train $GPT --batch 2 --dist hccl
finish
