#!/usr/bin/env bash
# Faults: a rank killed mid-run ends the whole job within seconds with a
# non-zero exit and a message saying so, the last checkpoint is complete, and
# the job continues on the remaining rank with --resume. A stuck rank
# (SIGSTOP) is caught by the communication watchdog (LMC_COMM_TIMEOUT), and
# ranks started with different flags refuse to train.
. "$(dirname "$0")/lib.sh"
need_mpi
victims=()
trap 'for v in "${victims[@]}"; do kill -CONT $v 2>/dev/null; kill -9 $v 2>/dev/null; done; rm -rf "$T"' EXIT

make_shard "$T/train.bin" 40000 64
ARGS="--model d6 --layers 2 --dim 64 --heads 2 --vocab 64 --max-seq 32 --batch 2 --seq 32 --data $T/train.bin"
ARGS="$ARGS --threads 1 --quiet"

# run_and_hit SIGNAL OUT LOG [FLAGS]: starts 2 ranks, signals rank 1 once a
# checkpoint exists; sets rc and secs (from the signal to the end of mpirun)
run_and_hit() {
    $MPIRUN -np 2 $LMC train $ARGS ${4:-} --steps 100000 --out "$2" --save-every 1 --keep 2 >"$3" 2>&1 &
    local mp=$! victim
    wait_file "$2/latest" 60 || { echo "FAIL no checkpoint appeared"; cat "$3"; fails=$((fails + 1)); }
    sleep 0.5
    victim=$(rank_pid $mp 1)
    victims+=("$victim")
    local t0=$SECONDS
    kill "-$1" "$victim"
    wait $mp; rc=$?
    secs=$((SECONDS - t0))
}

run_and_hit KILL "$T/K" "$T/kill.log"
if [ $rc -ne 0 ] && [ $secs -le 10 ]; then echo "ok   rank 1 killed: job ended in ${secs}s with exit $rc"; else
    echo "FAIL after kill -9 of rank 1: exit $rc after ${secs}s"; fails=$((fails + 1)); fi
grep -qE "exited on signal 9|terminated by the MPI launcher" "$T/kill.log" &&
    echo "ok   message: $(grep -m1 -E "terminated by the MPI launcher|exited on signal" "$T/kill.log")" ||
    { echo "FAIL no clear message:"; cat "$T/kill.log"; fails=$((fails + 1)); }
latest=$(cat "$T/K/latest")
step=$((10#${latest#step_}))
[ -f "$T/K/$latest/state.json" ] && [ -f "$T/K/$latest/model.safetensors" ] &&
    [ -f "$T/K/$latest/optim.safetensors" ] && echo "ok   last checkpoint ($latest) is complete" ||
    { echo "FAIL last checkpoint incomplete: '$latest'"; fails=$((fails + 1)); }
expect_ok "resume on the remaining rank" $MPIRUN -np 1 $LMC train $ARGS --steps $((step + 2)) --resume "$T/K" \
    --out "$T/K" --grad-accum 2 --log "$T/resumed.jsonl"
last=$($CMP field "$T/resumed.jsonl" step 2>/dev/null)
[ "$last" = "$((step + 2))" ] && [ "$(cat "$T/K/latest")" = "$(printf 'step_%08d' $((step + 2)))" ] &&
    echo "ok   continued from step $step to $last" || { echo "FAIL resume: last step '$last'"; fails=$((fails + 1)); }

# the same during a ZeRO-3 step: every rank writes its part of the checkpoint
run_and_hit KILL "$T/Z" "$T/zkill.log" "--zero 3"
if [ $rc -ne 0 ] && [ $secs -le 10 ]; then echo "ok   ZeRO-3 rank 1 killed: job ended in ${secs}s with exit $rc"; else
    echo "FAIL after kill -9 of ZeRO-3 rank 1: exit $rc after ${secs}s"; fails=$((fails + 1)); fi
latest=$(cat "$T/Z/latest")
step=$((10#${latest#step_}))
[ -f "$T/Z/$latest/state.json" ] && [ -f "$T/Z/$latest/model.safetensors.index.json" ] &&
    [ -f "$T/Z/$latest/model-00002-of-00002.safetensors" ] && [ -f "$T/Z/$latest/optim-00002-of-00002.safetensors" ] &&
    echo "ok   last ZeRO-3 checkpoint ($latest) is complete" ||
    { echo "FAIL last ZeRO-3 checkpoint incomplete: '$latest'"; fails=$((fails + 1)); }
expect_ok "resume the ZeRO-3 checkpoint on one process" $LMC train $ARGS --steps $((step + 1)) --resume "$T/Z" \
    --grad-accum 2 --log "$T/zresumed.jsonl"

# a stopped rank: the watchdog ends the job, whether rank 0 waits for a
# queued collective (data parallel) or is inside a blocking one on its own
# thread (tensor parallel: most of its time is in its collectives)
export LMC_COMM_TIMEOUT=3
for how in dp:"" tp:"--tp 2 --save-every 200"; do
    run_and_hit STOP "$T/S${how%%:*}" "$T/stop.log" "${how#*:}"
    if [ $rc -ne 0 ] && [ $secs -le 15 ]; then echo "ok   ${how%%:*}: rank 1 stopped: job ended in ${secs}s with exit $rc"; else
        echo "FAIL ${how%%:*}: after SIGSTOP of rank 1: exit $rc after ${secs}s"; fails=$((fails + 1)); fi
    grep -q "communication watchdog" "$T/stop.log" && echo "ok   message: $(grep -m1 watchdog "$T/stop.log")" ||
        { echo "FAIL no watchdog message:"; cat "$T/stop.log"; fails=$((fails + 1)); }
done
unset LMC_COMM_TIMEOUT

expect_fail "ranks with different flags" "rank 1 has --grad-accum 2 but rank 0 has 1" \
    $MPIRUN -np 1 $LMC train $ARGS --steps 1 --grad-accum 1 : -np 1 $LMC train $ARGS --steps 1 --grad-accum 2
finish
