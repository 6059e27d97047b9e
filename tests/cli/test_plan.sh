#!/usr/bin/env bash
# lmc plan from the command line: text and JSON reports, a run from another
# directory (the catalogue is built in), deliveries with a plot, user chips,
# a training log comparison, and bad input (unknown chip, a model that fits
# nowhere, deliveries in the past, malformed JSON) failing with messages
# that name the file, field and value.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# check NAME PYTHON-EXPR FILE: the JSON report in FILE satisfies the expression (d = the object)
check_json() {
    local name=$1 expr=$2 file=$3
    if "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$file"; then
        echo "ok   $name"
    else
        echo "FAIL $name: $expr on $(head -c 400 "$file")"; fails=$((fails + 1))
    fi
}

expect_ok "text report" $LMC plan --model d12 --tokens 10B --fleet 8xA100 --global-batch 512 --seq 1024
$LMC plan --model d12 --tokens 10B --fleet 8xA100 --global-batch 512 --seq 1024 >"$T/out.txt" 2>&1
if grep -q "time to train" "$T/out.txt" && grep -q "MFU" "$T/out.txt"; then echo "ok   text has MFU and time"; else
    echo "FAIL text report: $(cat "$T/out.txt")"; fails=$((fails + 1)); fi

# the catalogue and model shapes are embedded: run from an unrelated directory
(cd "$T" && $LMC plan --model llama3-405b --tokens 15.6T --fleet 16384xH100 --global-batch 2048 --seq 8192 \
    --tp 8 --pp 16 --json >"$T/llama.json" 2>"$T/llama.err")
check_json "JSON from another directory: hours and mfu" \
    "d['hours'] > 1000 and 0.3 < d['mfu'] < 0.5 and d['best']['tp'] == 8 and d['best']['pp'] == 16" "$T/llama.json"

# deliveries: a re-plan per arrival, a finish date, and the plot
cat >"$T/fleet.json" <<'EOF'
{"pools": [
  {"chip": "910B", "count": 3000, "name": "first lot"},
  {"chip": "Ascend 910B", "count": 4000, "arrives": "2030-03-01"},
  {"chip": "H20", "count": 3000, "arrives": "2030-04-01", "chips_per_node": 8}
]}
EOF
$LMC plan --model pangu-ultra-135b --tokens 15T --fleet "$T/fleet.json" --start 2030-01-01 --global-batch 4096 \
    --seq 4096 --plot "$T/t.svg" --json >"$T/deliv.json" 2>"$T/deliv.err"
check_json "deliveries: three segments, later ones faster" \
    "len(d['timeline']) == 3 and d['timeline'][0]['date'] == '2030-01-01' and d['timeline'][2]['chips'] == 10000 \
     and d['timeline'][1]['tokens_per_s'] > d['timeline'][0]['tokens_per_s'] and d['finish'] > '2030-04-01'" \
    "$T/deliv.json"
if "$PY" -c "import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); sys.exit(0 if d.documentElement.tagName == 'svg' else 1)" "$T/t.svg" &&
    grep -q "re-plan: 7k chips" "$T/t.svg" && ! ls "$T"/t.svg.tmp* >/dev/null 2>&1; then
    echo "ok   plot is SVG with the re-plans, written atomically"
else
    echo "FAIL plot: $(head -c 300 "$T/t.svg" 2>&1) $(cat "$T/deliv.err")"; fails=$((fails + 1))
fi

# user chips: a new kind and an override of a built-in one
cat >"$T/chips.json" <<'EOF'
{"chips": [{"name": "LabChip", "bf16_tflops": 600, "memory_gb": 96, "memory_bw_gbs": 2500,
            "intra_node_gbs": 300, "network_gbs": 50, "chips_per_node": 8,
            "sources": {"bf16_tflops": "our own measurement"}}]}
EOF
$LMC plan --model d24 --tokens 30B --fleet 64xLabChip --chips "$T/chips.json" --json >"$T/lab.json" 2>&1
check_json "--chips adds a chip" "d['fleet'][0]['chip'] == 'LabChip' and d['best']['chips'] == 64" "$T/lab.json"

