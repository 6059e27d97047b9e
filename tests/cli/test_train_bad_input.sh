#!/usr/bin/env bash
# Bad input to lmc train / sample / dump: each gets a clear message naming
# the file, field or value, a non-zero exit, and no crash (this runs under
# AddressSanitizer + UBSan).
. "$(dirname "$0")/lib.sh"

make_shard "$T/ok.bin" 5000 64
expect_ok "tiny model saved" $LMC train $TINY --data "$T/ok.bin" --steps 0 --save "$T/m.safetensors" --quiet

# shards
make_shard "$T/magic.bin" 100 64 12345
expect_fail "wrong shard magic" "magic.bin: header magic is 12345, expected 20240520" \
    $LMC train $TINY --data "$T/magic.bin" --steps 1
make_shard "$T/version.bin" 100 64 20240520 7
expect_fail "wrong shard version" "version.bin: header version is 7" $LMC train $TINY --data "$T/version.bin" --steps 1
make_shard "$T/trunc.bin" 1000 64
truncate -s 1500 "$T/trunc.bin"
expect_fail "truncated shard" "trunc.bin: header says 1000 tokens .*truncated" $LMC train $TINY --data "$T/trunc.bin" --steps 1
make_shard "$T/trail.bin" 1000 64 20240520 1 3
expect_fail "trailing bytes in shard" "trail.bin: .*trailing bytes" $LMC train $TINY --data "$T/trail.bin" --steps 1
head -c 100 "$T/ok.bin" > "$T/short.bin"
expect_fail "shard shorter than its header" "short.bin: truncated: 100 bytes" $LMC train $TINY --data "$T/short.bin" --steps 1
make_shard "$T/bigid.bin" 5000 1000
expect_fail "token id >= vocab" "bigid.bin: token [0-9]+ has id [0-9]+, outside the model's vocabulary \[0, 64\)" \
    $LMC train $TINY --data "$T/bigid.bin" --steps 1
expect_fail "missing data file" "nope.bin: no such file" $LMC train $TINY --data "$T/nope.bin" --steps 1
make_shard "$T/tiny.bin" 10 64
expect_fail "too few tokens for one sequence" "too few for one sequence" $LMC train $TINY --data "$T/tiny.bin" --seq 16 --steps 1

# sequence length and flags
expect_fail "T > max sequence" "--seq 64 must be in \[1, 32\]" $LMC train $TINY --data "$T/ok.bin" --seq 64 --steps 1
expect_fail "non-numeric flag" "--steps: 'abc' is not an integer" $LMC train $TINY --data "$T/ok.bin" --steps abc
expect_fail "negative lr" "--lr: -1 is out of range" $LMC train $TINY --data "$T/ok.bin" --lr -1
expect_fail "unknown flag" "unknown flag '--bogus'" $LMC train $TINY --data "$T/ok.bin" --bogus 3
expect_fail "flag without value" "--batch needs a value" $LMC train $TINY --data "$T/ok.bin" --batch
expect_fail "bad schedule" "--schedule: 'sine' is not cosine" $LMC train $TINY --data "$T/ok.bin" --schedule sine
expect_fail "bad precision" "--precision: 'fp8'" $LMC train $TINY --data "$T/ok.bin" --precision fp8
expect_fail "unknown preset" "unknown preset 'd7'" $LMC train --model d7 --data "$T/ok.bin"
expect_fail "no model" "give --model PRESET" $LMC train --data "$T/ok.bin"
expect_fail "impossible heads" "dim = 32 must be a positive multiple of the number of heads" \
    $LMC train $TINY --heads 3 --data "$T/ok.bin"
expect_fail "unknown device" "--device: unknown device 'tpu'" $LMC train $TINY --data "$T/ok.bin" --device tpu
expect_fail "resume from nothing" "no checkpoint there" $LMC train --resume "$T" --data "$T/ok.bin"

# safetensors
cp "$T/m.safetensors" "$T/trunc.safetensors"
truncate -s 5000 "$T/trunc.safetensors"
expect_fail "truncated safetensors" "trunc.safetensors: tensor '.*': data_offsets .* outside" \
    $LMC train --init "$T/trunc.safetensors" --data "$T/ok.bin" --steps 1
head -c 6 "$T/m.safetensors" > "$T/tiny.safetensors"
expect_fail "safetensors shorter than its length field" "tiny.safetensors: truncated: 6 bytes" \
    $LMC train --init "$T/tiny.safetensors" --data "$T/ok.bin"
printf '\xff\xff\xff\xff\x00\x00\x00\x00{}' > "$T/hugehdr.safetensors"
expect_fail "absurd header length" "hugehdr.safetensors: header length 4294967295 exceeds" \
    $LMC train --init "$T/hugehdr.safetensors" --data "$T/ok.bin"
"$PY" - "$T" <<'PYEOF'
import sys, struct, json
d = sys.argv[1]
def write(name, header, body=b""):
    h = json.dumps(header).encode()
    open(d + "/" + name, "wb").write(struct.pack("<Q", len(h)) + h + body)
