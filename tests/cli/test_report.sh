#!/usr/bin/env bash
# lmc report and lmc train --report (issue 20): real short training runs
# drawn as a page, opened in headless Chromium (Debian's chromium, installed
# by scripts/bootstrap.sh): no console message of any kind, the script ran
# and shows a tip on hover, one <svg> per chart with a dot per logged step,
# a screenshot that is not blank. Then untidy logs (an unfinished last line,
# NaN, repeated steps) give a page and warnings; a file that is not a log
# is an error naming the file and line.
. "$(dirname "$0")/lib.sh"
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
    echo "FAIL chromium not found (bash scripts/bootstrap.sh installs Debian's chromium)"; exit 1
fi

make_shard "$T/train.bin" 20000 64
make_shard "$T/val.bin" 4000 64
RUN="$TINY --data $T/train.bin --val-data $T/val.bin --eval-every 5 --eval-batches 2 --steps 20 --quiet"

# browse PAGE OUT: loads PAGE; OUT.dom (the DOM after the scripts ran),
# OUT.png (a screenshot), OUT.err (Chromium's log, console messages included)
browse() {
    timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 \
        --user-data-dir="$T/chromium" --window-size=1300,1800 --screenshot="$2.png" --dump-dom \
        "file://$1" >"$2.dom" 2>"$2.err"
}

# a page's console messages and uncaught exceptions (Chromium logs both as CONSOLE lines)
console_msgs() { grep -E "CONSOLE|Uncaught" "$1.err"; }

# check_dom NAME DOM CHART:SERIES=COUNT ...: each chart has one <svg>, and
# series SERIES of CHART has COUNT dots (COUNT+ : at least); CHART:bars=N
# counts the bars; "tips" asks that the page's script ran to its end.
check_dom() {
    local name=$1; shift
    local out
    if out=$("$PY" - "$@" <<'PYEOF' 2>&1
import sys, re
from html.parser import HTMLParser
dom = open(sys.argv[1], encoding="utf-8").read()
svgs, dots, bars, chart = {}, {}, {}, None
class P(HTMLParser):
    def handle_starttag(self, tag, attrs):
        global chart
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "svg" and "data-chart" in a:
            chart = a["data-chart"]; svgs[chart] = svgs.get(chart, 0) + 1
        elif tag == "circle" and "pt" in cls and chart:
            k = (chart, a.get("data-s")); dots[k] = dots.get(k, 0) + 1
        elif tag == "rect" and "bar" in cls and chart:
            bars[chart] = bars.get(chart, 0) + 1
    handle_startendtag = handle_starttag
    def handle_endtag(self, tag):
        global chart
        if tag == "svg": chart = None
P().feed(dom)
bad = [c for c, n in svgs.items() if n != 1]
if bad: sys.exit("charts with more than one <svg>: %s" % bad)
for spec in sys.argv[2:]:
    if spec == "tips":
        if 'data-tips="on"' not in dom: sys.exit("the page's script did not run to its end")
        continue
    m = re.fullmatch(r"([\w-]+):(\w+)=(\d+)(\+?)", spec)
    c, s, n, atleast = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    if c not in svgs: sys.exit("no <svg> for chart %s (charts: %s)" % (c, sorted(svgs)))
    got = bars.get(c, 0) if s == "bars" else dots.get((c, s), 0)
    if got < n if atleast else got != n: sys.exit("%s series %s: %d dots, expected %d%s" % (c, s, got, n, atleast))
print("%d charts" % len(svgs))
PYEOF
    ); then echo "ok   $name: $out"; else echo "FAIL $name: $out"; fails=$((fails + 1)); fi
}

# not_blank NAME PNG: the screenshot has more than a few colours and a
# fair share of pixels that are not the background (PNG decoded with zlib)
not_blank() {
    local out
    if out=$("$PY" - "$2" <<'PYEOF' 2>&1
import sys, zlib, struct
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert depth == 8 and ctype in (2, 6), "unexpected PNG type %d/%d" % (depth, ctype)
        bpp = 3 if ctype == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
colours, ink = set(), 0
for line in rows[::4]:
    for x in range(0, stride, bpp * 4):
        px = bytes(line[x:x + 3]); colours.add(px); ink += px != b"\xff\xff\xff"
total = len(rows[::4]) * len(range(0, stride, bpp * 4))
assert len(colours) > 8 and ink > total // 50, "blank: %d colours, %d of %d pixels not white" % (len(colours), ink, total)
print("%dx%d, %d colours, %.1f%% not white" % (w, h, len(colours), 100.0 * ink / total))
PYEOF
    ); then echo "ok   $1: $out"; else echo "FAIL $1: $out"; fails=$((fails + 1)); fi
}