# a training log from elsewhere against the prediction
for i in 1 2 3 4 5 6; do echo "{\"step\": $i, \"loss\": 3.2, \"lr\": 6e-4, \"grad_norm\": 1.0, \"tokens_per_s\": 1.7e6, \"mfu\": 0.6, \"ms\": 300.0}"; done >"$T/run.jsonl"
$LMC plan --calibrate-log "$T/run.jsonl" --model d12 --fleet 8xA100 --global-batch 512 --seq 1024 \
    --micro-batch 64 >"$T/cal.txt" 2>&1
if grep -q "300.0" "$T/cal.txt" && grep -qE "[+-][0-9.]+%" "$T/cal.txt"; then echo "ok   --calibrate-log compares"; else
    echo "FAIL --calibrate-log: $(cat "$T/cal.txt")"; fails=$((fails + 1)); fi
expect_ok "--calibrate-log within 25% of llm.c's 300 ms" $LMC plan --calibrate-log "$T/run.jsonl" --model d12 \
    --fleet 8xA100 --global-batch 512 --seq 1024 --micro-batch 64 --tolerance 0.25

# one layout's memory, part by part: lmc train's own allocations on the cpu
# chip (the parts add up; ZeRO-3 < ZeRO-0), the generic model elsewhere
$LMC plan --memory --model d12 --fleet 4xcpu --micro-batch 4 --seq 256 --zero 3 --recompute full --json \
    >"$T/mem3.json" 2>&1
$LMC plan --memory --model d12 --fleet 4xcpu --micro-batch 4 --seq 256 --json >"$T/mem0.json" 2>&1
check_json "--memory on cpu: lmc train's parts add up" \
    "d['source'] == 'lmc train' and d['dp'] == 4 and d['zero'] == 3 and d['recompute'] == 'full' and \
     abs(sum(v for k, v in d['bytes'].items() if k != 'total') - d['bytes']['total']) < 1 and \
     d['bytes']['weights'] * 4 == d['bytes']['startup'] * 4 == 4 * 124475904 and d['fits']" "$T/mem3.json"
"$PY" -c "import json, sys; a, b = (json.load(open(f))['bytes']['total'] for f in sys.argv[1:]); sys.exit(0 if a < b / 2 else 1)" \
    "$T/mem3.json" "$T/mem0.json" && echo "ok   --memory: ZeRO-3 + full recompute under half of ZeRO-0" ||
    { echo "FAIL --memory ZeRO-3 vs 0: $(cat "$T/mem3.json" "$T/mem0.json")"; fails=$((fails + 1)); }
$LMC plan --memory --model d12 --fleet 8xH100 --micro-batch 4 --seq 256 --zero 1 --json >"$T/memg.json" 2>&1
check_json "--memory on H100: the generic model" \
    "d['source'] == 'generic' and d['dp'] == 8 and d['bytes']['startup'] == 0 and d['bytes']['logits'] > 0" \
    "$T/memg.json"
$LMC plan --memory --model d12 --fleet 4xcpu --micro-batch 4 --seq 256 --zero 2 >"$T/mem.txt" 2>&1
if grep -q "mpirun -np 4 lmc train --model d12 --seq 256 --batch 4 --grad-accum 128 --zero 2 --precision bf16" "$T/mem.txt" &&
    grep -qE "^  buffers +[0-9.]+ MB" "$T/mem.txt" && grep -qE "^  total \(peak\) +[0-9.]+ MB .*: fits" "$T/mem.txt"; then
    echo "ok   --memory text: the run's flags and the parts"
else echo "FAIL --memory text: $(cat "$T/mem.txt")"; fails=$((fails + 1)); fi
# ... and what a real run reports: a 2-layer GPT-2, one process, within 15%
cat >"$T/small.json" <<'EOF'
{"model_type": "gpt2", "n_layer": 2, "n_head": 6, "n_embd": 384, "vocab_size": 50257, "n_positions": 1024}
EOF
make_shard "$T/small.bin" 4096 50257
$LMC_FAST train --model "$T/small.json" --data "$T/small.bin" --batch 2 --seq 64 --steps 2 --threads 1 \
    --recompute selective --quiet --log "$T/small.jsonl" >"$T/small.out" 2>&1