write("garbage.safetensors", {}, b"")
open(d + "/garbage.safetensors", "wb").write(struct.pack("<Q", 5) + b"{nope")
write("dtype.safetensors", {"transformer.wte.weight": {"dtype": "Q8", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
write("count.safetensors", {"transformer.wte.weight": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8)
PYEOF
expect_fail "corrupt safetensors header" "garbage.safetensors: malformed JSON" $LMC train --init "$T/garbage.safetensors" --data "$T/ok.bin"
expect_fail "unknown dtype" "dtype.safetensors: tensor 'transformer.wte.weight': field 'dtype'" \
    $LMC train --init "$T/dtype.safetensors" --data "$T/ok.bin"
expect_fail "byte count vs shape" "count.safetensors: tensor 'transformer.wte.weight': 8 data bytes do not match" \
    $LMC train --init "$T/count.safetensors" --data "$T/ok.bin"
"$PY" - "$T" <<'PYEOF'
import sys, struct, json, numpy as np
sys.path.insert(0, sys.argv[0])
d = sys.argv[1]
data = open(d + "/m.safetensors", "rb").read()
n = struct.unpack("<Q", data[:8])[0]
hdr = json.loads(data[8:8 + n])
body = bytearray(data[8 + n:])
# a wrong shape: relabel wpe as (16, 64) keeping the bytes
h2 = dict(hdr); w = dict(h2["transformer.wpe.weight"]); w["shape"] = [16, 64]; h2["transformer.wpe.weight"] = w
hb = json.dumps(h2).encode()
open(d + "/shape.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + bytes(body))
# a missing tensor
h3 = {k: v for k, v in hdr.items() if k != "transformer.h.1.ln_2.bias"}
hb = json.dumps(h3).encode()
open(d + "/missing.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + bytes(body))
# a NaN inside a tensor
b0 = hdr["transformer.ln_f.weight"]["data_offsets"][0]
body[b0:b0 + 4] = np.array([np.nan], dtype=np.float32).tobytes()
hb = json.dumps(hdr).encode()
open(d + "/nan.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + bytes(body))
PYEOF
expect_fail "wrong tensor shape" "shape.safetensors: tensor 'transformer.wpe.weight' has shape \(16, 64\), the model needs \(32, 32\)" \
    $LMC train --init "$T/shape.safetensors" --data "$T/ok.bin"
expect_fail "missing tensor" "missing.safetensors: missing tensor 'transformer.h.1.ln_2.bias'" \
    $LMC train --init "$T/missing.safetensors" --data "$T/ok.bin"
expect_fail "non-finite weight" "nan.safetensors: tensor 'transformer.ln_f.weight' holds a non-finite value" \
    $LMC train --init "$T/nan.safetensors" --data "$T/ok.bin"
expect_fail "--init with overrides" "override a --model preset" $LMC train --init "$T/m.safetensors" --layers 3 --data "$T/ok.bin"
expect_fail "missing weights file" "nothere.safetensors: cannot open" $LMC train --init "$T/nothere.safetensors" --data "$T/ok.bin"
expect_fail "--zero 3 in one process" "--zero 3 shards the parameters over the ranks of a distributed launch.*mpirun" \
    $LMC train $TINY --data "$T/ok.bin" --steps 1 --zero 3 --dist single
expect_fail "unknown --zero stage" "--zero.*4" $LMC train $TINY --data "$T/ok.bin" --steps 1 --zero 4
expect_fail "unknown --recompute" "--recompute: 'some' is not none, selective or full" \
    $LMC train $TINY --data "$T/ok.bin" --steps 1 --recompute some
# a sharded folder whose index names a file that is not there
$LMC_FAST train $TINY --data "$T/ok.bin" --steps 1 --quiet --save "$T/sharded/" >/dev/null 2>&1
"$PY" - "$T/sharded" <<'PYEOF'
import json, os, struct, sys
d = sys.argv[1]
# the one file becomes the first of two; the index sends ln_f.weight to the second
os.rename(d + "/model.safetensors", d + "/model-00001-of-00002.safetensors")
f = open(d + "/model-00001-of-00002.safetensors", "rb")
hdr = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
wm = {k: "model-0000%d-of-00002.safetensors" % (1 + (k == "transformer.ln_f.weight")) for k in hdr if k != "__metadata__"}
json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, open(d + "/model.safetensors.index.json", "w"))
PYEOF
expect_fail "sharded index naming a missing file" \
    "model.safetensors.index.json.*transformer.ln_f.weight.*model-00002-of-00002.safetensors" \
    $LMC train --init "$T/sharded" --data "$T/ok.bin" --steps 1
# a device error inside an op (faked: the op's scratch allocation fails)
# stops training at the end of that step, naming the backend and the op
expect_fail "a backend op failing during a step" "cpu: matmul: cannot allocate .* \(LMC_TEST_FAIL_OP\)" \
    env LMC_TEST_FAIL_OP=matmul $LMC train $TINY --data "$T/ok.bin" --steps 2
expect_ok "a model to generate from" $LMC train $TINY --data "$T/ok.bin" --steps 1 --save "$T/gen.st"
expect_fail "a backend op failing during decoding" "cpu: attention_decode: cannot allocate" \
    env LMC_TEST_FAIL_OP=attention_decode $LMC generate --model "$T/gen.st" --prompt-ids "1 2" --max-tokens 3
finish
