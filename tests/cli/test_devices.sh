#!/usr/bin/env bash
# lmc devices and backends as plugins: the list (cpu built in, cuda and npu
# with why they are or are not usable here), --device with a backend that
# does not exist (the error names liblmc_NAME.so and every place it looked),
# and a test plugin, liblmc_fake.so (tests/cli/plugin_fake.c: the CPU
# backend behind the plugin entry point), found through $LMC_PLUGIN_DIR:
# listed, opened, training the same bytes as --device cpu, and refused with
# a clear message when built for another interface, missing a required op,
# not loadable, or not a plugin at all.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-gcc}

expect_line() { # name, regex, text
    if grep -qE -- "$2" <<<"$3"; then echo "ok   $1"; else echo "FAIL $1: no line /$2/ in:"; echo "$3"; fails=$((fails + 1)); fi
}

out=$($LMC devices 2>&1) || { echo "FAIL lmc devices exits non-zero"; fails=$((fails + 1)); }
expect_line "cpu is built in" "^cpu +yes +built in; 1 device: cpu: [0-9]+ cores" "$out"
expect_line "cuda: usable or why not" "^cuda +(yes +liblmc_cuda.so: found|no +liblmc_cuda.so: (found .*; no CUDA device|not found in))" "$out"
# the Ascend plugin is built here, but no CANN runtime can be: it says which library it misses
expect_line "npu: why not" "^npu +no +liblmc_npu.so: (found .*; the Ascend runtime library libascendcl.so was not found in|not found in .*LMC_PLUGIN_DIR.*the loader's path)" "$out"
expect_line "where plugins are looked for" "^plugins .* are looked for in: " "$out"

make_shard "$T/ok.bin" 5000 64
NOSUCH="liblmc_nosuch.so: not found in \\\$LMC_PLUGIN_DIR \(not set\), .* \(beside lmc\), .*the loader's path"
expect_fail "devices --device nosuch" "unknown device 'nosuch'.*$NOSUCH" $LMC devices --device nosuch
expect_fail "train --device nosuch" "$NOSUCH" $LMC train $TINY --data "$T/ok.bin" --steps 1 --device nosuch
expect_fail "--device npu names the library" "(libascendcl.so was not found in .*ASCEND_TOOLKIT_HOME|--device npu:0: liblmc_npu.so: not found in)" \
    $LMC devices --device npu:0
expect_fail "--device with a bad number" "--device cuda:x: the device number: 'x' is not an integer" \
    $LMC devices --device cuda:x

# the test plugin, and its broken variants, each in a folder of its own
plugin() { # folder, extra flags...
    local d=$T/$1; shift
    mkdir -p "$d"
    $CC -shared -fPIC -I"$ROOT/include" -I"$ROOT/src" "$@" -o "$d/liblmc_fake.so" "$ROOT/tests/cli/plugin_fake.c"
}
plugin good && plugin abi -DFAKE_ABI=1 && plugin nomatmul -DFAKE_NO_MATMUL && plugin nodev -DFAKE_NO_DEVICE &&
    plugin undef -DFAKE_UNDEFINED || { echo "FAIL building the test plugin"; exit 1; }
mkdir -p "$T/notplugin" && echo 'int x;' > "$T/x.c" && $CC -shared -fPIC -o "$T/notplugin/liblmc_fake.so" "$T/x.c"

out=$(LMC_PLUGIN_DIR=$T/good $LMC devices 2>&1)
expect_line "a plugin in \$LMC_PLUGIN_DIR is listed" \
    "^fake +yes +liblmc_fake.so: found \($T/good/liblmc_fake.so\); 1 device: fake:0" "$out"
out=$(LMC_PLUGIN_DIR=$T/good $LMC devices --device fake 2>&1)
expect_line "--device fake opens it" "^fake:0: opened; .* host memory; deterministic; [0-9]+ of [0-9]+ ops" "$out"
expect_ok "train on the plugin" env LMC_PLUGIN_DIR="$T/good" $LMC train $TINY --data "$T/ok.bin" --steps 3 \
    --device fake --quiet --save "$T/fake.safetensors"
expect_ok "train on cpu" $LMC train $TINY --data "$T/ok.bin" --steps 3 --quiet --save "$T/cpu.safetensors"
if cmp -s "$T/fake.safetensors" "$T/cpu.safetensors"; then echo "ok   the plugin trains the same bytes as cpu"
else echo "FAIL the plugin's weights differ from cpu's"; fails=$((fails + 1)); fi

expect_fail "a plugin for another interface" "liblmc_fake.so: built for backend interface 1 .* rebuild the plugin" \
    env LMC_PLUGIN_DIR="$T/abi" $LMC devices --device fake
expect_fail "a plugin missing a required op" "backend fake:0 leaves the required op 'matmul' empty" \
    env LMC_PLUGIN_DIR="$T/nomatmul" $LMC devices --device fake
expect_fail "a plugin that will not load" \
    "liblmc_fake.so: found \($T/undef/liblmc_fake.so\) but would not load: .*undefined symbol: lmc_no_such_function" \
    env LMC_PLUGIN_DIR="$T/undef" $LMC devices --device fake
expect_fail "a library that is not a plugin" "liblmc_fake.so: not an lmc backend plugin \(it has no lmc_backend_plugin_entry\)" \
    env LMC_PLUGIN_DIR="$T/notplugin" $LMC devices --device fake
out=$(LMC_PLUGIN_DIR=$T/nodev $LMC devices 2>&1)
expect_line "a plugin without a device says why" "^fake +no +liblmc_fake.so: found .*; no fake device" "$out"

finish
