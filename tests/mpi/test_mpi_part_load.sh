#!/usr/bin/env bash
# Under --tp, --pp and --ep every rank reads only its part of the model at
# start-up (its tensor slices, stage and experts; under ZeRO-3 its shards of
# those), from --init's weights, a --resume checkpoint (AdamW's m and v too)
# or a fresh init, never the whole model.
# Exact: what a rank loads is the model's part bit for bit (a checkpoint
# resumed with no steps saves its weights again, to the bit), and training
# from --init or --resume on a part-loading layout (ep 4 with ZeRO-3, tp 2 x
# pp 2) gives the weights and losses of one process running the same global
# batch within that process's own float noise (lib.sh's equivalent). A
# tp 2 x pp 2 job's --save into a folder past --max-shard-mb writes the
# sharded layout (the parts streamed to rank 0), which reads back as the
# same weights as its single file.
# Memory: a wide mixture of experts (16 experts, 201.5 MB of fp32 weights)
# under --ep 8 on 8 ranks: each rank's peak RSS over a step started from
# --init and from --resume stays below the whole model's bytes + its part's
# bytes (params_local), which reading the whole model exceeded before (it
# held the whole model, the part cut from it and the model's own weights at
# once: 424 MB from --init and 1205 MB from --resume, the whole m and v
# too, against 146 and 181 MB now on the development machine). Saving a
# checkpoint and the final weights from there: no rank above that bound but
# rank 0, which writes, by at most the largest unit of the model (before,
# rank 0 joined the whole weights, m and v: 784 MB against 287 now, the
# others 218 against 177).
# generate --tp 2 (and serve --tp, the same engine open) reads only its part
# too: on a Llama of 35.7 MB of fp32 weights each rank's peak RSS above a
# tiny model's under the same launch stays within 1.25 x (its part (its
# tensor slices, the norms whole) + the largest tensor (the reader maps one
# at a time)), and below one process's by more than half the model; its
# greedy tokens equal one process's; a truncated or missing file fails
# naming it. Before, a rank held the whole model, the part
# cut from it and the engine's own copy: 90.8 MB per rank against 77.1 for
# one process, 40.5 now (the tiny model's launch: 17.5). The same from a
# GGUF file (q8_0), where a rank decodes only the rows its part meets:
# its peak below one process's by more than half the model (83.5 MB per
# rank before, when the whole file was decoded and cut, against 93.9 for
# one process; 49.3 now), its tokens one process's, and train --init from
# it under --tp 2 loads the weights one process loads, to the bit. serve
# --tp 2 likewise: each rank's VmHWM after a completion 40.4 MB against
# 77.4 MB for one process.
. "$(dirname "$0")/lib.sh"
need_mpi

