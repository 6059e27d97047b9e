#!/usr/bin/env bash
# DeepSeek-V3's balancing bias in weights files and at inference. A toy whose
# router puts expert 0 in every token's top 2 of 4 (test_moe_balance.sh's
# skew, with a softmax router) trains 60 steps with --moe-bias-step: the
# saved weights hold model.layers.N.block_sparse_moe.gate.e_score_correction_bias
# ([4] fp32, equal to the checkpoint's state.json moe_bias); `lmc generate`
# greedy gives the tokens of a plain PyTorch Mixtral (reference_moe.py)
# routed WITH that bias, and on this toy routing without it gives other
# tokens (so the check can fail). Resume reads the checkpoint weights' bias
# (it wins over state.json's; a checkpoint without it, as older ones, uses
# state.json's), --init and a sharded --save carry it, a wrong shape, a
# missing layer and a non-finite value fail naming the tensor, and GGUF
# export refuses a nonzero bias (llama.cpp's llama architecture has none).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/moe_toy.sh"
ORACLE="$(dirname "$0")/../oracle"

make_shard "$T/train.bin" 40000 64
skew_toy_config "$T/moe.json" 300
S=${S:-30} H=${H:-15} BS=${BS:-0.01}
A="--batch 8 --seq 16 --data $T/train.bin --lr 3e-3 --warmup 10 --threads 1 --quiet"
expect_ok "an initial model" $LMC train --model "$T/moe.json" $A --steps 0 --save "$T/init/"
grep -q e_score_correction_bias "$T/init/model.safetensors" && { echo "FAIL a model without balancing wrote a bias"; exit 1; }
skew_router "$T/init" 32 2 || { echo "FAIL skewing the initial model"; exit 1; }

expect_ok "$S steps with --moe-bias-step $BS" $LMC train --init "$T/init" $A --steps $S --moe-bias-step $BS \
    --out "$T/ck" --save-every $H --keep 0 --save "$T/on/"

# the weights hold the bias, equal to state.json's; the oracle with it gives lmc's tokens, without it others
"$PY" - "$T" "$ORACLE" "$LMC" "$T/ck/step_$(printf %08d $S)" <<'PYEOF'
import sys, json, subprocess, numpy as np, torch
T, lmc, last = sys.argv[1], sys.argv[3], sys.argv[4]
sys.path.insert(0, sys.argv[2])
from lmc_util import st_read
import reference_moe as rm
fails = 0
def check(ok, msg):
    global fails
    print(("ok   " if ok else "FAIL ") + msg)
    fails += not ok
names = ["model.layers.%d.block_sparse_moe.gate.e_score_correction_bias" % l for l in range(2)]
t, _ = st_read(T + "/on/model.safetensors")
ck, _ = st_read(last + "/model.safetensors")
state = np.array(json.load(open(last + "/state.json"))["moe_bias"], dtype=np.float32).reshape(2, 4)
check(all(n in t and t[n].shape == (4,) and t[n].dtype == np.float32 for n in names),
      "--save holds %s ([4] F32)" % " and ".join(names))
bias = np.stack([t[n] for n in names])
check(np.array_equal(bias, state) and all(np.array_equal(ck[n], t[n]) for n in names),
      "the bias equals state.json's moe_bias and the checkpoint's weights' %s" % bias.tolist())
check(np.abs(bias).max() > 0.05, "the bias moved (largest |b| %.3f)" % np.abs(bias).max())
cfg = json.load(open(T + "/on/config.json"))
p = {k: torch.from_numpy(v) for k, v in t.items()}
nob = {k: v for k, v in p.items() if not k.endswith("e_score_correction_bias")}
def logprobs(params, ids, n):
    """log p(ids[i]) for the last n positions, from one full forward"""
    with torch.no_grad():
        logits, _, _ = rm.mixtral_forward(params, cfg, torch.tensor([ids[:-1]]))
    lp = torch.log_softmax(logits[0].double(), dim=-1)
    return [float(lp[i - 1, ids[i]]) for i in range(len(ids) - n, len(ids))]
def argmax_ok(params, ids, n):
    """each of the last n tokens is the argmax after the ones before it"""
    with torch.no_grad():
        logits, _, _ = rm.mixtral_forward(params, cfg, torch.tensor([ids[:-1]]))
    return all(int(logits[0, i - 1].argmax()) == ids[i] for i in range(len(ids) - n, len(ids)))
