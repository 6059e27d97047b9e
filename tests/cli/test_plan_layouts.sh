#!/usr/bin/env bash
# The layouts lmc plan proposes on the cpu chip run. For a tiny GPT-2 on
# 4 cpu "chips" (ranks oversubscribed on this machine) the top layouts of
# `lmc plan --json`, free and with --pp 2, --tp 2 and --pp 2 --zero 2
# fixed, are run by lmc train from each layout's "command" (plus a tiny
# shard, --threads 1, 2 steps): each must run, its log must show the
# layout (data-parallel ranks, pipeline stages) and its peak RSS per rank
# be within 20% of the plan's per-rank memory. The text report and
# --memory print the same command. The plans that measure the cpu chip and
# the training runs use $LMC_FAST (the measurement takes half a minute under
# the sanitizers); --memory runs under $LMC.
. "$(dirname "$0")/../mpi/lib.sh"
need_mpi

make_shard "$T/train.bin" 20000 512
MODEL="--model d6 --layers 4 --heads 4 --dim 64 --vocab 512"
PLAN="$MODEL --tokens 1M --fleet 4xcpu --seq 32 --global-batch 8 --threads 1"

# layouts FILE: one line per layout: np dp pp mem_mb|flags after "lmc train"
layouts() {
    "$PY" - "$1" <<'PYEOF'
import json, sys
for l in json.load(open(sys.argv[1]))["layouts"]:
    cmd = l["command"]
    train = cmd[cmd.index("lmc train ") + len("lmc train "):]
    np_ = l["dp"] * l["tp"] * l["pp"]
    want = f"mpirun -np {np_} lmc train " if np_ > 1 else "lmc train "
    assert cmd.startswith(want), (cmd, want)
    print(np_, l["dp"], l["pp"], l["mem_gb"] * 1e3, "|" + train)
PYEOF
}

# run_layout NP DP PP MEM_MB FLAGS...: lmc train runs it for 2 steps; the log
# has 2 steps, DP ranks' memory (stage 0's), PP stages, and RSS near MEM_MB
run_layout() {
    local np=$1 dp=$2 pp=$3 mem=$4 name="np $1: ${*:5}" out
    shift 4
    rm -f "$T/log.jsonl"
    if [ "$np" -gt 1 ]; then
        out=$($MPIRUN -np "$np" $LMC_FAST train "$@" --data "$T/train.bin" --threads 1 --steps 2 --quiet \
            --log "$T/log.jsonl" 2>&1 </dev/null) # mpirun would read the list of layouts
    else
        out=$($LMC_FAST train "$@" --data "$T/train.bin" --threads 1 --steps 2 --quiet --log "$T/log.jsonl" 2>&1)
    fi || { echo "FAIL $name: $(echo "$out" | grep -v '^---' | head -5)"; fails=$((fails + 1)); return; }
    if "$PY" - "$T/log.jsonl" "$dp" "$pp" "$mem" <<'PYEOF'; then echo "ok   $name"; else fails=$((fails + 1)); fi
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"ms"' in l]
dp, pp, mem = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
last = steps[-1]
rss = max(last["rss_mb"])
ok = len(steps) == 2 and len(last["rss_mb"]) == dp and len(last.get("pp_bubble", [0])) == pp \
    and abs(mem / rss - 1) <= 0.2
if not ok:
    print(f"FAIL: {len(steps)} steps, rss_mb {last['rss_mb']} (plan {mem:.1f} MB), "
          f"pp_bubble {last.get('pp_bubble')} for dp {dp} pp {pp}")
sys.exit(0 if ok else 1)
PYEOF
}

