#!/usr/bin/env bash
# Point to point on the MPI communicator (send_start, recv_start, p2p_wait;
# the pipeline stages' messages), driven by the C program test_mpi_p2p.c:
# a ring exchange of 4 MB buffers both ways on 2 and 3 ranks, sends and
# receives posted in opposite orders on neighbouring ranks, beside a
# collective in flight, on the world and on a split of it, contents checked;
# the 65th request in flight and bad peers fail clearly; a peer that never
# posts the matching call is caught by the watchdog (LMC_COMM_TIMEOUT)
# within its time, for a receive and for a send, and the job ends.
# LMC_TEST_BIG=1 adds one message over INT_MAX bytes (needs ~4.3 GB).
. "$(dirname "$0")/lib.sh"
need_mpi
P2P=${P2P:-$(dirname "$LMC")/tests/mpi/test_mpi_p2p}
[ -x "$P2P" ] || { echo "FAIL $P2P not built (make all builds it where mpicc is found)"; exit 1; }

for np in 2 3; do
    expect_ok "ring of $np ranks, 4 MB each way, opposite orders" $MPIRUN -np $np "$P2P" ring 4
    expect_ok "65th request in flight, bad peers and requests ($np ranks)" $MPIRUN -np $np "$P2P" slots
done

# stuck DIRECTION MB: rank 0's wait must fail after the 2 s watchdog, naming
# the call, the peer and the size; later calls fail at once; the job ends
stuck() {
    local out t0=$SECONDS secs
    out=$(LMC_COMM_TIMEOUT=2 timeout 60 $MPIRUN -np 2 -x LMC_COMM_TIMEOUT "$P2P" stuck "$1" "$2" 2>&1)
    local rc=$? secs=$((SECONDS - t0))
    local w
    w=$(echo "$out" | grep -m1 "^watchdog after")
    local took=${w#watchdog after }
    took=${took%% s:*}
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $secs -le 20 ] && echo "$w" | grep -q "$3" &&
        "$PY" -c "import sys; sys.exit(not 1.9 <= float(sys.argv[1]) <= 4)" "$took" &&
        echo "$out" | grep -q "^then: .*not started: an earlier operation failed"; then
        echo "ok   watchdog on a $1 (exit $rc, job ended in ${secs} s): $w"
    else
        echo "FAIL watchdog on a $1 (exit $rc after ${secs} s): $out"; fails=$((fails + 1))
    fi
}
stuck recv 1 "mpi recv from rank 1 (1048576 bytes) waited 2 s for rank 1 (the communication watchdog)"
stuck send 8 "mpi send to rank 1 (8388608 bytes) waited 2 s for rank 1 (the communication watchdog)"

if [ -n "${LMC_TEST_BIG:-}" ]; then
    expect_ok "one message of 2 GiB + 5 bytes" $MPIRUN -np 2 "$P2P" big
fi
finish
