#!/usr/bin/env bash
# The whole test suite: build, unit and conformance tests, the same under
# AddressSanitizer + UndefinedBehaviorSanitizer, PyTorch oracle tests,
# command-line bad-input tests, Node tests against reference packages
# (tokenizer, OpenAI client) and MPI tests. Exits non-zero if anything fails.
# Usage: bash scripts/test.sh [filter]   (filter: substring of test paths)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FILTER=${1:-}
JOBS=$(nproc)
export PY=${PY:-/usr/bin/python3}   # Debian's python3, where python3-torch lives
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TMPDIR=${TMPDIR:-/tmp}

failed=()
passed=0
run() { # name, command...
    local name=$1; shift
    if [ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]]; then return; fi
    local t0=$SECONDS log
    log=$(mktemp)
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1)); printf 'ok   %-50s %3ds\n' "$name" $((SECONDS - t0))
    else
        failed+=("$name"); printf 'FAIL %-50s %3ds\n' "$name" $((SECONDS - t0)); tail -n 40 "$log" | sed 's/^/     /'
    fi
    rm -f "$log"
}

# set-up on a fresh machine: Debian packages, then the Node packages the
# tests compare against (skipped when already there)
if [ -z "${LMC_SKIP_SETUP:-}" ]; then
    bash scripts/bootstrap.sh
    if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
        (cd tests/node && npm ci --no-audit --no-fund --silent)
    fi
fi

echo "== build"
make -j"$JOBS" all >/dev/null || { echo "build failed"; make all 2>&1 | tail -30; exit 1; }
ASAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
make -j"$JOBS" BUILD=build-asan OPT=-O1 SAN="$ASAN_FLAGS" NVCC= all >/dev/null ||
    { echo "sanitizer build failed"; exit 1; }

echo "== unit and conformance tests"
for t in build/tests/unit/test_* build/tests/conformance/test_*; do
    [ -x "$t" ] && [[ "$t" != *.d ]] && run "${t#build/}" "$t"
done
run "fuzz smoke" make -s -j"$JOBS" fuzz-smoke   # every parser's libFuzzer target, a fixed number of runs

echo "== unit tests under ASan+UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in build-asan/tests/unit/test_* build-asan/tests/conformance/test_*; do
    [ -x "$t" ] && [[ "$t" != *.d ]] && run "asan/${t#build-asan/}" env LMC_TEST_QUICK=1 "$t"
done

run "gpu emulation" bash tests/gpu/emu/run.sh quick
run "ascend mock" bash tests/ascend/run.sh quick   # npu backend on a strict CPU mock of CANN (conformance, oracle, hccl)

echo "== command-line tests (bad input runs under ASan+UBSan)"
for t in tests/cli/test_*.sh; do
    [ -f "$t" ] && run "$t" env LMC="$ROOT/build-asan/lmc" LMC_FAST="$ROOT/build/lmc" bash "$t"
done

echo "== PyTorch oracle tests"
for t in tests/oracle/test_*.py; do
    [ -f "$t" ] && run "$t" env LMC="$ROOT/build/lmc" "$PY" "$t"
done

echo "== Node tests (reference tokenizers, OpenAI client)"
if [ -d tests/node/node_modules ]; then
    for t in tests/node/test_*.mjs; do
        [ -f "$t" ] && run "$t" env LMC="$ROOT/build/lmc" node "$t"
    done
else
    echo "tests/node/node_modules missing: run (cd tests/node && npm ci) first"; failed+=("node-deps")
fi

echo "== MPI tests"
for t in tests/mpi/test_*.sh; do
    [ -f "$t" ] && run "$t" env LMC="$ROOT/build/lmc" bash "$t"
done

echo
echo "$passed passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ] || { printf '  failed: %s\n' "${failed[@]}"; exit 1; }