worst_with, worst_without = 0.0, 0.0
for prompt in ([5], [1, 2, 3], [7, 9, 11, 13], [40, 41, 3, 60, 2]):
    out = subprocess.run([lmc, "generate", "--model", T + "/on/", "--prompt-ids", " ".join(map(str, prompt)),
                          "--max-tokens", "12", "--temperature", "0", "--logprobs"], capture_output=True, text=True)
    rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    ids = prompt + [r["id"] for r in rows]
    got = np.array([r["logprob"] for r in rows])
    d_with = np.abs(got - logprobs(p, ids, 12)).max() if len(rows) == 12 else np.inf
    d_without = np.abs(got - logprobs(nob, ids, 12)).max() if len(rows) == 12 else 0
    worst_with, worst_without = max(worst_with, d_with), max(worst_without, d_without)
    check(len(rows) == 12 and argmax_ok(p, ids, 12) and d_with < 1e-4,
          "prompt %s: lmc generate's greedy tokens %s are PyTorch's argmax routed with the bias, their logprobs "
          "within %.1e (routed without it: %.1e)" % (prompt, ids[len(prompt):], d_with, d_without))
check(worst_without > 100 * max(worst_with, 1e-6), "routing without the bias moves the logprobs by %.1e, with it "
      "they agree to %.1e: the check can fail" % (worst_without, worst_with))
# the training forward (lmc dump) routes with it too
import reference as ref
toks = np.fromfile(T + "/train.bin", dtype=np.uint16, offset=1024)
x, _ = ref.batch(toks, 0, 2, 16)
subprocess.run([lmc, "dump", "--init", T + "/on/", "--data", T + "/train.bin", "--batch", "2", "--seq", "16",
                "--out", T + "/dump"], check=True, capture_output=True)
acts, _ = st_read(T + "/dump/acts.safetensors")
with torch.no_grad():
    d_with = np.abs(acts["logits"][..., :300] - rm.mixtral_forward(p, cfg, x)[0].numpy()).max()
    d_without = np.abs(acts["logits"][..., :300] - rm.mixtral_forward(nob, cfg, x)[0].numpy()).max()
check(d_with < 1e-4 and d_without > 100 * d_with, "lmc dump's logits = PyTorch's routed with the bias within %.1e "
      "(without it %.1e)" % (d_with, d_without))
sys.exit(1 if fails else 0)
PYEOF
[ $? -eq 0 ] || fails=$((fails + 1))
same_as_sample "generate == sample (the engine's full recompute) with the bias" "$T/on/" "3 1 4 1 5" 16

# resume: the checkpoint's weights' bias wins over state.json's; without it (an older checkpoint) state.json's
cp -r "$T/ck" "$T/w" && rm -rf "$T/w/step_$(printf %08d $S)" && echo step_$(printf %08d $H) >"$T/w/latest"
"$PY" - "$T/w/step_$(printf %08d $H)/state.json" <<'PYEOF'
import sys, json
p = sys.argv[1]; s = json.load(open(p)); s["moe_bias"] = [0.5, -0.5, 0.3, -0.3] * 2; json.dump(s, open(p, "w"))
PYEOF
expect_ok "resume at $H, state.json's moe_bias overwritten" $LMC train $A --steps $S --moe-bias-step $BS \
    --resume "$T/w" --save "$T/r1.st"
cmp -s "$T/on/model.safetensors" "$T/r1.st" && echo "ok   the weights' bias wins: == the uninterrupted run" ||
    { echo "FAIL resuming with state.json's bias overwritten differs"; fails=$((fails + 1)); }
cp -r "$T/ck" "$T/o" && rm -rf "$T/o/step_$(printf %08d $S)" && echo step_$(printf %08d $H) >"$T/o/latest"
"$PY" - "$T/o/step_$(printf %08d $H)/model.safetensors" "$ORACLE" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[2])
from lmc_util import st_read, st_write
t, meta = st_read(sys.argv[1])
st_write(sys.argv[1], {k: v for k, v in t.items() if not k.endswith("e_score_correction_bias")}, meta)
PYEOF
expect_ok "resume an older checkpoint (bias only in state.json)" $LMC train $A --steps $S --moe-bias-step $BS \
    --resume "$T/o" --save "$T/r2.st"
cmp -s "$T/on/model.safetensors" "$T/r2.st" && echo "ok   state.json's bias: == the uninterrupted run" ||
    { echo "FAIL resuming an older checkpoint differs"; fails=$((fails + 1)); }