seen=" "
for fix in "" "--pp 2" "--tp 2" "--pp 2 --zero 2"; do
    if ! $LMC_FAST plan $PLAN $fix --top 3 --json >"$T/plan.json" 2>"$T/plan.err"; then
        echo "FAIL plan $fix: $(cat "$T/plan.err")"; fails=$((fails + 1)); continue
    fi
    n=0
    while IFS='|' read -r shape flags; do
        n=$((n + 1))
        case "$seen" in *" $flags "*) continue ;; esac # the same command from two plans runs once
        seen="$seen $flags "
        run_layout $shape $flags
    done < <(layouts "$T/plan.json")
    [ "$n" -gt 0 ] && echo "ok   plan $fix: $n layouts" || { echo "FAIL plan $fix: no layouts"; fails=$((fails + 1)); }
    case "$fix" in *--pp*) grep -q -- '--pp 2' "$T/plan.json" || { echo "FAIL plan $fix: no --pp 2"; fails=$((fails + 1)); } ;; esac
    case "$fix" in *--tp*) grep -q -- '--tp 2' "$T/plan.json" || { echo "FAIL plan $fix: no --tp 2"; fails=$((fails + 1)); } ;; esac
done

# the text report and --memory print the command too
$LMC_FAST plan $PLAN --pp 2 >"$T/plan.txt" 2>&1
grep -qE "^run #1: +mpirun -np [0-9]+ lmc train $MODEL --seq 32 .*--pp 2" "$T/plan.txt" &&
    echo "ok   text report: run #1" || { echo "FAIL text report: $(cat "$T/plan.txt")"; fails=$((fails + 1)); }
$LMC plan --memory $MODEL --fleet 4xcpu --seq 32 --global-batch 8 --tp 2 --pp 2 --micro-batch 2 >"$T/mem.txt" 2>&1
grep -qE "^run +mpirun -np 4 lmc train $MODEL --seq 32 --batch 2 --grad-accum 4 --tp 2 --sp --pp 2" "$T/mem.txt" &&
    echo "ok   --memory: run line with -np tp x pp x dp" || { echo "FAIL --memory: $(cat "$T/mem.txt")"; fails=$((fails + 1)); }
# --calibrate-log on a pp x dp run: measured per-rank memory beside the
# prediction (within 20%) and each stage's bubble beside the schedule's; the
# layout from flags, or from a "run" line where the log has one
CAL="--seq 32 --batch 2 --grad-accum 2 --pp 2 --vpp 2 --zero 1"
$MPIRUN -np 4 $LMC_FAST train $MODEL $CAL --data "$T/train.bin" --threads 1 --steps 3 --quiet --log "$T/cal.jsonl" \
    </dev/null >/dev/null 2>&1 || { echo "FAIL calibration run"; fails=$((fails + 1)); }
$LMC_FAST plan --calibrate-log "$T/cal.jsonl" $MODEL --fleet 4xcpu --threads 1 --seq 32 --global-batch 8 \
    --micro-batch 2 --pp 2 --vpp 2 --zero 1 --precision fp32 >"$T/cal.txt" 2>&1
if grep -q "layout on 4xcpu: dp 2 tp 1 pp 2 vpp 2, micro-batch 2 x 2, ZeRO-1" "$T/cal.txt" &&
    grep -qE "^  peak MB, stage 0 rank +[0-9.]+ +[0-9.]+ +[-+]1?[0-9]\.[0-9]%" "$T/cal.txt" &&
    grep -qE "bubble per stage: measured [0-9.]+ [0-9.]+; the schedule's .* = 0\.200 \(p 2, v 2, m 2\)" "$T/cal.txt"; then
    echo "ok   --calibrate-log: memory within 20%, bubble per stage: $(grep peak "$T/cal.txt")"
else echo "FAIL --calibrate-log: $(cat "$T/cal.txt")"; fails=$((fails + 1)); fi
{ echo '{"run": {"dp": 2, "tp": 1, "pp": 2, "vpp": 2, "sp": false, "zero": 1, "recompute": "none", "batch": 2,' \
    '"grad_accum": 2, "seq": 32, "precision": "fp32", "threads": 1}}'; cat "$T/cal.jsonl"; } >"$T/run.jsonl"
$LMC plan --calibrate-log "$T/run.jsonl" $MODEL --fleet 4xcpu --threads 1 >"$T/run.txt" 2>&1
grep -q "layout on 4xcpu: dp 2 tp 1 pp 2 vpp 2, micro-batch 2 x 2, ZeRO-1" "$T/run.txt" &&
    echo "ok   --calibrate-log: the layout from the log's run line" || { echo "FAIL run line: $(cat "$T/run.txt")"; fails=$((fails + 1)); }
finish
