#!/usr/bin/env bash
# The hardware check for the Ascend backend and the HCCL communicator, on
# an Atlas 800T A2 (910B) host with CANN installed (source
# /usr/local/Ascend/ascend-toolkit/set_env.sh first, which sets
# ASCEND_TOOLKIT_HOME): one script, every step time-boxed, the whole run
# within BUDGET seconds (900 by default). See docs/ascend.md.
#   0. versions: CANN, the driver (npu-smi), the SoC lmc sees
#   1. build (make -j) lmc, liblmc_npu.so, the conformance suite
#   2. the conformance suite: every op of npu:0 against the CPU reference
#   3. the PyTorch oracles (GPT-2, Llama) with --device npu
#   4. --dist hccl: 2 ranks == 1 process (tests/ascend/test_hccl.sh), when
#      mpirun is there and the host has 2 NPUs
#   5. a d12 training benchmark on synthetic tokens: tokens/s, MFU against
#      the 910B bf16 peak (share/chips.json), peak HBM (npu-smi samples)
# Usage: bash tests/ascend/run_npu.sh [outdir]   (logs and summary.txt there)
# Exit status: 1 if a correctness step (2-4) failed, 2 if no usable NPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:-${OUT:-/tmp/lmc-npu}}
BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc)}
PY=${PY:-/usr/bin/python3}
BUDGET=${BUDGET:-900}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
T0=$SECONDS
fail=0
note() { echo "$*" | tee -a "$SUMMARY"; }
step() { # name, timeout seconds, command...
    local name=$1 limit=$2; shift 2
    local t=$SECONDS left=$((BUDGET - (SECONDS - T0)))
    [ $left -lt 15 ] && { note "$(printf '%-12s skipped: out of time' "$name")"; return 124; }
    [ $limit -gt $left ] && limit=$left
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 15 "$OUT/$name.log"
    note "$(printf '%-12s rc=%-3d %4ds' "$name" "$rc" $((SECONDS - t)))"
    return $rc
}

note "lmc NPU check: $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null)"
note "CANN: ${ASCEND_TOOLKIT_HOME:-ASCEND_TOOLKIT_HOME not set} $(cat "${ASCEND_TOOLKIT_HOME:-/nonexistent}"/version.cfg 2>/dev/null | head -2 | tr '\n' ' ')"
npu-smi info 2>&1 | head -20 | tee -a "$SUMMARY"

step build 400 make -j"$JOBS" BUILD="$BUILD" "$BUILD/lmc" "$BUILD/liblmc_npu.so" \
    "$BUILD/tests/conformance/test_backend_ops" || { note "build failed: see $OUT/build.log"; exit 1; }
"$BUILD/lmc" devices 2>&1 | tee -a "$SUMMARY"
if ! "$BUILD/lmc" devices --device npu >>"$SUMMARY" 2>&1; then
    note "NO USABLE NPU: $("$BUILD/lmc" devices --device npu 2>&1 | tail -1)"
    exit 2
fi

step conformance 300 "$BUILD/tests/conformance/test_backend_ops" || fail=1
grep -E "npu|^FAIL|checks," "$OUT/conformance.log" | head -30 >>"$SUMMARY"
for t in gpt2 llama; do
    step "oracle_$t" 200 env LMC="$ROOT/tests/ascend/lmc_npu.sh" LMC_REAL="$ROOT/$BUILD/lmc" "$PY" \
        "tests/oracle/test_${t}_oracle.py" || fail=1
    grep -E "^FAIL|failures" "$OUT/oracle_$t.log" >>"$SUMMARY"
done
if command -v mpirun >/dev/null && [ "$(npu-smi info -l 2>/dev/null | grep -ci 'npu id')" -ge 2 ]; then
    step hccl 300 env LMC="$ROOT/$BUILD/lmc" PY="$PY" bash tests/ascend/test_hccl.sh || fail=1
    grep -E "^FAIL|failures" "$OUT/hccl.log" >>"$SUMMARY"
else
    note "hccl        skipped (no mpirun, or fewer than 2 NPUs)"
fi

if [ $((BUDGET - (SECONDS - T0))) -gt 60 ]; then
    "$PY" - "$OUT/train_000.bin" <<'PYEOF'
import sys, numpy as np
n = 20 << 20
toks = np.random.default_rng(1).integers(0, 50257, size=n, dtype=np.uint16)
h = np.zeros(256, dtype=np.int32); h[0], h[1], h[2] = 20240520, 1, n
open(sys.argv[1], "wb").write(h.tobytes() + toks.tobytes())
PYEOF
    (while sleep 0.5; do npu-smi info 2>/dev/null | grep -oE '[0-9]+ */ *[0-9]+ *\|?$' | head -1; done >"$OUT/mem.log") &
    mem_pid=$!
    step train 300 "$BUILD/lmc" train --device npu:0 --model d12 --data "$OUT/train_000.bin" --batch 16 --seq 1024 \
        --grad-accum 4 --precision bf16 --steps 20 --log "$OUT/train.jsonl"
    kill $mem_pid 2>/dev/null
    tail -n 3 "$OUT/train.jsonl" 2>/dev/null | tee -a "$SUMMARY"
    tail -n 10 "$OUT/train.jsonl" 2>/dev/null | sed -n 's/.*"tokens_per_s":\([0-9.e+-]*\).*"mfu":\([0-9.e+-]*\).*/\1 \2/p' |
        awk '{t += $1; m += $2; n++} END {if (n) printf "train d12 bf16 B16 T1024 x4: %.0f tokens/s, MFU %.1f%% (mean of last %d steps)\n", t / n, 100 * m / n, n}' |
        tee -a "$SUMMARY"
    note "peak HBM: $(awk -F/ '{gsub(/[^0-9]/, "", $1); if ($1 > m) m = $1} END {print m}' "$OUT/mem.log" 2>/dev/null) MB used (npu-smi samples, HBM-Usage column; check the raw $OUT/mem.log)"
else
    note "training benchmark skipped: out of time"
fi
note "total $((SECONDS - T0))s; correctness $([ $fail = 0 ] && echo PASSED || echo FAILED)"
echo "summary: $SUMMARY"
exit $fail
