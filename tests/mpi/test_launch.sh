#!/usr/bin/env bash
# lmc launch, the elastic supervisor: a rank killed mid-run (the job finishes
# by itself on the slot left), a host file that grows 1 -> 2 slots and one
# that shrinks 2 -> 1 mid-run, a stopped rank (SIGSTOP: the watchdog ends the
# job, the supervisor restarts it). Each run keeps the global batch of 4
# sequences, so its final weights must equal one process running that batch
# uninterrupted, within that process's own float noise (computing the same
# batch six ways, as lib.sh's `equivalent`). And the cases that must stop at
# once with a clear message and no restart loop: too few slots (at the start
# and after a failure), malformed host files, a train command that fails by
# itself, no --out.
. "$(dirname "$0")/lib.sh"
need_mpi
victims=()
trap 'for v in "${victims[@]}"; do kill -CONT $v 2>/dev/null; kill -9 $v 2>/dev/null; done; rm -rf "$T"' EXIT

make_shard "$T/train.bin" 20000 64
STEPS=300
BASE="--model d6 --layers 2 --dim 32 --heads 2 --vocab 64 --max-seq 32 --seq 16 --data $T/train.bin --threads 1"
BASE="$BASE --steps $STEPS --lr 1e-3 --quiet"
# supervised runs sleep on rank 0 (about 8 ms a step: the same numbers, slower) so that
# a kill or a host file change lands mid-run, not after the last step
SLOW="-x LMC_TEST_SLOWDOWN=10@0" # mpirun sets the test hook on every rank
LAUNCH="$LMC launch --poll 0.1 --mpirun"

# the uninterrupted reference, computed six ways: the spread is the tolerance
for w in "1 4 cpu" "2 2 cpu" "4 1 cpu" "1 4 cpu:avx2" "1 4 cpu:c" "1 4 cpu:kc=16"; do
    set -- $w
    expect_ok "1 process, $1 x accum $2 on $3" $LMC train $BASE --batch "$1" --grad-accum "$2" --device "$3" \
        --save "$T/one-$1-$3.st"
done
TOL=$($CMP noise "$T"/one-*.st)
echo "ok   tolerance (one process's own noise over $STEPS steps): $TOL"
expect_ok "1 process, a global batch of 2 (the control)" $LMC train $BASE --batch 1 --grad-accum 2 --save "$T/half.st"
check "a different global batch is outside the tolerance" $CMP differ "$T/one-1-cpu.st" "$T/half.st" "$TOL"

# events NAME LOG: the launch log's events, in order, one word each
events() { $PY -c "import json,sys; print(' '.join(json.loads(l)['event'] for l in open(sys.argv[1])))" "$1"; }
# field LOG EVENT KEY [N]: KEY of the Nth (1-based, default 1) event of that kind
field() {
    $PY -c "import json,sys
e = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)['event'] == sys.argv[2]]
print(e[int(sys.argv[4]) - 1][sys.argv[3]] if len(e) >= int(sys.argv[4]) else 'none')" "$1" "$2" "$3" "${4:-1}"
}
expect_eq() { # NAME GOT WANT
    if [ "$2" = "$3" ]; then echo "ok   $1: $2"; else echo "FAIL $1: got '$2', want '$3'"; fails=$((fails + 1)); fi
}
hosts() { printf '%s\n' "$2" >"$1.tmp" && mv "$1.tmp" "$1"; } # atomically, as a careful operator would

# start NAME SLOTS ACCUM [FLAGS]: lmc launch in the background on SLOTS
# localhost slots with --batch 1 --grad-accum ACCUM; waits for the first checkpoint
start() {
    local d=$T/$1
    mkdir -p "$d"
    hosts "$d/hosts" "localhost slots=$2 # the test's host"
    $LAUNCH "$MPIRUN $SLOW" --hosts "$d/hosts" --log "$d/launch.jsonl" ${4:-} -- $LMC train $BASE --batch 1 \
        --grad-accum "$3" --out "$d/ckpt" --save-every 20 --save "$d/final.st" >"$d/out.txt" 2>&1 &
    lpid=$!
    wait_file "$d/ckpt/latest" 60 || { echo "FAIL $1: no checkpoint appeared"; tail "$d/out.txt"; fails=$((fails + 1)); }
}
# rank_of_launch RANK: the pid of that rank of the running start
rank_of_launch() { rank_pid "$(pgrep -P $lpid | head -1)" "$1"; }
# finished NAME: lmc launch exited 0 and its final weights are within the tolerance
finished() {
    local d=$T/$1 rc
    wait $lpid; rc=$?
    if [ $rc -ne 0 ]; then echo "FAIL $1: lmc launch exited $rc"; tail -15 "$d/out.txt"; fails=$((fails + 1)); return; fi
    echo "ok   $1: finished; events: $(events "$d/launch.jsonl")"
    check "$1: final weights within one process's noise" $CMP weights "$T/one-1-cpu.st" "$d/final.st" "$TOL"
}