# --init and a sharded --save carry it (the index names it, in its layer's file)
expect_ok "--init from it, sharded --save" $LMC train --init "$T/on/" $A --steps 0 --moe-bias-step 0 \
    --save "$T/sh/" --max-shard-mb 0.01
grep -q '"model.layers.1.block_sparse_moe.gate.e_score_correction_bias": "model-0000' \
    "$T/sh/model.safetensors.index.json" && echo "ok   the index names the bias" ||
    { echo "FAIL the sharded index lacks the bias"; fails=$((fails + 1)); }
want=$($LMC generate --model "$T/on/" --prompt-ids "7 9 11 13" --max-tokens 12 --temperature 0 --quiet 2>&1)
got=$($LMC generate --model "$T/sh/" --prompt-ids "7 9 11 13" --max-tokens 12 --temperature 0 --quiet 2>&1)
[ "$got" = "$want" ] && echo "ok   the sharded copy generates the same tokens ($got)" ||
    { echo "FAIL sharded copy: $got vs $want"; fails=$((fails + 1)); }

# bad input names the file, the tensor and what is wrong
bad() { # bad NAME EDIT PATTERN: a copy of on/ edited by the python expression EDIT (on dict t) must fail
    mkdir -p "$T/bad" && cp "$T/on/config.json" "$T/bad/"
    "$PY" - "$T/on/model.safetensors" "$T/bad/model.safetensors" "$ORACLE" "$2" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, sys.argv[3])
from lmc_util import st_read, st_write
t, meta = st_read(sys.argv[1])
b = "model.layers.%d.block_sparse_moe.gate.e_score_correction_bias"
exec(sys.argv[4])
st_write(sys.argv[2], t, meta)
PYEOF
    expect_fail "$1" "$3" $LMC generate --model "$T/bad/" --prompt-ids "1 2" --max-tokens 2 --quiet
}
bad "a bias of shape (3)" 't[b % 1] = t[b % 1][:3]' \
    "bad/+model.safetensors: tensor 'model.layers.1.block_sparse_moe.gate.e_score_correction_bias' has shape \(3\), the model needs \(4\)"
bad "a bias of shape (2, 2)" 't[b % 0] = t[b % 0].reshape(2, 2)' \
    "tensor 'model.layers.0.block_sparse_moe.gate.e_score_correction_bias' has shape \(2, 2\), the model needs \(4\)"
bad "one layer's bias missing" 'del t[b % 0]' \
    "bad/+model.safetensors: missing tensor 'model.layers.0.block_sparse_moe.gate.e_score_correction_bias'"
bad "a non-finite bias" 't[b % 1][2] = np.inf' \
    "tensor 'model.layers.1.block_sparse_moe.gate.e_score_correction_bias' holds a non-finite value at element 2"
bad "a bias on a layer without experts" 't["model.layers.2.block_sparse_moe.gate.e_score_correction_bias"] = t[b % 0]' \
    "unexpected tensor 'model.layers.2.block_sparse_moe.gate.e_score_correction_bias'"

# GGUF: llama.cpp's llama architecture routes without a bias; a nonzero one is refused by name
for i in $(seq 1 100); do echo "the cat sat on the mat $i times"; done >"$T/text.txt"
expect_ok "a 300-token tokenizer" $LMC tokenizer train --vocab-size 300 --input "$T/text.txt" --out "$T/tok"
sed 's/, "scoring_func": "sigmoid"//' "$T/moe.json" >"$T/mixtral.json"
expect_ok "a Mixtral (softmax router)" $LMC train --model "$T/mixtral.json" $A --steps 0 --save "$T/mix0/"
expect_ok "3 steps with --moe-bias-step" $LMC train --init "$T/mix0/" $A --steps 3 --moe-bias-step $BS --save "$T/mix/"
expect_fail "export with a nonzero bias refused" \
    "tensor 'model.layers.0.block_sparse_moe.gate.e_score_correction_bias' \(DeepSeek-V3's balancing bias\) is not zero.*llama.cpp's llama architecture routes without one \(no blk.0.exp_probs_b.bias\)" \
    $LMC export --model "$T/mix/" --out "$T/mix.gguf" --tokenizer "$T/tok"
expect_ok "export of the model before balancing (no bias)" $LMC export --model "$T/mix0/" --out "$T/mix0.gguf" \
    --tokenizer "$T/tok"
finish
