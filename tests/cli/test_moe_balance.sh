#!/usr/bin/env bash
# DeepSeek-V3's auxiliary-loss-free balancing (--moe-bias-step) on a skewed
# toy: every token's hidden state shares a direction (added to the token
# embeddings) that the router's row for expert 0 points along, so expert 0
# starts in every token's top 2 of 4 (max/mean load 2). Without the load-
# balancing loss and without the bias the load stays skewed; with the bias
# (moved by a fixed step against each expert's load after every step, no
# gradient) the worst layer's max/mean load falls below 1.3 within 300 steps (averaged over
# the last 50: single steps of this 128-token batch scatter around it)
# while the loss falls. The log's expert_load shows it; the bias is saved
# in checkpoints (state.json's moe_bias) and a resumed run continues it
# exactly; bad values fail with the field named.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/moe_toy.sh"

make_shard "$T/train.bin" 40000 64
skew_toy_config "$T/moe.json" 64
A="--batch 8 --seq 16 --data $T/train.bin --lr 3e-3 --warmup 10 --threads 1 --quiet"
expect_ok "an initial model" $LMC train --model "$T/moe.json" $A --steps 0 --save "$T/init/"
skew_router "$T/init" 32 2 || { echo "FAIL skewing the initial model"; exit 1; }

expect_ok "skewed, no balancing (300 steps)" $LMC train --init "$T/init" $A --steps 300 --log "$T/off.jsonl"
expect_ok "skewed, --moe-bias-step 0.01 (300 steps)" $LMC train --init "$T/init" $A --steps 300 \
    --moe-bias-step 0.01 --log "$T/on.jsonl" --out "$T/ck" --save-every 150 --keep 0 --save "$T/on.st"
"$PY" - "$T/off.jsonl" "$T/on.jsonl" <<'PYEOF'
import sys, json
off = [json.loads(l) for l in open(sys.argv[1])]
on = [json.loads(l) for l in open(sys.argv[2])]
fails = 0
def check(ok, msg):
    global fails
    print(("ok   " if ok else "FAIL ") + msg)
    fails += not ok
first = on[0]["expert_load"]
check(min(first) >= 1.9, "step 1 is skewed: max/mean load %s" % first)
def tail(log):  # the last 50 steps: the worst layer's max/mean load, averaged; and the worst step
    w = [max(r["expert_load"]) for r in log[-50:]]
    return sum(w) / len(w), max(w)
m_off, w_off = tail(off)
check(m_off > 1.3, "without balancing it stays above 1.3: max/mean load %.3f over the last 50 steps" % m_off)
m_on, w_on = tail(on)
reached = next((r["step"] for r in on if max(r["expert_load"]) < 1.3), None)
check(m_on < 1.3, "with the bias max/mean load %.3f over the last 50 steps (worst layer; worst step %.3f; first "
      "below 1.3 at step %s)" % (m_on, w_on, reached))
l0 = sum(r["loss"] for r in on[:10]) / 10
l1 = sum(r["loss"] for r in on[-10:]) / 10
check(l1 < l0 - 0.5, "the loss falls with the bias on: %.3f -> %.3f (mean of the first and last 10 steps)" % (l0, l1))
sys.exit(1 if fails else 0)
PYEOF
[ $? -eq 0 ] || fails=$((fails + 1))

# the bias is in the checkpoint and resuming continues it exactly
grep -q '"moe_bias": \[' "$T/ck/step_00000150/state.json" && echo "ok   state.json holds moe_bias" ||
    { echo "FAIL no moe_bias in state.json"; fails=$((fails + 1)); }
cp -r "$T/ck" "$T/r" && rm -rf "$T/r/step_00000300" && echo step_00000150 >"$T/r/latest"
expect_ok "resume at step 150" $LMC train $A --steps 300 --moe-bias-step 0.01 --resume "$T/r" --save "$T/r.st" \
    --log "$T/r.jsonl"
cmp -s "$T/on.st" "$T/r.st" && echo "ok   resumed at 150 == uninterrupted 300 (byte-exact weights)" ||
    { echo "FAIL the resumed run differs from the uninterrupted one"; fails=$((fails + 1)); }
cp -r "$T/ck" "$T/z" && rm -rf "$T/z/step_00000300" && echo step_00000150 >"$T/z/latest"
"$PY" - "$T/z/step_00000150/state.json" <<'PYEOF'
import sys, json
p = sys.argv[1]; s = json.load(open(p)); s["moe_bias"] = s["moe_bias"][:3]; json.dump(s, open(p, "w"))
PYEOF
expect_fail "a moe_bias of the wrong length" "state.json: field 'moe_bias' must be an array of 8 numbers" \
    $LMC train $A --steps 151 --resume "$T/z"
expect_fail "--moe-bias-step on a dense model" "--moe-bias-step 0.01 balances a mixture of experts, but this model is dense" \
    $LMC train $TINY --data "$T/train.bin" --steps 1 --quiet --moe-bias-step 0.01
sed 's/"scoring_func"/"moe_bias_step": 2, "scoring_func"/' "$T/moe.json" >"$T/bad.json"
expect_fail "moe_bias_step out of range" "moe_bias_step = 2 must be in \[0, 1\]" \
    $LMC train --model "$T/bad.json" $A --steps 1
finish
