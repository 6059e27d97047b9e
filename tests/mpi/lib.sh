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

# listen_port LOG PID: the port a server (process PID, writing LOG) listens
# on, once its log says so (90 s at most); empty when PID ended first
listen_port() {
    local i port
    for ((i = 0; i < 900; i++)); do
        port=$(grep -o "listening on port [0-9]*" "$1" 2>/dev/null | grep -o "[0-9]*$")
        [ -n "$port" ] && { echo "$port"; return 0; }
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_file PATH SECONDS: waits until PATH exists
wait_file() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}

# equivalent NAME "MODEL FLAGS" NP "PARALLEL FLAGS": a parallel run of NP
# ranks (its flags give each rank's share of a global batch of 4 sequences)
# must give the weights and losses of one process running that batch (1 x
# accum 4) within that process's own float noise: the largest difference
# between it computing the batch six ways (1 x accum 4, 2 x 2, 4 x 1, and 1
# x 4 on the AVX2 and on the portable C matmul kernels, which round
# differently, and with every matmul summing k in blocks of 16, the
# association a tensor-parallel split of these tiny layers has). In bf16
# two more: the AVX-512 path without the bf16 dot-product instruction and k
# in blocks of 8 (bf16 trajectories are chaotic: a last-bit difference
# flips a bf16 rounding, which Adam's normalised update amplifies, so the
# spread of eight ways is the noise). Sets TOL to the weights' tolerance.
equivalent() {
    local name=$1 args=$2 np=$3 par=$4 d=$T/$1 w
    mkdir -p "$d"
    local ways_list=("1 4 cpu" "2 2 cpu" "4 1 cpu" "1 4 cpu:avx2" "1 4 cpu:c" "1 4 cpu:kc=16")
    [[ "$args" == *"--precision bf16"* ]] && ways_list+=("1 4 cpu:avx512-nodot" "1 4 cpu:kc=8")
    for w in "${ways_list[@]}"; do
        set -- $w
        expect_ok "$name: 1 process, $1 x accum $2 on $3" $LMC train $args --batch "$1" --grad-accum "$2" \
            --device "$3" --save "$d/one-$1-$3.st" --log "$d/one-$1-$3.jsonl"
    done
    expect_ok "$name: $np ranks $par" $MPIRUN -np "$np" $LMC train $args $par --save "$d/par.st" --log "$d/par.jsonl"
    local ways=("$d"/one-*.st) logs=("$d"/one-*.jsonl)
    TOL=$($CMP noise "${ways[@]}")
    local rtol # at least one unit in the last place of a loss (2^-23 relative): no finer difference exists
    rtol=$($PY -c "import sys; print(max(float(sys.argv[1]), 2**-23))" "$($CMP lossnoise "${logs[@]}")")
    check "$name: weights within one process's noise" $CMP weights "$d/one-1-cpu.st" "$d/par.st" "$TOL"
    check "$name: losses within one process's noise" $CMP losses "$d/par.jsonl" "$d/one-1-cpu.jsonl" "$rtol"
}
