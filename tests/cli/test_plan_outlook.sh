#!/usr/bin/env bash
# lmc plan's expected figures, range and lost time (issue 23), against the
# published runs of share/runs.json: --validate puts every run's published
# throughput inside lmc's range; the JSON report's hours, mfu and step_s
# are the expected figures with *_range and *_best beside them; a delivery
# that may slip widens only the far end; lmc launch's restart events set the
# restart cost; bad input (a figure without a source, a slip without a date,
# a launch log without restarts) fails naming the file and field.
. "$(dirname "$0")/lib.sh"

check_json() { # NAME PYTHON-EXPR FILE
    if "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$3"; then
        echo "ok   $1"
    else
        echo "FAIL $1: $2 on $(head -c 600 "$3")"; fails=$((fails + 1))
    fi
}

# every published run inside the range; the five reproductions are there
$LMC plan --validate >"$T/val.txt" 2>&1; rc=$?
n=$(grep -cE "^  .* (A100|A100-40G|H100|910B2) " "$T/val.txt")
if [ $rc -eq 0 ] && [ "$n" -ge 12 ] && grep -qE "^([0-9]+) of \1 runs predicted; published inside the range: \1;" "$T/val.txt" &&
    ! grep -q OUTSIDE "$T/val.txt" && grep -q "MegaScale GPT-3 175B" "$T/val.txt" && grep -q "Pangu Ultra 135B" "$T/val.txt"; then
    echo "ok   --validate: $n runs, every published figure inside the range; $(grep -o 'expected within 25%: [0-9]* ([0-9]*%)' "$T/val.txt")"
else
    echo "FAIL --validate (rc $rc): $(cat "$T/val.txt")"; fails=$((fails + 1))
fi

# the JSON: expected figures with their range and the best case
$LMC plan --model llama3-405b --tokens 15.6T --fleet 16384xH100 --global-batch 2048 --seq 8192 --tp 8 --pp 16 \
    --start 2030-01-01 --json >"$T/l.json" 2>"$T/l.err"
check_json "JSON: expected hours, mfu and step inside their ranges, best case beside" \
    "d['hours_range'][0] <= d['hours'] <= d['hours_range'][1] and d['mfu_range'][0] <= d['mfu'] <= d['mfu_range'][1] \
     and d['step_s_range'][0] <= d['step_s'] <= d['step_s_range'][1] and d['hours'] > d['hours_best'] \
     and abs(d['mfu'] - d['mfu_best'] * d['efficiency']['expected']) < 1e-9 and d['best']['tp'] == 8 \
     and 0.85 < d['lost_time']['effective_time'] < 0.95 and d['lost_time']['checkpoint_interval_hours'] > 0" "$T/l.json"

# text: expected N days (range A-B), the Young/Daly interval, the effective-time fraction
$LMC plan --model pangu-ultra-135b --tokens 10T --fleet 30000x910B --global-batch 4096 --seq 8192 >"$T/t.txt" 2>&1
if grep -qE "^expected: [0-9]+ days \(range [0-9]+-[0-9]+\)" "$T/t.txt" && grep -q "Young/Daly" "$T/t.txt" &&
    grep -q "effective-time fraction 0\." "$T/t.txt"; then
    echo "ok   text: $(grep '^expected:' "$T/t.txt")"
else
    echo "FAIL text report: $(tail -8 "$T/t.txt")"; fails=$((fails + 1))
fi

# a delivery that may slip 60 days moves the far end, not the expected figure
for slip in 0 60; do
    cat >"$T/f$slip.json" <<EOT
{"pools": [{"chip": "910B", "count": 3000},
           {"chip": "910B", "count": 7000, "arrives": "2030-02-01", "slip_days": $slip}]}
EOT
    $LMC plan --model pangu-ultra-135b --tokens 3T --fleet "$T/f$slip.json" --start 2030-01-01 --global-batch 4096 \
        --seq 8192 --json >"$T/s$slip.json" 2>"$T/s$slip.err"
done
"$PY" - "$T/s0.json" "$T/s60.json" <<'PYEOF' && echo "ok   slip: only the range's far end moves" || { echo "FAIL slip"; fails=$((fails + 1)); }
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a['hours'] == b['hours'] and a['hours_range'][0] == b['hours_range'][0], (a['hours'], b['hours'])
assert b['hours_range'][1] > a['hours_range'][1] + 24 * 30, (a['hours_range'], b['hours_range'])
PYEOF

# lmc launch's restart events (the fields events.c writes) set the restart cost: mean of lost_s - redone_s
cat >"$T/launch.jsonl" <<'EOT'
{"event":"start","time":1764900000.000,"t":0.000,"attempt":1,"ranks":2,"message":"start 1"}
{"event":"failure","time":1764900010.000,"t":10.000,"kind":"rank_died","message":"failure"}
{"event":"resumed","time":1764900100.000,"t":100.000,"attempt":2,"step":7,"restart_s":80.000,"ready_s":null,"first_step_ms":200.000,"redone_s":30.000,"lost_s":120.000,"message":"resumed"}
{"event":"resumed","time":1764900300.000,"t":300.000,"attempt":3,"step":9,"restart_s":60.000,"ready_s":null,"first_step_ms":200.000,"redone_s":0.000,"lost_s":90.000,"message":"resumed"}
{"event":"summary","time":1764900400.000,"t":400.000,"wall_s":400.000,"effective":0.5,"message":"summary"}
EOT
$LMC plan --model d12 --tokens 10B --fleet 8xA100 --launch-log "$T/launch.jsonl" --json >"$T/ll.json" 2>"$T/ll.err"
check_json "--launch-log: restart cost from its resumed events (90 s)" \
    "abs(d['lost_time']['restart_hours'] * 3600 - 90) < 1e-6" "$T/ll.json"
$LMC plan --model d12 --tokens 10B --fleet 8xA100 --launch-log "$T/launch.jsonl" >"$T/ll.txt" 2>&1
grep -q "restart 1.5 min (measured by lmc launch: 2 restarts in" "$T/ll.txt" && echo "ok   --launch-log in the text" ||
    { echo "FAIL --launch-log text: $(grep restart "$T/ll.txt")"; fails=$((fails + 1)); }

# bad input
cat >"$T/nosrc.json" <<'EOT'
{"runs": [{"name": "Our run", "chip": "H100", "chips": 64, "model": "d24", "seq": 1024, "mfu": 0.4,
           "sources": {"chips": "our log", "model": "ours", "seq": "ours"}}]}
EOT
expect_fail "runs file: a figure without its source" "nosrc.json: runs\[0\] \(\"Our run\"\): field 'mfu' has no source" \
    $LMC plan --validate --runs "$T/nosrc.json"
echo '{"pools": [{"chip": "910B", "count": 64, "slip_days": 30}]}' >"$T/slip.json"
expect_fail "slip without a date" "slip.json: pools\[0\]: slip_days = 30 without an 'arrives' date" \
    $LMC plan --model d12 --tokens 1B --fleet "$T/slip.json"
echo '{"event":"start","t":0}' >"$T/none.jsonl"
expect_fail "launch log without restarts" "none.jsonl: no \"resumed\" events" \
    $LMC plan --model d12 --tokens 1B --fleet 8xA100 --launch-log "$T/none.jsonl"
finish
