# lib.sh: helpers for the MPI tests (sourced): the command-line tests'
# helpers, mpirun as CI runs it (root allowed, 2 cores oversubscribed), and
# the weight and log checks of compare.py.
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
CMP="$PY $(dirname "${BASH_SOURCE[0]}")/compare.py"

# Skips (exit 0) where MPI cannot run: no mpirun, or an lmc built without it.
need_mpi() {
    command -v mpirun >/dev/null || { echo "skip: mpirun not found"; exit 0; }
    make_shard "$T/probe.bin" 2000 64
    if $LMC train $TINY --data "$T/probe.bin" --steps 0 --dist mpi --quiet 2>&1 | grep -q "built without MPI"; then
        echo "skip: $LMC was built without MPI (mpicc not found)"; exit 0
    fi
}

# check NAME CMD...: CMD (a compare.py check) must succeed
check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then echo "ok   $name: ${out#ok   }"; else
        echo "FAIL $name: ${out#FAIL }"; fails=$((fails + 1)); fi
}

# rank_pid MPIRUN_PID RANK: the pid of that rank (a child of mpirun)
rank_pid() {
    local k
    for k in $(pgrep -P "$1"); do
        tr '\0' '\n' < "/proc/$k/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$k"; return; }
    done
}

# wait_file PATH SECONDS: waits until PATH exists
wait_file() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}