# ---- the detector itself: a page that throws and logs is caught ----
printf '<html><body><script>console.error("boom");throw new Error("thrown")</script></body></html>' >"$T/neg.html"
browse "$T/neg.html" "$T/neg" &   # (Chromium mostly waits: load it while the first run trains)
neg=$!

# ---- a real run, the page rewritten during training ----
expect_ok "train --log --report" $LMC train $RUN --log "$T/a/log.jsonl" --report "$T/a/live.html"
wait $neg
if console_msgs "$T/neg" | grep -q "thrown"; then echo "ok   console errors are seen"; else
    echo "FAIL console errors are not seen in Chromium's log: $(tail -3 "$T/neg.err")"; fails=$((fails + 1)); fi
steps=$(wc -l <"$T/a/log.jsonl")
evals=$(grep -c val_loss "$T/a/log.jsonl")
if [ -s "$T/a/live.html" ] && ! ls "$T/a" | grep -q tmp; then echo "ok   --report wrote the page (no temp file left)"; else
    echo "FAIL --report: $(ls "$T/a")"; fails=$((fails + 1)); fi
out=$($LMC report "$T/a/log.jsonl" --out "$T/one.html" 2>&1)
if [ $? -eq 0 ] && ! echo "$out" | grep -q warning; then echo "ok   report of a clean log: $out"; else
    echo "FAIL report of a clean log: $out"; fails=$((fails + 1)); fi
browse "$T/one.html" "$T/one"
msgs=$(console_msgs "$T/one")
if [ -z "$msgs" ] && [ -s "$T/one.dom" ]; then echo "ok   one run: page loads, no console messages"; else
    echo "FAIL one run: $msgs"; fails=$((fails + 1)); fi
check_dom "one run: a dot per logged step" "$T/one.dom" tips loss-step:0=$steps loss-step:1=$evals \
    loss-step-log:0=$steps loss-tokens:0=$steps lr:0=$steps grad-norm:0=$steps tokens-per-s:0=$steps \
    mfu:0=$steps step-time:0=$steps memory:0=$steps
not_blank "one run: screenshot" "$T/one.png"

# ---- a second run overlaid: two ranks (the balance picture) and a pipeline where MPI runs ----
logs="$T/a/log.jsonl $T/b/log.jsonl"
if command -v mpirun >/dev/null &&
    $MPIRUN -np 2 $LMC_FAST train $RUN --seed 2 --log "$T/b/log.jsonl" --report "$T/b/live.html" >/dev/null 2>&1 &&
    $MPIRUN -np 2 $LMC_FAST train $RUN --pp 2 --grad-accum 2 --log "$T/c/log.jsonl" >/dev/null 2>&1 &&
    grep -q 'data-chart="balance"' "$T/b/live.html"; then
    logs="$logs $T/c/log.jsonl"
    extra="balance:bars=4+ compute-rank:1=$steps idle-rank:1=$steps memory:2=$steps pp-bubble:1=$steps"
    echo "ok   runs on 2 ranks (data parallel, with --report) and 2 pipeline stages"
else
    expect_ok "second run (one process: no MPI here)" $LMC_FAST train $RUN --seed 2 --log "$T/b/log.jsonl"
    extra=""
fi
expect_ok "report of several logs" $LMC report $logs --out "$T/many.html"
# a pointer over the first dot of the loss chart must show its tip
cp "$T/many.html" "$T/hover.html"
cat >>"$T/hover.html" <<'EOF'
<script>
var c = document.querySelector('svg[data-chart="loss-step"] circle.pt'), r = c.getBoundingClientRect();
c.ownerSVGElement.dispatchEvent(new MouseEvent('mousemove', {clientX: r.x + r.width / 2, clientY: r.y + r.height / 2, bubbles: true}));
</script>
EOF
browse "$T/hover.html" "$T/many"
msgs=$(console_msgs "$T/many")
if [ -z "$msgs" ]; then echo "ok   several runs: no console messages"; else echo "FAIL several runs: $msgs"; fails=$((fails + 1)); fi
first_loss=$("$PY" -c "import json,sys; print(repr(json.loads(open(sys.argv[1]).readline())['loss']))" "$T/a/log.jsonl")
if grep -q "<div id=\"tip\" style=\"display: block.*step 1: loss $first_loss<" "$T/many.dom"; then
    echo "ok   hover shows the exact value (loss $first_loss)"; else
    echo "FAIL hover: $(grep -o '<div id="tip"[^>]*>[^<]*' "$T/many.dom")"; fails=$((fails + 1)); fi
