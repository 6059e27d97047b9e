#!/usr/bin/env bash
# The hierarchical communicator (src/dist/hier.c, hier_shard.c: a job mixing
# chip kinds), driven by test_mpi_hier.c with LMC_TEST_HIER_GROUPS standing
# CPU ranks in for groups of chips: on 1, 2 and 3 groups of equal and unequal
# sizes (and groups whose ranks interleave), on integer-valued random
# buffers of odd sizes (1 to 1M + 7 floats: exact in any summation order)
# the sums equal MPI_Allreduce bit for bit, the reduce-scatter (ZeRO's
# ranges: random buckets, some empty, in flight with all-gathers) equals
# MPI_Reduce_scatter in each rank's shard and the all-gather MPI_Allgatherv;
# on fractional values all ranks hold the same bits, within rounding of MPI's
# sum. The bytes each rank sends equal the design's identities: in a
# reduce-scatter every element but the rank's shard once ((size-1)/size of
# the vector, as a flat one), and per stage (size - groups) x and (groups -
# 1) x the vector in all. LMC_TEST_HIER_SUMMED keeps the path of jobs over
# 32 ranks (summed ranges) exact too. Without groups, CPU ranks get the MPI
# communicator as before; a malformed LMC_TEST_HIER_GROUPS fails on every
# rank, naming it.
. "$(dirname "$0")/lib.sh"
need_mpi
HIER=${HIER:-$(dirname "$LMC")/tests/mpi/test_mpi_hier}
[ -x "$HIER" ] || { echo "FAIL $HIER not built (make all builds it where mpicc is found)"; exit 1; }

for g in 0,0,0 0,1,1 0,1,2 2,0,1; do
    expect_ok "3 ranks in groups $g == MPI_Allreduce, MPI_Reduce_scatter, MPI_Allgatherv" env LMC_TEST_HIER_GROUPS=$g $MPIRUN -np 3 -x LMC_TEST_HIER_GROUPS \
        "$HIER" check
done
for g in 1,0,1,0 0,1,1,2 0,0,0,1; do
    expect_ok "4 ranks in groups $g == MPI_Allreduce, MPI_Reduce_scatter, MPI_Allgatherv" \
        env LMC_TEST_HIER_GROUPS=$g $MPIRUN -np 4 -x LMC_TEST_HIER_GROUPS "$HIER" check
done
expect_ok "3 ranks in groups 0,1,1, ranges summed (jobs over 32 ranks)" env LMC_TEST_HIER_GROUPS=0,1,1 \
    LMC_TEST_HIER_SUMMED=1 $MPIRUN -np 3 -x LMC_TEST_HIER_GROUPS -x LMC_TEST_HIER_SUMMED "$HIER" check
for g in 0,1,1 0,1,1,2; do
    np=$(($(tr -cd , <<<"$g" | wc -c) + 1))
    LMC_TEST_HIER_GROUPS=$g $MPIRUN -np $np -x LMC_TEST_HIER_GROUPS "$HIER" traffic $(((1 << 20) + 7)) | sed 's/^/     /'
done
name=$($MPIRUN -np 2 "$HIER" name 2>&1)
[ "$name" = mpi ] && echo "ok   CPU ranks alone: the MPI communicator, as before" ||
    { echo "FAIL CPU ranks alone got '$name', not mpi"; fails=$((fails + 1)); }
expect_fail "a malformed LMC_TEST_HIER_GROUPS" "LMC_TEST_HIER_GROUPS='0,x': not a comma-separated list" \
    env LMC_TEST_HIER_GROUPS=0,x $MPIRUN -np 2 -x LMC_TEST_HIER_GROUPS "$HIER" check
finish
