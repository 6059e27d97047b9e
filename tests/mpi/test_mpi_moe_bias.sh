#!/usr/bin/env bash
# DeepSeek-V3's balancing bias in the weights files that many ranks write:
# ZeRO-3's per-rank checkpoint shards and sharded --save, and --ep 2 with
# ZeRO-2, each hold every MoE layer's e_score_correction_bias (the index
# naming it), equal to one process's on the same global batch (the bias
# moves by integer loads summed over the ranks: exactly equal), and lmc
# generate reads it from the per-rank checkpoint (the greedy tokens of the
# one-process weights).
. "$(dirname "$0")/lib.sh"
need_mpi
. "$(dirname "$0")/../cli/moe_toy.sh" # skew_toy_config, skew_router

make_shard "$T/train.bin" 20000 64
skew_toy_config "$T/moe.json" 64
A="--batch 4 --seq 16 --data $T/train.bin --lr 3e-3 --warmup 2 --threads 1 --quiet --moe-bias-step 0.01"
expect_ok "an initial model" $LMC train --model "$T/moe.json" $A --steps 0 --save "$T/init/"
skew_router "$T/init" 32 2 || { echo "FAIL skewing the initial model"; exit 1; }
expect_ok "1 process, batch 8" $LMC train --init "$T/init/" $A --batch 8 --steps 6 --save "$T/one/"
expect_ok "2 ranks, ZeRO-3" $MPIRUN -np 2 $LMC train --init "$T/init/" $A --steps 6 --zero 3 --out "$T/z3" \
    --save-every 6 --save "$T/z3save/"
expect_ok "2 ranks, --ep 2, ZeRO-2" $MPIRUN -np 2 $LMC train --init "$T/init/" $A --steps 6 --zero 2 --ep 2 \
    --save "$T/ep.st"
"$PY" - "$T" "$(dirname "$0")/../oracle" <<'PYEOF'
import sys, glob, json
sys.path.insert(0, sys.argv[2])
from lmc_util import st_read
T = sys.argv[1]
fails = 0
def biases(paths):
    out = {}
    for p in paths:
        out.update({k: v for k, v in st_read(p)[0].items() if k.endswith("e_score_correction_bias")})
    return out
one = biases([T + "/one/model.safetensors"])
ok = len(one) == 2 and max(abs(v).max() for v in one.values()) > 0
print(("ok   " if ok else "FAIL ") + "one process's weights hold 2 layers' biases, moved: %s" %
      {k.split(".")[2]: v.tolist() for k, v in one.items()})
fails += not ok
for name, d in (("ZeRO-3 checkpoint", T + "/z3/step_00000006"), ("ZeRO-3 sharded --save", T + "/z3save")):
    b = biases(glob.glob(d + "/model-*.safetensors"))
    index = json.load(open(d + "/model.safetensors.index.json"))["weight_map"]
    ok = sorted(b) == sorted(one) and all((b[k] == one[k]).all() for k in one) and all(k in index for k in one)
    print(("ok   " if ok else "FAIL ") + "%s: the biases (named in the index) equal one process's" % name)
    fails += not ok
b = biases([T + "/ep.st"])
ok = sorted(b) == sorted(one) and all((b[k] == one[k]).all() for k in one)
print(("ok   " if ok else "FAIL ") + "--ep 2 with ZeRO-2: the biases equal one process's")
fails += not ok
sys.exit(1 if fails else 0)
PYEOF
[ $? -eq 0 ] || fails=$((fails + 1))
want=$($LMC generate --model "$T/one/" --prompt-ids "7 9 11 13" --max-tokens 12 --temperature 0 --quiet 2>&1)
got=$($LMC generate --model "$T/z3/step_00000006" --prompt-ids "7 9 11 13" --max-tokens 12 --temperature 0 --quiet 2>&1)
[ -n "$want" ] && [ "$got" = "$want" ] && echo "ok   generate from the ZeRO-3 checkpoint = from one process's weights ($got)" ||
    { echo "FAIL generate from the ZeRO-3 checkpoint: '$got' vs '$want'"; fails=$((fails + 1)); }
finish
