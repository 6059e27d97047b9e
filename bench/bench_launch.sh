#!/usr/bin/env bash
# bench_launch.sh: what a restart under lmc launch costs, for d12 (GPT-2
# 124M) on this machine, beside the checkpoint interval.
#
# One supervised run on `localhost slots=2` (2 ranks x 1 thread):
#   1. a rank is killed (SIGKILL) one step after a checkpoint: the job ends,
#      lmc launch restarts it from that checkpoint on the slot left (1 rank,
#      twice the micro-batches);
#   2. the host file goes back to 2 slots: the job writes a checkpoint at the
#      next step boundary, stops, and restarts on 2 ranks.
# For each incident, from the launch log (--log) and the kill's timestamp:
#   detect     the kill -> mpirun has exited (the job ended by Open MPI)
#   relaunch   mpirun started -> rank 0 set up (processes, MPI, model,
#              checkpoint loaded: rank 0's "starting at step" line)
#   first step set up -> the first step after the restart logged
#   redone     the steps between the checkpoint and the failure, done again
#   lost       the gap from the last step before to the first after, less
#              that step's time, plus the time redone
# Peer: the same resume run by hand (mpirun -np N lmc train --resume, one
# step, N the restart's ranks), whose wall time is what the supervisor's relaunch + first step
# should match (ratio ~1: the supervisor adds no cost of its own). What
# loading the checkpoint adds to the set-up: one process set up from the
# checkpoint vs. from a fresh init (no steps, no mpirun).
# Then the effective-time fraction (useful step time / wall time) a run
# with a failure every F minutes would have, from these figures: each
# failure costs the restart plus half a checkpoint interval redone on
# average.
# On a shared machine every figure moves with the load: the script prints
# the load average beside them.
# Usage: bash bench/bench_launch.sh   (env: LMC, MODEL, STEPS, EVERY, SEQ)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
LMC=${LMC:-$PWD/build/lmc}
STEPS=${STEPS:-12} EVERY=${EVERY:-3} SEQ=${SEQ:-64} MODEL=${MODEL:-d12}
W=$(mktemp -d /tmp/lmc_bench_launch_XXXXXX)
trap 'rm -rf "$W"' EXIT

random_tokens "$W/train.bin" 200000 50257
ARGS="--model $MODEL --batch 1 --seq $SEQ --max-seq $SEQ --data $W/train.bin --threads 1 --steps $STEPS"
printf 'localhost slots=2\n' >"$W/hosts"
$LMC launch --hosts "$W/hosts" --mpirun "$MPIRUN" --poll 0.2 --log "$W/launch.jsonl" -- \
    $LMC train $ARGS --grad-accum 1 --out "$W/ckpt" --save-every "$EVERY" --keep 1 >"$W/out.txt" 2>&1 &
lpid=$!

step_logged() { [ -f "$W/ckpt/train.jsonl" ] && "$PY" -c "import json,sys
print(max([json.loads(l)['step'] for l in open(sys.argv[1]) if l.strip()] or [0]))" "$W/ckpt/train.jsonl" || echo 0; }
wait_step() { # STEP: until the trainer has logged it
    while [ "$(step_logged)" -lt "$1" ]; do
        kill -0 $lpid 2>/dev/null || { cat "$W/out.txt"; exit 1; }
        sleep 0.2
    done
}
wait_step $((EVERY + 1))
mp=$(pgrep -P $lpid | head -1)
for k in $(pgrep -P "$mp"); do
    tr '\0' '\n' <"/proc/$k/environ" | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$k
done
kill_t=$(date +%s.%N)
kill -9 "$victim"
sleep 1
wait_step $((EVERY + 3))
printf 'localhost slots=2\n# back\n' >"$W/hosts.tmp" && mv "$W/hosts.tmp" "$W/hosts"
wait $lpid || { tail -20 "$W/out.txt"; exit 1; }

# the peer: resuming by hand from the last checkpoint, one step, on 1 and on 2 ranks
secs() { local t=$(date +%s.%N); "$@" >/dev/null 2>&1; awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
manual="$(secs $MPIRUN -np 1 $LMC train $ARGS --grad-accum 2 --resume "$W/ckpt" --steps $((STEPS + 1)) --quiet)"
manual="$manual,$(secs $MPIRUN -np 2 $LMC train $ARGS --grad-accum 1 --resume "$W/ckpt" --steps $((STEPS + 1)) --quiet)"
fresh=$(secs $LMC train $ARGS --steps 0 --quiet)
loaded=$(secs $LMC train $ARGS --resume "$W/ckpt" --quiet)

"$PY" - "$W/launch.jsonl" "$kill_t" "$manual" "$EVERY" "$SEQ" "$MODEL" "$fresh" "$loaded" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kill_t, every, seq, model = float(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
manual = [float(x) for x in sys.argv[3].split(",")]  # by hand on 1 and on 2 ranks
fresh, loaded, load = float(sys.argv[7]), float(sys.argv[8]), sys.argv[9]
def first(kind, after=0.0):
    return next(e for e in ev if e["event"] == kind and e["t"] >= after)
summ = first("summary")
steps_ms = summ["useful_s"] * 1e3 / summ["steps"]
starts = [e for e in ev if e["event"] == "start"]
resumed = [e for e in ev if e["event"] == "resumed"]
fail = first("failure")
print("%s, %d steps of %d sequences x %d tokens; a checkpoint every %d steps = %.1f s of steps; mean step %.0f ms;"
      " load average %s" % (model, summ["steps"], starts[0]["global_batch"], seq, every, every * steps_ms / 1e3,
                            steps_ms, load))
print("%-28s %8s %9s %10s %7s %7s %7s %9s" % ("incident", "detect", "relaunch", "first step", "redone", "lost",
                                              "peer", "ratio"))
rows = [("rank killed (2 -> 1 ranks)", fail["time"] - kill_t, resumed[0], starts[1]["ranks"]),
        ("host file grew (1 -> 2)", first("stopped")["t"] - first("grow")["t"], resumed[1], starts[2]["ranks"])]
for name, detect, r, ranks in rows:
    ready = r["ready_s"] if r["ready_s"] is not None else float("nan")
    peer = manual[ranks - 1]
    print("%-28s %7.1fs %8.1fs %9.1fs %6.1fs %6.1fs %6.1fs %8.2fx" % (
        name, detect, ready, r["restart_s"] - ready, r["redone_s"], r["lost_s"], peer, r["restart_s"] / peer))
print("(the peer: the same resume by hand on as many ranks, mpirun -np N lmc train --resume, one step; ratio: relaunch + first"
      " step / peer; a move's 'detect' is the stop request -> the job ended: the step's end and its checkpoint)")
print("set-up of one process: fresh init %.1f s, from the checkpoint %.1f s: loading it adds %.1f s"
      % (fresh, loaded, loaded - fresh))
print("this run: wall %.1f s, useful %.1f s, effective-time fraction %.3f (start-up included)"
      % (summ["wall_s"], summ["useful_s"], summ["effective"]))
restart = rows[0][2]["restart_s"] + rows[0][1]
interval = every * steps_ms / 1e3
for minutes in (5, 30, 180):
    f = minutes * 60.0
    print("a failure every %3d min: effective-time fraction %.3f (each costs %.1f s: restart %.1f s + half a"
          " checkpoint interval %.1f s)" % (minutes, max(0.0, 1 - (restart + interval / 2) / f),
                                            restart + interval / 2, restart, interval / 2))
EOF
