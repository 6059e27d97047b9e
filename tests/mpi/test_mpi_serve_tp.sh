#!/usr/bin/env bash
# serve --tp 2: `mpirun -np 2 lmc serve --tp 2` splits the model over two
# ranks (rank 0 serves HTTP, rank 1 follows its engine calls) and answers
# exactly as `lmc serve` on one process: chat and completions, greedy and
# sampled with a seed, streamed, and several requests batched together; a
# completion equals `lmc generate` greedy. A SIGTERM to rank 0 stops the job
# gracefully (exit 0, both ranks); a bad launch or a port in use fails with a
# message and does not leave rank 1 waiting.
. "$(dirname "$0")/lib.sh"
need_mpi
pids=()
trap 'for p in "${pids[@]}"; do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT

# A tiny GPT-2 that has learned simple sentences (its greedy text varies, so
# equal answers mean something), with its own small tokenizer (ChatML
# markers as specials keep the chat prompts short).
"$PY" - "$T/text.txt" <<'PYEOF'
import sys
S = ['The cat', 'A dog', 'The old man', 'My friend', 'The teacher', 'A little bird', 'The king', 'Our neighbor']
V = ['sat on', 'looked at', 'walked to', 'found', 'liked', 'painted', 'opened', 'watched']
O = ['the red door.', 'a small house.', 'the green tree.', 'the big river.', 'an old book.', 'the bright moon.',
     'a warm fire.', 'the quiet garden.']
x, out = 1, []
def rnd(k):
    global x
    x = (x * 1103515245 + 12345) % 2147483648
    return x % k
for _ in range(3000):
    out.append(f"{S[rnd(8)]} {V[rnd(8)]} {O[rnd(8)]}")
open(sys.argv[1], "w").write(" ".join(out))
PYEOF
TOK=$T/tok
expect_ok "tokenizer" $LMC tokenizer train --vocab-size 300 --input "$T/text.txt" --out "$TOK" --quiet \
    --special "<|endoftext|>" --special "<|im_start|>" --special "<|im_end|>"
expect_ok "shards" $LMC tokenize --tokenizer "$TOK" --input "$T/text.txt" --out "$T/sh" --quiet --threads 1
expect_ok "a tiny model" $LMC train --model d6 --layers 2 --dim 32 --heads 4 --vocab 320 --max-seq 128 --seq 32 \
    --batch 4 --data "$T/sh_train_*.bin" --steps 300 --lr 1e-2 --warmup 5 --threads 1 --save "$T/m.st" --quiet
SERVE=(serve --model "$T/m.st" --tokenizer "$TOK" --name tiny --port 0 --threads 1)

# start NAME CMD...: CMD in the background (stderr to $T/NAME.log) until it
# listens; sets PID and PORT
start() {
    local name=$1; shift
    "$@" >/dev/null 2>"$T/$name.log" &
    PID=$!
    pids+=("$PID")
    PORT=$(listen_port "$T/$name.log" "$PID") && { echo "ok   $name listens on port $PORT"; return 0; }
    echo "FAIL $name did not start: $(cat "$T/$name.log")"; fails=$((fails + 1)); return 1
}

# ask PORT PATH BODY: the answer as one line: [text, finish_reason,
# completion_tokens] (streamed answers: the deltas joined, and the usage of
# the last event)
ask() {
    curl -s --max-time 120 -H 'Content-Type: application/json' -d "$3" "http://127.0.0.1:$1$2" | "$PY" -c '
import json, sys
raw = sys.stdin.read()
if raw.startswith("data:"):
    text, fin, n = "", None, None
    for line in raw.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        for c in ev.get("choices", []):
            d = c.get("delta", {})
            text += d.get("content") or c.get("text") or ""
            fin = c.get("finish_reason") or fin
        n = (ev.get("usage") or {}).get("completion_tokens", n)
    print(json.dumps([text, fin, n]))
else:
    r = json.loads(raw)
    if "error" in r:
        print(json.dumps(r)); sys.exit(0)
    c = r["choices"][0]
    print(json.dumps([c["text"] if "text" in c else c["message"]["content"], c["finish_reason"],
                      r["usage"]["completion_tokens"]]))'
}

CHAT=/v1/chat/completions CMPL=/v1/completions
REQS=(
    "$CHAT|{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"The cat\"}],\"temperature\":0,\"max_tokens\":24}"
    "$CHAT|{\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"A little bird looked\"}],\"temperature\":0,\"max_tokens\":32}"
    "$CHAT|{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"My friend\"}],\"temperature\":0,\"max_tokens\":24,\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
    "$CMPL|{\"model\":\"tiny\",\"prompt\":\"The cat\",\"temperature\":0,\"max_tokens\":24}"
    "$CMPL|{\"model\":\"tiny\",\"prompt\":\"Our neighbor\",\"temperature\":0.8,\"seed\":7,\"max_tokens\":40}"
)
PROMPTS=("The cat" "A little bird looked" "Our neighbor" "The teacher opened the")

