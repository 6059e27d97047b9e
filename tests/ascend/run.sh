#!/usr/bin/env bash
# Runs the Ascend backend on the CPU mock of CANN (tests/ascend/mock, see
# mock.h), everything under AddressSanitizer + UBSan:
#   1. the mock's own strictness, each rule against a broken call
#      (test_mock: host pointers as device memory, a missing sync reading
#      stale data, a short workspace, an executor run twice, pageable
#      async copies, a GQA ratio, softmax statistics, the causal mask)
#   2. lmc devices: without CANN, npu is listed as unusable naming the
#      library and where it looked; with the mock, its devices
#   3. the conformance suite (every op of npu against the CPU reference)
#   4. the PyTorch oracle training test with --device npu (tests/oracle)
#   5. --dist hccl: a 2-rank data-parallel run equals one process
#      (tests/mpi lib.sh's equivalent), where MPI is built in
# No NPU and no CANN needed; what only hardware can show is in
# docs/ascend.md. Usage: bash tests/ascend/run.sh [quick]
# (quick: the conformance suite's smaller shapes; about 2-3 minutes on 2
# cores after scripts/test.sh's ASan build)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${ASCEND_BUILD:-build-ascend}
BUILD=${ASAN_BUILD:-build-asan}
PY=${PY:-/usr/bin/python3}
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
CFLAGS="-O1 -g -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers $SAN"
T0=$SECONDS
mkdir -p "$OUT/mock" "$OUT/nolib"

echo "== building (ASan): lmc, liblmc_npu.so, the conformance suite, the mock"
make -s -j2 BUILD="$BUILD" OPT=-O1 SAN="$SAN" NVCC= "$BUILD/lmc" "$BUILD/liblmc_npu.so" \
    "$BUILD/tests/conformance/test_backend_ops" >/dev/null
MPI_FLAGS=""
command -v mpicc >/dev/null && MPI_FLAGS="-DMOCK_HAVE_MPI $(mpicc --showme:compile) $(mpicc --showme:link)"
gcc $CFLAGS -fPIC -shared -o "$OUT/mock/libascend_mock.so" tests/ascend/mock/*.c $MPI_FLAGS -lm -lpthread
for l in libascendcl libnnopbase libopapi libhccl; do ln -sf libascend_mock.so "$OUT/mock/$l.so"; done
gcc $CFLAGS -Iinclude -Isrc -Itests -o "$OUT/test_mock" tests/ascend/test_mock.c \
    "$BUILD/npu/src/backend/ascend/acl_load.o" "$BUILD/liblmc.a" -ldl -lm -lpthread -fopenmp
echo "   built in $((SECONDS - T0))s"

export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
[ "${1:-}" = quick ] && export LMC_TEST_QUICK=1
fails=0
expect() { # needle, command...: the output must contain needle
    local needle=$1 out; shift
    out=$("$@" 2>&1) || true
    if grep -qF -- "$needle" <<<"$out"; then echo "ok   $(grep -F -- "$needle" <<<"$out" | head -1)"; else
        echo "FAIL: wanted '$needle' in: $out" | tail -5; fails=$((fails + 1)); fi
}

echo "== 1. the mock's strictness, each rule against a broken call"
# test_mock leaves its short calls' argument objects to the process's end
LMC_ASCEND_LIBDIR=$ROOT/$OUT/mock ASAN_OPTIONS=detect_leaks=0 "$OUT/test_mock" || fails=$((fails + 1))

echo "== 2. lmc devices without CANN, then with the mock"
LMC_ASCEND_LIBDIR=$ROOT/$OUT/nolib expect "libascendcl.so was not found in $ROOT/$OUT/nolib" "$BUILD/lmc" devices
LMC_ASCEND_LIBDIR=$ROOT/$OUT/nolib expect "libascendcl.so was not found" "$BUILD/lmc" train --device npu --steps 1
export LMC_ASCEND_LIBDIR=$ROOT/$OUT/mock
expect "npu      yes" "$BUILD/lmc" devices
MOCK_NPU_COUNT=0 expect "no Ascend device" "$BUILD/lmc" devices --device npu

echo "== 3. conformance suite, npu = the mock"
# replace_intrin=0: as tests/gpu/emu/run.sh (the suite uploads a few floats past a 1-float array)
out=$(ASAN_OPTIONS=detect_leaks=1:replace_intrin=0 "$BUILD/tests/conformance/test_backend_ops" 2>&1) || true
grep -E "npu|^FAIL|checks" <<<"$out" | grep -v "^note" || true
grep -q "^ok   npu:0" <<<"$out" && ! grep -q "^FAIL" <<<"$out" || { echo "FAIL: conformance on npu"; fails=$((fails + 1)); }

echo "== 4. PyTorch oracles (GPT-2, Llama: forward, every gradient, 10 AdamW steps) with --device npu"
for t in gpt2 llama; do
    if LMC="$ROOT/tests/ascend/lmc_npu.sh" LMC_REAL="$ROOT/$BUILD/lmc" "$PY" "tests/oracle/test_${t}_oracle.py" \
        >"$OUT/oracle_$t.log" 2>&1; then
        echo "ok   $t oracle on npu: $(tail -1 "$OUT/oracle_$t.log")"
    else
        echo "FAIL $t oracle on npu:"; grep -E "^FAIL|Error|error" "$OUT/oracle_$t.log" | head -20; fails=$((fails + 1))
    fi
done

echo "== 4b. training and generation (KV cache: kv_store, attention_decode, linear) on npu, greedy == cpu"
G=$(mktemp -d)
"$PY" - "$G/train.bin" <<'PYEOF'
import sys, numpy as np
n = 20000; toks = (np.arange(n) * 7 + np.arange(n) // 11) % 64
h = np.zeros(256, dtype=np.int32); h[0], h[1], h[2] = 20240520, 1, n
open(sys.argv[1], "wb").write(h.tobytes() + toks.astype(np.uint16).tobytes())
PYEOF
TINY="--model d6 --layers 2 --dim 32 --heads 2 --vocab 64 --max-seq 32 --batch 2 --seq 16"
if "$BUILD/lmc" train $TINY --data "$G/train.bin" --steps 4 --device npu --save "$G/m.st" --quiet &&
    gen_cpu=$("$BUILD/lmc" generate --model "$G/m.st" --prompt-ids "1 2 3" --temperature 0 --max-tokens 12 2>/dev/null) &&
    gen_npu=$("$BUILD/lmc" generate --model "$G/m.st" --prompt-ids "1 2 3" --temperature 0 --max-tokens 12 --device npu \
        2>/dev/null) && [ -n "$gen_npu" ] && [ "$gen_cpu" = "$gen_npu" ]; then
    echo "ok   trained on npu, greedy generation on npu == cpu: $gen_npu"
else
    echo "FAIL training or generation on npu (cpu: '${gen_cpu:-}', npu: '${gen_npu:-}')"; fails=$((fails + 1))
fi
rm -rf "$G"

if [ -n "$MPI_FLAGS" ]; then
    echo "== 5. --dist hccl: 2 ranks through the mock == 1 process"
    # detect_leaks=0: Open MPI's own allocations at exit are not lmc's
    ASAN_OPTIONS=detect_leaks=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PY="$PY" \
        LMC="$ROOT/$BUILD/lmc" bash tests/ascend/test_hccl.sh || fails=$((fails + 1))
else
    echo "== 5. --dist hccl: skipped (no mpicc: lmc is built without MPI)"
fi
echo "== Ascend mock: $fails failed in $((SECONDS - T0))s"
[ $fails -eq 0 ]
