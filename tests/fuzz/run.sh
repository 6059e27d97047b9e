#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz/ (built by `make fuzz`).
#
#   bash tests/fuzz/run.sh SECONDS [name...]
#       each target for SECONDS seconds, growing its corpus in
#       $FUZZ_BUILD/corpus/<name> (kept between runs);
#   bash tests/fuzz/run.sh --smoke [name...]
#       each target FUZZ_SMOKE_RUNS times (default 4000, http 1000) with a fixed
#       random seed, from its seeds alone (CI, via `make fuzz-smoke`).
#
# Names: json config safetensors shards tokenizer serve weights_index gguf
# report hostfile checkpoint plan_runs plan_inputs gguf_range calib http (all
# when none is given). Each writes its seeds (lmc's own writers,
# LMC_FUZZ_SEEDS) and uses tests/fuzz/<name>.dict (gguf_range: gguf.dict).
# A crash, leak, sanitizer report or broken property stops that target,
# keeps the input in $FUZZ_BUILD/artifacts/ and makes the script exit 1. At
# the end a table: executions, seconds, executions per second, libFuzzer's
# coverage counters (cov: edges, ft: features) and corpus size; logs in
# $FUZZ_BUILD/logs/.
set -uo pipefail
cd "$(dirname "$0")/../.."
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
ALL="json config safetensors shards tokenizer serve weights_index gguf report hostfile checkpoint plan_runs plan_inputs
     gguf_range calib http"

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
mode=$1; shift
case "$mode" in
--smoke) ;;
*[!0-9]* | "") usage ;;
esac
names=${*:-$ALL}

if [ -z "${FUZZ_BUILT:-}" ]; then
    make -s -j"$(nproc)" FUZZ_BUILD="$FUZZ_BUILD" fuzz >/dev/null || { echo "fuzz build failed"; exit 1; }
fi

max_len() {
    case $1 in
    shards | tokenizer) echo 8192 ;;
    weights_index) echo 16384 ;;
    gguf | gguf_range) echo 32768 ;;
    plan_runs | plan_inputs) echo 32768 ;;
    *) echo 4096 ;;
    esac
}

# http waits for each incomplete request's answer (20 ms) and then asks
# /health: 1000 runs are about as long as the others' 4000.
smoke_runs() {
    case $1 in
    http) echo "${FUZZ_SMOKE_RUNS:-1000}" ;;
    *) echo "${FUZZ_SMOKE_RUNS:-4000}" ;;
    esac
}

mkdir -p "$FUZZ_BUILD/logs" "$FUZZ_BUILD/artifacts"
# One thread: the engine of the http target is the only OpenMP user.
export OMP_NUM_THREADS=1
# A 16 MB quarantine (ASan's default is 256 MB) still holds the frees of
# thousands of inputs, so a use after free within one input is caught; the
# default cycles fresh pages through every allocation, and page faults cost
# more than the parsers here (about 2x fewer executions per second).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
rows=()
for name in $names; do
    bin=$FUZZ_BUILD/fuzz_$name
    [ -x "$bin" ] || { echo "no $bin (unknown target '$name'?)"; failed+=("$name"); continue; }
    if [ "$mode" = --smoke ]; then
        corpus=$(mktemp -d "${TMPDIR:-/tmp}/lmc_fuzz_smoke_$name.XXXXXX")
        limit=(-runs="$(smoke_runs "$name")" -seed=1)
    else
        corpus=$FUZZ_BUILD/corpus/$name
        limit=(-max_total_time="$mode")
    fi
    mkdir -p "$corpus"
    log=$FUZZ_BUILD/logs/$name.log
    t0=$(date +%s.%N)
    if LMC_FUZZ_SEEDS=$corpus "$bin" -runs=0 "$corpus" >"$log" 2>&1 &&
        "$bin" "${limit[@]}" -max_len="$(max_len "$name")" -dict="tests/fuzz/${name%_range}.dict" -timeout=20 \
            -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_BUILD/artifacts/$name-" \
            "$corpus" >>"$log" 2>&1; then
        status=ok
    else
        status=FAIL
        failed+=("$name")
        grep -E "ERROR|runtime error|property failed|Test unit written|leak" "$log" | head -5 | sed "s/^/  $name: /"
    fi
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
    rate=$(awk -v n="${execs:-0}" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
    rows+=("$(printf '%-4s %-14s %12s %8s %9s   %s' "$status" "$name" "${execs:-?}" "$secs" "$rate" "${cov:-}")")
    [ "$mode" = --smoke ] && rm -rf "$corpus"
done

printf '%-4s %-14s %12s %8s %9s   %s\n' "" target executions seconds exec/s "coverage (edges, features, corpus)"
total=0
for r in "${rows[@]}"; do
    echo "$r"
    n=$(echo "$r" | awk '{print $3}')
    [[ "$n" =~ ^[0-9]+$ ]] && total=$((total + n))
done
echo "total executions: $total"
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]} (inputs in $FUZZ_BUILD/artifacts/, logs in $FUZZ_BUILD/logs/)"; exit 1; }
