#!/usr/bin/env bash
# The hierarchical communicator (src/dist/hier.c: a job mixing chip kinds),
# driven by test_mpi_hier.c with LMC_TEST_HIER_GROUPS standing CPU ranks in
# for groups of chips: on 1, 2 and 3 groups (and groups whose ranks
# interleave) every collective the trainer uses equals MPI_Allreduce bit for
# bit on integer-valued random buffers of odd sizes (1 to 1M + 7 floats:
# exact in any summation order), and on fractional values all ranks hold
# the same bits within rounding of MPI's sum. Without groups, CPU ranks get
# the MPI communicator as before; a malformed LMC_TEST_HIER_GROUPS fails on
# every rank, naming it.
. "$(dirname "$0")/lib.sh"
need_mpi
HIER=${HIER:-$(dirname "$LMC")/tests/mpi/test_mpi_hier}
[ -x "$HIER" ] || { echo "FAIL $HIER not built (make all builds it where mpicc is found)"; exit 1; }

for g in 0,0,0 0,1,1 0,1,2 2,0,1; do
    expect_ok "3 ranks in groups $g == MPI_Allreduce" env LMC_TEST_HIER_GROUPS=$g $MPIRUN -np 3 -x LMC_TEST_HIER_GROUPS \
        "$HIER" check
done
expect_ok "4 ranks in interleaved groups 1,0,1,0 == MPI_Allreduce" env LMC_TEST_HIER_GROUPS=1,0,1,0 \
    $MPIRUN -np 4 -x LMC_TEST_HIER_GROUPS "$HIER" check
name=$($MPIRUN -np 2 "$HIER" name 2>&1)
[ "$name" = mpi ] && echo "ok   CPU ranks alone: the MPI communicator, as before" ||
    { echo "FAIL CPU ranks alone got '$name', not mpi"; fails=$((fails + 1)); }
expect_fail "a malformed LMC_TEST_HIER_GROUPS" "LMC_TEST_HIER_GROUPS='0,x': not a comma-separated list" \
    env LMC_TEST_HIER_GROUPS=0,x $MPIRUN -np 2 -x LMC_TEST_HIER_GROUPS "$HIER" check
finish
