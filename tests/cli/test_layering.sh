#!/usr/bin/env bash
# test_layering.sh: the command line only parses and calls the library:
# tools/ includes only the public headers (include/lmc/*.h) and its own;
# the public headers include only each other; and the README's table of
# commands names, for every command in tools/commands.h, a library call
# that is public, defined in the file the table gives, and called by the
# command's file.
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."

bad=$(grep -Hn '^#include "' tools/*.c tools/*.h | grep -v '#include "lmc/' |
    while IFS= read -r line; do
        f=${line#*#include \"}; f=${f%%\"*}
        [ -f "tools/$f" ] || echo "$line"
    done)
[ -z "$bad" ] && echo "ok   tools/ includes only include/lmc/*.h and its own headers" ||
    { echo "FAIL tools/ includes headers from src/:"; echo "$bad"; fails=$((fails + 1)); }
bad=$(grep -Hn '^#include "' include/lmc/*.h | grep -v '#include "lmc/')
[ -z "$bad" ] && echo "ok   include/lmc/*.h include only each other" ||
    { echo "FAIL public headers include private ones:"; echo "$bad"; fails=$((fails + 1)); }
bad=$(grep -n '^#include "lmc/' tools/*.c tools/*.h include/lmc/*.h | while IFS= read -r line; do
        f=${line#*#include \"}; f=${f%%\"*}
        [ -f "include/$f" ] || echo "$line"
    done)
[ -z "$bad" ] && echo "ok   every lmc/ header included exists" || { echo "FAIL $bad"; fails=$((fails + 1)); }

# the table: | `lmc NAME` | `fn`[, `fn`] | file |
for cmd in $(sed -n 's/^ *X(\([a-z_]*\), .*/\1/p' tools/commands.h); do
    row=$(grep -E "^\| \`lmc $cmd\` \|" README.md | head -1)
    if [ -z "$row" ]; then echo "FAIL README's command table has no row for lmc $cmd"; fails=$((fails + 1)); continue; fi
    file=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $4); print $4}')
    tool=$(grep -l "int lmc_cmd_$cmd(" tools/*.c)
    ok=1
    for fn in $(echo "$row" | awk -F'|' '{print $3}' | tr -d '`,'); do
        grep -qE "\\b$fn\\(" include/lmc/*.h || { echo "FAIL lmc $cmd: $fn is not declared in include/lmc/"; ok=0; }
        grep -qE "^[a-z].*\\b$fn\\(" "$file" 2>/dev/null || { echo "FAIL lmc $cmd: $fn is not defined in $file"; ok=0; }
        grep -qE "\\b$fn\\(" $tool || { echo "FAIL lmc $cmd: $tool does not call $fn"; ok=0; }
    done
    [ $ok = 1 ] && echo "ok   lmc $cmd -> $(echo "$row" | awk -F'|' '{print $3}' | tr -d '`') ($file)" || fails=$((fails + 1))
done
finish