make_shard "$T/train.bin" 40000 64
cat >"$T/moe.json" <<EOF
{"model_type": "mixtral", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 32, "intermediate_size": 24, "max_position_embeddings": 32, "vocab_size": 64,
 "num_local_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1}
EOF
RUN="--seq 16 --data $T/train.bin --lr 3e-3 --warmup 2 --clip 0.5 --threads 1 --quiet"
LLAMA="--model llama-15m --layers 4 --dim 64 --heads 4 --kv-heads 2 --ffn 96 --vocab 64 --max-seq 32"

# the starting points: weights after 2 steps, and a checkpoint there
expect_ok "MoE weights for --init" $LMC train --model "$T/moe.json" $RUN --batch 4 --steps 2 --save "$T/moe.st"
expect_ok "a Llama checkpoint for --resume" $LMC train $LLAMA $RUN --batch 4 --steps 2 --out "$T/ck" --save-every 2

# exact: the part a rank reads is the model's, to the bit
expect_ok "ep 4, ZeRO-3 from --init, no steps" $MPIRUN -np 4 $LMC train $RUN --init "$T/moe.st" --batch 1 --steps 0 \
    --ep 4 --zero 3 --save "$T/moe-ep4.st"
check "ep 4, ZeRO-3: --init loads exactly" $CMP weights "$T/moe.st" "$T/moe-ep4.st" 0
expect_ok "tp 2 x pp 2 from --resume, no steps" $MPIRUN -np 4 $LMC train $RUN --resume "$T/ck" --batch 1 --grad-accum 4 \
    --steps 2 --tp 2 --pp 2 --save "$T/ck-tp2pp2.st"
check "tp 2 x pp 2: --resume loads exactly" $CMP weights "$T/ck/step_00000002/model.safetensors" "$T/ck-tp2pp2.st" 0
expect_ok "tp 2 x pp 2, --save into a sharded folder" $MPIRUN -np 4 $LMC train $RUN --resume "$T/ck" --batch 1 \
    --grad-accum 4 --steps 2 --tp 2 --pp 2 --save "$T/ck-sharded/" --max-shard-mb 0.05
n=$(ls "$T/ck-sharded" | grep -c '^model-.*-of-.*\.safetensors$')
[ "$n" -gt 1 ] && [ -f "$T/ck-sharded/model.safetensors.index.json" ] && echo "ok   the sharded folder: $n files and the index" ||
    { echo "FAIL the sharded folder: $(ls "$T/ck-sharded" | tr '\n' ' ')"; fails=$((fails + 1)); }
expect_ok "the sharded folder read back" $LMC train $RUN --init "$T/ck-sharded" --batch 4 --steps 0 --save "$T/ck-sh.st"
check "tp 2 x pp 2: the sharded folder = the one file" $CMP weights "$T/ck-tp2pp2.st" "$T/ck-sh.st" 0

# the trained result: one process's, within its own noise
equivalent "ep 4, ZeRO-3 from --init" "--init $T/moe.st $RUN --steps 4" 4 "--batch 1 --grad-accum 1 --ep 4 --zero 3"
equivalent "tp 2 x pp 2 from --resume" "--resume $T/ck $RUN --steps 5" 4 "--batch 1 --grad-accum 4 --tp 2 --pp 2"

# memory: a rank never holds the whole model, nor its m and v
d=$T/mem
mkdir -p "$d"
cat >"$T/peak.py" <<'PYEOF'
# peak.py OUT CMD...: runs CMD, then writes its peak RSS in MB (getrusage's
# ru_maxrss, as lmc_peak_rss reads it) to OUT.<MPI rank>
import os, resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open("%s.%s" % (sys.argv[1], os.environ.get("OMPI_COMM_WORLD_RANK", "0")), "w") as f:
    f.write("%.1f\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3))
sys.exit(rc)
PYEOF
cat >"$d/big.json" <<EOF
{"model_type": "mixtral", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_size": 128, "intermediate_size": 4096, "max_position_embeddings": 32, "vocab_size": 64,
 "num_local_experts": 16, "num_experts_per_tok": 2}
EOF
B="--seq 8 --data $T/train.bin --threads 1 --quiet --batch 1"
expect_ok "the wide MoE: 1 process, a checkpoint at step 1" $LMC train --model "$d/big.json" $B --grad-accum 8 \
    --steps 1 --out "$d/ck" --save-every 1 --save "$d/big.st"
expect_ok "ep 8 from --init, 1 step" $MPIRUN -np 8 $LMC train $B --init "$d/big.st" --steps 1 --ep 8 --log "$d/init.jsonl"
expect_ok "ep 8 from --resume, 1 step" $MPIRUN -np 8 $LMC train $B --resume "$d/ck" --steps 2 --ep 8 --log "$d/res.jsonl"
expect_ok "ep 8 from --resume, no steps" $MPIRUN -np 8 $LMC train $B --resume "$d/ck" --steps 1 --ep 8 --save "$d/at1.st"
check "ep 8: --resume loads exactly" $CMP weights "$d/big.st" "$d/at1.st" 0
$PY - "$(dirname "$0")/../oracle" "$d" <<'PYEOF' || fails=$((fails + 1))
import json, sys
sys.path.insert(0, sys.argv[1])
from lmc_util import st_read
d = sys.argv[2]
tensors, _ = st_read(d + "/big.st")
whole = 4 * sum(t.size for t in tensors.values()) / 1e6  # MB of fp32 weights
ok = True
for run in ("init", "res"):
    lines = [json.loads(x) for x in open("%s/%s.jsonl" % (d, run))]
    held, rss = lines[0]["run"]["params_local"], lines[-1]["rss_mb"]
    ok &= len(rss) == 8
    for r, (n, peak) in enumerate(zip(held, rss)):
        part = 4 * n / 1e6
        good = peak < whole + part
        ok &= good
        print("%s --%s rank %d: peak RSS %.1f MB < whole model %.1f MB + its part %.1f MB = %.1f MB (%s the whole "
              "model alone)" % ("ok  " if good else "FAIL", "init" if run == "init" else "resume", r, peak, whole,
                                part, whole + part, "below" if peak < whole else "above"))
sys.exit(0 if ok else 1)
PYEOF

# saving: the parts stream to rank 0 a unit of the whole model at a time
expect_ok "ep 8 from --resume, a checkpoint and the final weights" $MPIRUN -np 8 $PY "$T/peak.py" "$d/save" $LMC train \
    $B --resume "$d/ck" --steps 2 --ep 8 --out "$d/ck8" --save-every 2 --save "$d/at2.st" --log "$d/save.jsonl"
check "ep 8: the checkpoint's weights = the final weights" $CMP weights "$d/ck8/step_00000002/model.safetensors" \
    "$d/at2.st" 0
$PY - "$(dirname "$0")/../oracle" "$d" <<'PYEOF' || fails=$((fails + 1))
import json, re, sys
sys.path.insert(0, sys.argv[1])
from lmc_util import st_read
d = sys.argv[2]
tensors, _ = st_read(d + "/at2.st")
units = {}
for name, t in tensors.items():  # a layer's tensors are one unit, the rest go with the embeddings or the head
    m = re.match(r"model\.layers\.(\d+)\.", name)
    units[m[1] if m else name] = units.get(m[1] if m else name, 0) + 4 * t.size / 1e6
whole, unit = sum(units.values()), max(units.values())
held = [json.loads(x) for x in open(d + "/save.jsonl")][0]["run"]["params_local"]
ok = True
for r, n in enumerate(held):
    peak, part = float(open("%s/save.%d" % (d, r)).read()), 4 * n / 1e6
    limit = whole + part + (unit if r == 0 else 0)
    good = peak < limit
    ok &= good
    print("%s saving under ep 8, rank %d: peak RSS %.1f MB < whole model %.1f MB + its part %.1f MB%s = %.1f MB" %
          ("ok  " if good else "FAIL", r, peak, whole, part, " + the largest unit %.1f MB" % unit if r == 0 else "",
           limit))
sys.exit(0 if ok else 1)
PYEOF

# generate --tp 2: a rank reads only its part of the weights file
g=$T/gen
mkdir -p "$g"
GL="--model llama-15m --layers 2 --heads 8 --kv-heads 4 --vocab 2048 --max-seq 16 --seq 8 --batch 1 --steps 0"
GL="$GL --data $T/train.bin --threads 1 --quiet"
expect_ok "generate: a Llama of 35.7 MB" $LMC train $GL --dim 512 --ffn 2048 --save "$g/big.st"
expect_ok "generate: a tiny Llama (the launch's own memory)" $LMC train $GL --dim 32 --ffn 64 --save "$g/tiny.st"
G=(generate --prompt-ids "1 2 3" --max-tokens 8 --temperature 0 --quiet --ignore-eos --threads 1)
$PY "$T/peak.py" "$g/one" $LMC "${G[@]}" --model "$g/big.st" >"$g/one.txt" 2>&1 || fails=$((fails + 1))
$MPIRUN -np 2 $PY "$T/peak.py" "$g/tp2" $LMC "${G[@]}" --model "$g/big.st" --tp 2 >"$g/tp2.txt" 2>&1 ||
    fails=$((fails + 1))
$MPIRUN -np 2 $PY "$T/peak.py" "$g/base" $LMC "${G[@]}" --model "$g/tiny.st" --tp 2 >/dev/null 2>&1 ||
    fails=$((fails + 1))
[ -s "$g/one.txt" ] && cmp -s "$g/one.txt" "$g/tp2.txt" &&
    echo "ok   generate --tp 2 = one process: $(cat "$g/one.txt")" ||
    { echo "FAIL generate --tp 2: '$(cat "$g/tp2.txt")' vs '$(cat "$g/one.txt")'"; fails=$((fails + 1)); }
$PY - "$g" <<'PYEOF' || fails=$((fails + 1))
import json, struct, sys
g = sys.argv[1]
with open(g + "/big.st", "rb") as f:
    head = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
sizes = []  # (bytes, split over the tp group): every matrix is (the embedding by vocabulary rows), norms are whole
for name, t in head.items():
    if name != "__metadata__":
        n = 4
        for d in t["shape"]:
            n *= d
        sizes.append((n / 1e6, len(t["shape"]) > 1))
whole = sum(b for b, _ in sizes)
part = sum(b / 2 if split else b for b, split in sizes)
largest = max(b for b, _ in sizes)
peak = lambda run, r: float(open("%s/%s.%d" % (g, run, r)).read())
one, ok = peak("one", 0), True
for r in range(2):
    held = peak("tp2", r) - peak("base", r)
    good = held <= 1.25 * (part + largest)
    print("%s generate --tp 2 rank %d: peak RSS %.1f MB, %.1f above the tiny model's <= 1.25 x (its part %.1f MB + "
          "the largest tensor %.1f MB) = %.1f MB (the whole model: %.1f MB)" % ("ok  " if good else "FAIL", r,
          peak("tp2", r), held, part, largest, 1.25 * (part + largest), whole))
    ok &= good
    good = peak("tp2", r) < one - whole / 2
    print("%s generate --tp 2 rank %d: peak RSS %.1f MB < one process's %.1f MB - half the model %.1f MB = %.1f MB"
          % ("ok  " if good else "FAIL", r, peak("tp2", r), one, whole / 2, one - whole / 2))
    ok &= good
sys.exit(0 if ok else 1)
PYEOF
head -c 20000000 "$g/big.st" >"$g/cut.st"
expect_fail "generate --tp 2, a truncated file" "cut.st: tensor .*outside the" \
    $MPIRUN -np 2 $LMC "${G[@]}" --model "$g/cut.st" --tp 2
expect_fail "generate --tp 2, no file" "nothing.st: cannot open" \
    $MPIRUN -np 2 $LMC "${G[@]}" --model "$g/nothing.st" --tp 2

# a GGUF file (q8_0): a rank decodes only the rows its part meets
printf 'The cat sat on the mat. The dog sat on the log. Hello world, it is 12:30.\n%.0s' $(seq 50) >"$g/text.txt"
expect_ok "a tokenizer for the GGUF file" $LMC tokenizer train --vocab-size 300 --input "$g/text.txt" --out "$g/tok" \
    --quiet
expect_ok "the 35.7 MB Llama as GGUF q8_0" $LMC export --model "$g/big.st" --tokenizer "$g/tok" --type q8_0 \
    --out "$g/big.gguf"
$PY "$T/peak.py" "$g/gone" $LMC "${G[@]}" --model "$g/big.gguf" >"$g/gone.txt" 2>&1 ||
    fails=$((fails + 1))
$MPIRUN -np 2 $PY "$T/peak.py" "$g/gtp2" $LMC "${G[@]}" --model "$g/big.gguf" --tp 2 \
    >"$g/gtp2.txt" 2>&1 || fails=$((fails + 1))
[ -s "$g/gone.txt" ] && cmp -s "$g/gone.txt" "$g/gtp2.txt" &&
    echo "ok   generate --tp 2 from GGUF = one process: $(cat "$g/gone.txt")" ||
    { echo "FAIL generate --tp 2 from GGUF: '$(cat "$g/gtp2.txt")' vs '$(cat "$g/gone.txt")'"; fails=$((fails + 1)); }
$PY - "$g" <<'PYEOF' || fails=$((fails + 1))
import sys
g = sys.argv[1]
peak = lambda run, r: float(open("%s/%s.%d" % (g, run, r)).read())
whole, ok = 35.7, True  # MB of the model's fp32 weights, as the file decodes them
for r in range(2):
    good = peak("gtp2", r) < peak("gone", 0) - whole / 2
    print("%s generate --tp 2 from GGUF rank %d: peak RSS %.1f MB < one process's %.1f MB - half the model %.1f MB "
          "= %.1f MB" % ("ok  " if good else "FAIL", r, peak("gtp2", r), peak("gone", 0), whole / 2,
                         peak("gone", 0) - whole / 2))
    ok &= good
sys.exit(0 if ok else 1)
PYEOF
# serve --tp 2 (generate's engine open): each rank's peak RSS (VmHWM) after a
# completion below one process's by more than half the model (its answers
# equal one process's: test_mpi_serve_tp.sh)
serve_hwm() { # OUT RANKS CMD...: a serve until it listens, one completion, then the VmHWM (MB) of its process
    # (RANKS 0) or of each of its RANKS MPI ranks into OUT
    local out=$1 ranks=$2 log=$g/serve.log i port r p
    shift 2
    "$@" >/dev/null 2>"$log" &
    local pid=$!
    port=$(listen_port "$log" "$pid") && curl -s --max-time 120 -H 'Content-Type: application/json' \
        -d '{"model": "m", "prompt": "The cat", "max_tokens": 6, "temperature": 0}' \
        "http://127.0.0.1:$port/v1/completions" | $PY -c 'import json, sys; c = json.load(sys.stdin)["choices"][0]
print(c["finish_reason"], len(c["text"]))' >"$out.answer"
    for ((r = 0; r < (ranks ? ranks : 1); r++)); do
        p=$([ "$ranks" = 0 ] && echo "$pid" || rank_pid "$pid" "$r")
        awk '/VmHWM/ {print $2 / 1000}' "/proc/$p/status"
    done >"$out"
    kill $pid 2>/dev/null # SIGTERM: the server drains and exits; killed outright if it has not in 30 s
    for ((i = 0; i < 300; i++)); do
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
}
SV=(serve --model "$g/big.st" --tokenizer "$g/tok" --name m --port 0 --threads 1)
serve_hwm "$g/serve1" 0 $LMC "${SV[@]}"
serve_hwm "$g/serve2" 2 $MPIRUN -np 2 $LMC "${SV[@]}" --tp 2
[ "$(cat "$g/serve1.answer" 2>/dev/null)" = "length 0" ] && cmp -s "$g/serve1.answer" "$g/serve2.answer" &&
    echo "ok   serve and serve --tp 2 complete the request (6 tokens, none in the small tokenizer's vocabulary)" ||
    { echo "FAIL serve --tp 2: '$(cat "$g/serve2.answer" 2>/dev/null)' vs '$(cat "$g/serve1.answer" 2>/dev/null)'"
      fails=$((fails + 1)); }
$PY - "$g" <<'PYEOF' || fails=$((fails + 1))
import sys
g = sys.argv[1]
one = [float(x) for x in open(g + "/serve1").read().split()]
two = [float(x) for x in open(g + "/serve2").read().split()]
whole, ok = 35.7, len(one) == 1 and len(two) == 2
print("%s serve: %d process(es) of one, %d of --tp 2" % ("ok  " if ok else "FAIL", len(one), len(two)))
for r, peak in enumerate(two if ok else []):
    good = peak < one[0] - whole / 2
    print("%s serve --tp 2 rank process %d: peak RSS %.1f MB < one process's %.1f MB - half the model %.1f MB = %.1f MB"
          % ("ok  " if good else "FAIL", r, peak, one[0], whole / 2, one[0] - whole / 2))
    ok &= good
sys.exit(0 if ok else 1)
PYEOF

GI="--data $T/train.bin --seq 8 --batch 1 --steps 0 --threads 1 --quiet --init $g/big.gguf"
expect_ok "train --init GGUF, 1 process" $LMC train $GI --save "$g/gguf-one.st"
expect_ok "train --init GGUF, tp 2" $MPIRUN -np 2 $LMC train $GI --grad-accum 2 --tp 2 --save "$g/gguf-tp2.st"
check "tp 2: --init GGUF loads exactly" $CMP weights "$g/gguf-one.st" "$g/gguf-tp2.st" 0
finish