# a rank killed: the job ends, restarts on the slot left with twice the micro-batches
start kill 2 2
victim=$(rank_of_launch 1); victims+=("$victim"); kill -9 "$victim"
finished kill
expect_eq "kill: the failure" "$(field "$T/kill/launch.jsonl" failure kind) rank $(field "$T/kill/launch.jsonl" failure rank)" "rank_died rank 1"
expect_eq "kill: restart on 1 rank x accum 4" "$(field "$T/kill/launch.jsonl" start ranks 2) x $(field "$T/kill/launch.jsonl" start grad_accum 2)" "1 x 4"
echo "ok   kill: time lost $(field "$T/kill/launch.jsonl" resumed lost_s) s, tokens redone $(field "$T/kill/launch.jsonl" failure tokens_redone)"
# lmc plan takes the measured restart cost from the log (issue 19): lost_s - redone_s of its restart
want=$($PY -c "import json,sys; e=[json.loads(l) for l in open(sys.argv[1])]; r=[x for x in e if x['event']=='resumed']; \
print(round(sum(x['lost_s']-x['redone_s'] for x in r)/len(r)/3600, 9))" "$T/kill/launch.jsonl")
got=$($LMC plan --model d12 --tokens 1B --fleet 8xA100 --launch-log "$T/kill/launch.jsonl" --json 2>&1 |
    $PY -c "import json,sys; print(round(json.load(sys.stdin)['lost_time']['restart_hours'], 9))" 2>&1)
expect_eq "kill: lmc plan --launch-log's restart cost (hours)" "$got" "$want"

# the host file grows 1 -> 2 slots: checkpoint at a step boundary, restart on 2 ranks
start grow 1 4
hosts "$T/grow/hosts" "localhost slots=2"
finished grow
expect_eq "grow: events" "$(events "$T/grow/launch.jsonl" | sed 's/ summary done$//')" "start running grow stopped start resumed"
expect_eq "grow: restart on 2 ranks x accum 2" "$(field "$T/grow/launch.jsonl" start ranks 2) x $(field "$T/grow/launch.jsonl" start grad_accum 2)" "2 x 2"
expect_eq "grow: stopped at its checkpoint" "$(field "$T/grow/launch.jsonl" stopped step)" "$(field "$T/grow/launch.jsonl" stopped checkpoint)"

# and shrinks 2 -> 1
start shrink 2 2
hosts "$T/shrink/hosts" "localhost slots=1"
finished shrink
expect_eq "shrink: restart on 1 rank x accum 4" "$(field "$T/shrink/launch.jsonl" shrink to_ranks) x $(field "$T/shrink/launch.jsonl" start grad_accum 2)" "1 x 4"

# a stopped rank: the watchdog ends the job (MPI_Abort), the restart runs on both slots again
export LMC_COMM_TIMEOUT=3
start stop 2 2
victim=$(rank_of_launch 1); victims+=("$victim"); kill -STOP "$victim"
finished stop
unset LMC_COMM_TIMEOUT
expect_eq "stop: the failure" "$(field "$T/stop/launch.jsonl" failure kind)" "aborted"
echo "ok   stop: detected $(field "$T/stop/launch.jsonl" failure detect_s) s after the last step; restarted on $(field "$T/stop/launch.jsonl" start ranks 2) ranks"

# too few slots left after a failure: stop, no restart
start few 2 2 "--min-ranks 2"
victim=$(rank_of_launch 1); victims+=("$victim"); kill -9 "$victim"
wait $lpid; rc=$?
if [ $rc -ne 0 ] && grep -q "cannot restart: 1 usable slot, fewer than the 2 ranks needed" "$T/few/out.txt"; then
    echo "ok   too few slots left (rc $rc): $(grep -m1 "cannot restart" "$T/few/out.txt")"