# one process: the answers to compare with
start one $LMC "${SERVE[@]}" || { finish; exit 1; }
ONE_PID=$PID ONE_PORT=$PORT
want=()
for r in "${REQS[@]}"; do want+=("$(ask $ONE_PORT "${r%%|*}" "${r#*|}")"); done
for p in "${PROMPTS[@]}"; do
    want+=("$(ask $ONE_PORT $CMPL "{\"model\":\"tiny\",\"prompt\":\"$p\",\"temperature\":0,\"max_tokens\":24}")")
done

# tensor parallel over 2 ranks
start tp2 $MPIRUN -np 2 $LMC "${SERVE[@]}" --tp 2 || { finish; exit 1; }
MP=$PID TP_PORT=$PORT
i=0
for r in "${REQS[@]}"; do
    got=$(ask $TP_PORT "${r%%|*}" "${r#*|}")
    case "${want[$i]}" in \[\"\"*|*error*|"") echo "FAIL one process gave nothing to compare: ${want[$i]}"
        fails=$((fails + 1)) ;; esac
    [ "$got" = "${want[$i]}" ] && echo "ok   ${r%%|*} #$i: tp 2 = one process: $got" ||
        { echo "FAIL ${r%%|*} #$i: tp 2 gave $got, one process ${want[$i]}"; fails=$((fails + 1)); }
    i=$((i + 1))
done
gen=$($LMC generate --model "$T/m.st" --tokenizer "$TOK" --prompt "The cat" --max-tokens 24 --temperature 0 --quiet)
got=$(ask $TP_PORT $CMPL '{"model":"tiny","prompt":"The cat","temperature":0,"max_tokens":24}' |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0])')
[ -n "$gen" ] && [ "$got" = "$gen" ] && echo "ok   tp 2 completion = lmc generate greedy: '$gen'" ||
    { echo "FAIL tp 2 completion '$got' vs lmc generate '$gen'"; fails=$((fails + 1)); }

# several requests at once: decoded together over both ranks
metric() { curl -s "http://127.0.0.1:$TP_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
steps0=$(metric lmc_engine_steps_total) rows0=$(metric lmc_engine_step_rows_total)
k=0 asks=()
for p in "${PROMPTS[@]}"; do
    ask $TP_PORT $CMPL "{\"model\":\"tiny\",\"prompt\":\"$p\",\"temperature\":0,\"max_tokens\":24}" >"$T/c$k.out" &
    asks+=($!) k=$((k + 1))
done
wait "${asks[@]}"
steps=$(($(metric lmc_engine_steps_total) - steps0)) rows=$(($(metric lmc_engine_step_rows_total) - rows0))
for ((k = 0; k < ${#PROMPTS[@]}; k++)); do
    w=${want[$((${#REQS[@]} + k))]} got=$(cat "$T/c$k.out")
    [ "$got" = "$w" ] && echo "ok   concurrent '${PROMPTS[$k]}': tp 2 = one process" ||
        { echo "FAIL concurrent '${PROMPTS[$k]}': tp 2 gave $got, one process $w"; fails=$((fails + 1)); }
done
[ "$steps" -gt 0 ] && [ "$rows" -gt "$steps" ] &&
    echo "ok   batched: $rows sequence-steps in $steps engine steps" ||
    { echo "FAIL not batched: $rows sequence-steps in $steps engine steps"; fails=$((fails + 1)); }

# a port in use: rank 0 fails after the engine opened; rank 1 must not hang
expect_fail "tp 2 on a port in use" "cannot listen on 127.0.0.1 port $ONE_PORT" \
    timeout 120 $MPIRUN -np 2 $LMC serve --model "$T/m.st" --tokenizer "$TOK" --threads 1 --port $ONE_PORT --tp 2
expect_fail "serve --tp without as many ranks" "--tp 2 splits the model over 2 processes" \
    timeout 120 $MPIRUN -np 1 $LMC "${SERVE[@]}" --tp 2

# graceful stop: SIGTERM to rank 0 (its pid is in the log) ends both ranks
r0=$(grep -o "kill -TERM [0-9]*" "$T/tp2.log" | grep -o "[0-9]*$")
[ -n "$r0" ] && [ "$r0" = "$(rank_pid $MP 0)" ] && echo "ok   the log names rank 0's pid ($r0)" ||
    { echo "FAIL the log's pid '$r0' is not rank 0's ($(rank_pid $MP 0))"; fails=$((fails + 1)); }
t0=$SECONDS
kill -TERM "$r0"
wait $MP; rc=$?
if [ $rc -eq 0 ] && [ $((SECONDS - t0)) -le 30 ] && grep -q "lmc serve: stopped" "$T/tp2.log"; then
    echo "ok   SIGTERM to rank 0: both ranks ended, exit 0, in $((SECONDS - t0)) s"
else
    echo "FAIL SIGTERM to rank 0: exit $rc after $((SECONDS - t0)) s: $(cat "$T/tp2.log")"; fails=$((fails + 1))
fi

# an idle server is not a hung rank: with a 2 s watchdog, 5 s without a
# request, then answers as before
start idle env LMC_COMM_TIMEOUT=2 $MPIRUN -np 2 -x LMC_COMM_TIMEOUT $LMC "${SERVE[@]}" --tp 2 || { finish; exit 1; }
IDLE=$PID
sleep 5
got=$(ask $PORT $CMPL '{"model":"tiny","prompt":"The cat","temperature":0,"max_tokens":24}')
[ "$got" = "${want[3]}" ] && echo "ok   idle 5 s under a 2 s watchdog, then tp 2 = one process: $got" ||
    { echo "FAIL after 5 s idle under LMC_COMM_TIMEOUT=2: '$got': $(cat "$T/idle.log")"; fails=$((fails + 1)); }
kill -TERM "$(rank_pid $IDLE 0)"; wait $IDLE
kill -TERM $ONE_PID; wait $ONE_PID
finish
