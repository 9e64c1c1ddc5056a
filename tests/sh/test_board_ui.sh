#!/usr/bin/env bash
# LlamaBoard (`lfl board`) end to end in a real headless Chromium, driven by
# Selenium (tests/board/ui_test.py): a tiny LoRA run of SmolLM2-135M-Instruct
# started from the page, its loss curve, stopping it, a streamed chat with the
# saved checkpoint, predicting with it and exporting it, the language switch.
# Also on the real socket: a board on 0.0.0.0 without a token refuses to
# start, one with a token answers 401 without it; a foreign Host (421) or
# Origin (403) is refused; and the API answers at once while replies stream.
# Chromium and chromedriver come from Debian (tests/setup.sh installs them);
# Selenium from PyPI into a venv at $LFL_BOARD_VENV (default ~/.cache/lfl/board-venv),
# made when missing. Screenshots: build/board-ui/ (not committed).
# Usage: test_board_ui.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_board_ui.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${LFL_CACHE:-$HOME/.cache/lfl}
SHOTS=$ROOT/build/board-ui
TMPD=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMPD"
}
trap cleanup EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

for bin in chromium chromedriver; do
    command -v $bin >/dev/null || { echo "FAIL test_board_ui: $bin is not installed (tests/setup.sh installs it)"; exit 1; }
done
[ -f "$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf" ] ||
    { echo "FAIL test_board_ui: $CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf is missing (tests/fixtures.sh)"; exit 1; }
VENV=${LFL_BOARD_VENV:-$CACHE/board-venv}
if ! "$VENV/bin/python" -c "import selenium" 2>/dev/null; then
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "selenium>=4.10,<5" ||
        { echo "FAIL test_board_ui: cannot install selenium into $VENV"; exit 1; }
fi

failed=0
# the token rule on the real command line
OUT=$("$LFL" board --host 0.0.0.0 --port 0 --output-dir "$TMPD/saves" 2>&1)
rc=$?
if [ $rc -eq 0 ] || ! grep -q "refusing to listen on 0.0.0.0 without an access token" <<<"$OUT"; then
    echo "FAIL board on 0.0.0.0 without a token: rc $rc: $OUT"; failed=1
fi

# start_board NAME [args...]: sets PORT
start_board() {
    local name=$1; shift
    "$LFL" board --port 0 --output-dir "$TMPD/$name-saves" --model-dir "$CACHE/models" "$@" \
        >"$TMPD/$name.out" 2>"$TMPD/$name.log" &
    PIDS+=($!)
    PORT=
    for _ in $(seq 100); do
        PORT=$(sed -n 's#^listening on http://[^:]*:\([0-9]*\)$#\1#p' "$TMPD/$name.out" 2>/dev/null)
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { echo "FAIL board $name did not start"; cat "$TMPD/$name.log"; exit 1; }
}

start_board tok --host 127.0.0.1 --token board-test-token
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/meta")
[ "$code" = 401 ] || { echo "FAIL no token: HTTP $code, expected 401"; failed=1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer board-test-token" "http://127.0.0.1:$PORT/api/meta")
[ "$code" = 200 ] || { echo "FAIL with the token: HTTP $code, expected 200"; failed=1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: evil.example:$PORT" "http://127.0.0.1:$PORT/")
[ "$code" = 421 ] || { echo "FAIL a foreign Host header: HTTP $code, expected 421 (DNS rebinding)"; failed=1; }
# the page's own origin may call the API; another site's page may not
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: http://127.0.0.1:$PORT" -H "Authorization: Bearer board-test-token" \
    -H "Content-Type: application/json" -d '{}' "http://127.0.0.1:$PORT/api/datasets")
[ "$code" = 200 ] || { echo "FAIL same-origin POST: HTTP $code, expected 200"; failed=1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: http://evil.example" -H "Authorization: Bearer board-test-token" \
    -H "Content-Type: application/json" -d '{}' "http://127.0.0.1:$PORT/api/datasets")
[ "$code" = 403 ] || { echo "FAIL cross-site POST: HTTP $code, expected 403"; failed=1; }

start_board ui
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
if ! timeout 230 "$VENV/bin/python" "$ROOT/tests/board/ui_test.py" "http://127.0.0.1:$PORT/" "$SHOTS"; then
    echo "--- board log"; tail -30 "$TMPD/ui.log"
    for d in "$TMPD"/ui-saves/*/lora/train_*; do [ -f "$d/running_log.txt" ] && { echo "--- $d/running_log.txt"; tail -15 "$d/running_log.txt"; }; done
    failed=1
fi
# no request starves: while two replies stream (the model the page loaded; the
# second joins the running decode), the API answers between their tokens, not
# after them. Timing-free: the answers must come back while both streams still
# run, and the streams must go on afterwards.
H='Content-Type: application/json'
LONG='{"messages":[{"role":"user","content":"Write a long story about a robot."}],"max_new_tokens":48,"temperature":0}'
chunks() { local n; n=$(grep -c '"content"' "$TMPD/$1.txt" 2>/dev/null); echo "${n:-0}"; }
curl -sN -X POST -H "$H" -d "$LONG" "http://127.0.0.1:$PORT/api/chat/stream" >"$TMPD/long1.txt" &
L1=$!
curl -sN -X POST -H "$H" -d "$LONG" "http://127.0.0.1:$PORT/api/chat/stream" >"$TMPD/long2.txt" &
L2=$!
for _ in $(seq 300); do [ "$(chunks long1)" -ge 3 ] && [ "$(chunks long2)" -ge 3 ] && break; sleep 0.1; done
t_meta=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/meta")
t_runs=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/runs")
at1=$(chunks long1) at2=$(chunks long2)
done_early=0
grep -q '\[DONE\]' "$TMPD/long1.txt" && done_early=1
grep -q '\[DONE\]' "$TMPD/long2.txt" && done_early=1
wait $L1 $L2
end1=$(chunks long1) end2=$(chunks long2)
echo "board: /api/meta ${t_meta}s, /api/runs ${t_runs}s, answered at reply chunks $at1 and $at2 of $end1 and $end2"
if [ $done_early -eq 1 ] || [ "$end1" -le "$at1" ] || [ "$end2" -le "$at2" ]; then
    echo "FAIL the API answers waited for the streamed replies to end"; failed=1
fi
for f in long1 long2; do
    { grep -q '\[DONE\]' "$TMPD/$f.txt" && [ "$(chunks $f)" -ge 10 ]; } ||
        { echo "FAIL concurrent reply $f: $(chunks $f) chunks"; tail -3 "$TMPD/$f.txt"; failed=1; }
done

# the stopped run kept whole checkpoints
ck=$(ls -d "$TMPD"/ui-saves/*/lora/train_*/checkpoint-* 2>/dev/null | grep -v '\.tmp$' | tail -1)
if [ -z "$ck" ] || [ ! -f "$ck/adapter_model.safetensors" ] || [ ! -f "$ck/adapter_config.json" ]; then
    echo "FAIL the stopped run left no whole checkpoint"; failed=1
fi
[ $failed -eq 0 ] && echo "board ui: all passed (screenshots in $SHOTS)"
exit $failed