else echo "FAIL too few slots left: rc $rc"; tail -5 "$T/few/out.txt"; fails=$((fails + 1)); fi
expect_eq "too few slots left: one start" "$(events "$T/few/launch.jsonl" | grep -o start | wc -l)" "1"

# clear errors before any start
JOB="-- $LMC train $BASE --batch 1 --grad-accum 2 --out $T/e/ckpt"
mkdir -p "$T/e"

# the supervisor's decisions, with a stand-in for mpirun that runs nothing
# and reports its last rank dead of a signal, in Open MPI's words
cat >"$T/fake_mpirun" <<'EOF'
#!/bin/sh
np=1
while [ $# -gt 0 ]; do [ "$1" = -np ] && np=$2; shift; done
echo "mpirun noticed that process rank $((np - 1)) with PID 0 on node x exited on signal 9 (Killed)." >&2
exit 137
EOF
chmod +x "$T/fake_mpirun"
hosts "$T/e/ab" "a slots=1
b slots=1"
expect_fail "each host excluded after its failure" "cannot restart: 0 usable slots, fewer than the 1 rank needed" \
    $LMC launch --mpirun "$T/fake_mpirun" --hosts "$T/e/ab" --host-failures 1 --log "$T/e/ab.jsonl" $JOB
expect_eq "the exclusions" "$(events "$T/e/ab.jsonl") $(field "$T/e/ab.jsonl" exclude host 1) $(field "$T/e/ab.jsonl" exclude host 2)" \
    "start failure exclude start failure exclude stop summary b a"
hosts "$T/e/eight" "big slots=8"
expect_fail "no progress" "3 starts in a row failed without writing a new checkpoint" \
    $LMC launch --mpirun "$T/fake_mpirun" --hosts "$T/e/eight" --host-failures 100 $JOB
expect_fail "--max-restarts" "2 failures: more than --max-restarts 1" \
    $LMC launch --mpirun "$T/fake_mpirun" --hosts "$T/e/eight" --max-restarts 1 $JOB
hosts "$T/e/one" "localhost slots=1"
expect_fail "too few slots" "cannot start: 1 usable slot, fewer than the 2 ranks needed \(--min-ranks 2\)" \
    $LAUNCH "$MPIRUN" --hosts "$T/e/one" --min-ranks 2 $JOB
bad() { # NAME CONTENT PATTERN
    printf "$2" >"$T/e/$1"
    expect_fail "host file: $1" "$3" $LAUNCH "$MPIRUN" --hosts "$T/e/$1" $JOB
}
bad slots_word '# hosts\nlocalhost slots=two\n' "$T/e/slots_word:2: slots: 'two' is not an integer"
bad no_slots 'localhost slots=1\nnode2\n' "$T/e/no_slots:2: host node2 has no slots=N"
bad field 'localhost slot=2\n' "$T/e/field:1: unknown field 'slot' for host localhost"
bad name 'local/host slots=1\n' "$T/e/name:1: host name 'local/host': character '/'"
bad empty '# nothing\n\n' "$T/e/empty: no hosts"
bad max 'localhost slots=4 max_slots=2\n' "max_slots=2 below slots=4"
bad twice 'localhost slots=1\nlocalhost slots=1\n' "$T/e/twice:2: host localhost is listed again \\(first on line 1\\)"
expect_fail "no host file" "$T/e/missing: cannot open" $LAUNCH "$MPIRUN" --hosts "$T/e/missing" $JOB
expect_fail "no --out" "the train command has no --out DIR" \
    $LAUNCH "$MPIRUN" --hosts "$T/e/one" -- $LMC train $BASE
expect_fail "not lmc train" "runs .lmc train FLAGS.... after --" $LAUNCH "$MPIRUN" --hosts "$T/e/one" -- ls -l

# a train command that fails by itself: one start, no restart loop
expect_fail "a bad train flag" "the train command failed \(exit code 2\) and is not restarted" \
    $LAUNCH "$MPIRUN" --hosts "$T/e/one" --log "$T/e/bad.jsonl" $JOB --no-such-flag 1
expect_eq "a bad train flag: events" "$(events "$T/e/bad.jsonl")" "start failure stop summary"
finish