# series: run a's train, validation; run b's train, validation (then run c's)
check_dom "several runs overlaid" "$T/many.dom" tips loss-step:0=$steps loss-step:1=$evals loss-step:2=$steps \
    loss-step:3=$evals lr:1=$steps $extra
not_blank "several runs: screenshot" "$T/many.png"

# ---- untidy logs: a page and a warning each, never a crash ----
head -c -25 "$T/a/log.jsonl" >"$T/cut.jsonl"
out=$($LMC report "$T/cut.jsonl" --out "$T/cut.html" 2>&1); rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "line $steps: unfinished last line" && grep -q "<svg" "$T/cut.html"; then
    echo "ok   unfinished last line: warned, page written"; else
    echo "FAIL unfinished last line (rc $rc): $out"; fails=$((fails + 1)); fi

{ head -3 "$T/a/log.jsonl"
  echo '{"step":4,"loss":null,"lr":0.001,"grad_norm":1,"tokens_per_s":1,"mfu":0,"ms":1,"tokens":128}'
  echo '{"step":5,"loss":NaN,"lr":0.001,"grad_norm":Infinity,"tokens_per_s":1,"mfu":0,"ms":1,"tokens":160}'
  echo '{"step":6,"loss":2.5,"lr":0.001,"grad_norm":1,"tokens_per_s":1,"mfu":0,"ms":1,"tokens":192}'; } >"$T/nan.jsonl"
out=$($LMC report "$T/nan.jsonl" --out "$T/nan.html" 2>&1); rc=$?
nans=$(grep -o 'class="pt nan"[^>]*data-tip="train: step [0-9]*' "$T/nan.html" | grep -o 'step [0-9]*' | sort -u | tr '\n' ' ')
if [ $rc -eq 0 ] && echo "$out" | grep -q "step 4: loss is null" && echo "$out" | grep -q "step 5: loss is NaN" &&
    [ "$nans" = "step 4 step 5 " ]; then echo "ok   NaN losses: warned and marked ($nans)"; else
    echo "FAIL NaN losses (rc $rc, marks: $nans): $out"; fails=$((fails + 1)); fi

{ head -5 "$T/a/log.jsonl"
  echo '{"step":3,"loss":9.25,"lr":0.001,"grad_norm":1,"tokens_per_s":1,"mfu":0,"ms":1,"tokens":96}'
  echo '{"step":4,"loss":9.5,"lr":0.001,"grad_norm":1,"tokens_per_s":1,"mfu":0,"ms":1,"tokens":128}'; } >"$T/resumed.jsonl"
out=$($LMC report "$T/resumed.jsonl" --out "$T/resumed.html" 2>&1); rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "step 3 comes again after step 5" &&
    grep -q 'step 3: loss 9.25"' "$T/resumed.html" && [ "$(grep -c 'data-tip="train: step 3: ' "$T/resumed.html")" -eq 2 ] &&
    grep -q 'resumed at step 3' "$T/resumed.html"; then echo "ok   repeated steps: the later record wins, resume marked"; else
    echo "FAIL repeated steps (rc $rc): $out"; fails=$((fails + 1)); fi

# ---- not a log ----
printf 'step,loss\n1,4.2\n' >"$T/metrics.csv"
expect_fail "a CSV file" "metrics.csv: not a JSON Lines log.*line 1" $LMC report "$T/metrics.csv" --out "$T/x.html"
[ ! -e "$T/x.html" ] && echo "ok   no page for a file that is not a log" || { echo "FAIL a page was written"; fails=$((fails + 1)); }
: >"$T/empty.jsonl"
expect_fail "an empty log" "no step records in .*empty.jsonl" $LMC report "$T/empty.jsonl" --out "$T/x.html"
expect_fail "a missing log" "nothing.jsonl: cannot open" $LMC report "$T/nothing.jsonl" --out "$T/x.html"
expect_fail "no --out" "--out is required" $LMC report "$T/a/log.jsonl"
expect_fail "--report without --log" "--report .*needs --log" $LMC train $RUN --report "$T/x.html"

finish
