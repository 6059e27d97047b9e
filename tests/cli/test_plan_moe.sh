#!/usr/bin/env bash
# lmc plan on a mixture of experts (moe-8x): the report gives total and
# active parameters (103,367,680 and 51,463,168, worked out in
# tests/unit/test_plan_moe.c) and FLOPs from the active ones; --ep puts
# --ep in lmc train's command and the all-to-all bytes per step in the
# report (4 micro-batches of 402,653,184 bytes); a bad --ep is refused.
. "$(dirname "$0")/lib.sh"

$LMC plan --model moe-8x --tokens 10B --fleet 8xH100 --seq 1024 --global-batch 256 --ep 4 --micro-batch 8 \
    --json >"$T/p.json" 2>"$T/p.err"
if "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1])); b = d["best"]
ok = d["params"] == 103367680 and d["active_params"] == 51463168 and d["flops_per_token"] == 359058432
ok = ok and b["ep"] == 4 and b["dp"] == 8 and b["grad_accum"] == 4 and b["a2a_bytes_per_step"] == 4 * 402653184
sys.exit(0 if ok and " --ep 4 " in b["command"] else 1)' "$T/p.json"; then
    echo "ok   --ep 4: active parameters, all-to-all bytes, the command"
else
    echo "FAIL --ep 4 report: $(head -c 600 "$T/p.json") $(cat "$T/p.err")"; fails=$((fails + 1))
fi
$LMC plan --model moe-8x --tokens 10B --fleet 8xH100 --seq 1024 --global-batch 256 >"$T/p.txt" 2>&1
if grep -q "103.4M parameters in all (memory), 51.46M active per token (FLOPs)" "$T/p.txt" &&
    ! grep -q "all-to-all" "$T/p.txt"; then echo "ok   text: total and active, no all-to-all without --ep"; else
    echo "FAIL text report: $(cat "$T/p.txt")"; fails=$((fails + 1)); fi
expect_fail "--ep 3" "--ep 3 must divide the model's experts \(8\)" \
    $LMC plan --model moe-8x --tokens 10B --fleet 8xH100 --ep 3
expect_fail "--ep on a dense model" "--ep 2 must divide the model's experts \(0\)" \
    $LMC plan --model d12 --tokens 10B --fleet 8xH100 --ep 2
finish