$LMC plan --memory --model "$T/small.json" --micro-batch 2 --seq 64 --recompute selective --json >"$T/small_plan.json"
if "$PY" -c "import json, sys; m = json.loads(open(sys.argv[1]).read().splitlines()[-1])['rss_mb'][0]
p = json.load(open(sys.argv[2]))['bytes']['total'] / 1e6; print('measured %.1f MB, lmc plan %.1f MB' % (m, p))
sys.exit(0 if abs(p / m - 1) <= 0.15 else 1)" "$T/small.jsonl" "$T/small_plan.json" >"$T/small.cmp" 2>&1; then
    echo "ok   --memory beside a real run: $(cat "$T/small.cmp")"
else echo "FAIL --memory beside a real run: $(cat "$T/small.cmp" "$T/small.out")"; fails=$((fails + 1)); fi
expect_fail "--memory needs --model" "--memory needs --model" $LMC plan --memory
expect_fail "--memory: more ranks than chips" "dp 8 x tp 1 x pp 1 needs more chips than --fleet 4xcpu has \(4\)" \
    $LMC plan --memory --model d12 --fleet 4xcpu --dp 8

# bad input
expect_fail "unknown chip" "unknown chip 'H1000' \(known: A100" $LMC plan --model d12 --tokens 1B --fleet 8xH1000
echo '{"pools": [{"chip": "Z9", "count": 8}]}' >"$T/z9.json"
expect_fail "unknown chip in FLEET.json" "z9.json: pools\[0\].chip: unknown chip 'Z9'" \
    $LMC plan --model d12 --tokens 1B --fleet "$T/z9.json"
expect_fail "model fits nowhere" "fits nowhere on this fleet.*GB per A100, which offers" \
    $LMC plan --model llama3-405b --tokens 1B --fleet 8xA100
echo '{"pools": [{"chip": "H100", "count": 8, "arrives": "2029-12-31"}]}' >"$T/past.json"
expect_fail "delivery in the past" "past.json: pools\[0\].arrives = 2029-12-31 is before the start date 2030-01-01" \
    $LMC plan --model d12 --tokens 1B --fleet "$T/past.json" --start 2030-01-01
echo '{"pools": [{"chip": "H100", "count": 8,}]}' >"$T/bad.json"
expect_fail "malformed FLEET.json" "bad.json: malformed JSON at line 1" $LMC plan --model d12 --tokens 1B --fleet "$T/bad.json"
echo '{"pools": [{"chip": "H100", "count": "eight"}]}' >"$T/count.json"
expect_fail "count not a number" "count.json: pools\[0\]: field 'count' must be a number" \
    $LMC plan --model d12 --tokens 1B --fleet "$T/count.json"
echo '{"chips": [{"name": "X", "bf16_tflops": -1}]}' >"$T/badchip.json"
expect_fail "bad chip figure" "badchip.json: chips\[0\] \(X\): field 'bf16_tflops' = -1" \
    $LMC plan --model d12 --tokens 1B --fleet 8xH100 --chips "$T/badchip.json"
expect_fail "malformed chips file" "badchips.json: malformed JSON" sh -c \
    "echo '{\"chips\": [' >'$T/badchips.json'; $LMC plan --model d12 --tokens 1B --fleet 8xH100 --chips '$T/badchips.json'"
expect_fail "unknown model" "unknown model 'gpt5'" $LMC plan --model gpt5 --tokens 1B --fleet 8xH100
expect_fail "bad start date" "--start: '2030-02-30' is not a valid date" \
    $LMC plan --model d12 --tokens 1B --fleet 8xH100 --start 2030-02-30
expect_fail "bad token count" "--tokens: 'lots' is not a count" $LMC plan --model d12 --tokens lots --fleet 8xH100
expect_fail "missing flags" "--model, --tokens and --fleet are required" $LMC plan --model d12
expect_fail "malformed training log" "run2.jsonl:2: malformed JSON" sh -c \
    "printf '{\"step\": 1, \"ms\": 5}\n{\"step\"\n' >'$T/run2.jsonl'; $LMC plan --calibrate-log '$T/run2.jsonl' --model d12 --fleet 8xA100"
expect_ok "help" $LMC plan --help
finish
