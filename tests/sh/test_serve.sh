#!/usr/bin/env bash
# `lfl serve` on 127.0.0.1 (a free port) with the tiny llama of tests/golden/models
# and a 64-token test tokenizer: /v1/models, chat completions plain and streamed
# (SSE ending in [DONE]), OpenAI error JSON and statuses (bad JSON, unknown
# fields, bad values, wrong method/path, oversized body, API key), 50
# concurrent streams against a small queue (each completes or gets a clean
# 503; the server keeps serving), and the `openai`
# Python client (in a venv at $LFL_OPENAI_VENV, default ~/.cache/lfl/openai-venv,
# made with pip when missing; skipped with the reason when that fails offline),
# and a reward model (--stage rm) answering /v1/score/evaluation.
# Disconnects, the context limit, fairness and the cross-site policy are in
# test_serve_reliability.sh.
# Usage: test_serve.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_serve.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMPD"
}
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "${3:-$OUT}"; fi; }

M=$TMPD/model
mkdir -p "$M"
cp "$ROOT/tests/golden/models/llama/config.json" "$ROOT/tests/golden/models/llama/model.safetensors" \
   "$ROOT/tests/golden/serve/tokenizer.json" "$M/"

# start NAME [args...]: runs lfl serve in the background, sets PORT
start() {
    local name=$1; shift
    "$LFL" serve --model "$M" --template chatml --port 0 "$@" >"$TMPD/$name.out" 2>"$TMPD/$name.log" &
    PIDS+=($!)
    PORT=
    for _ in $(seq 1 100); do
        PORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$TMPD/$name.out" 2>/dev/null | sed 's/.*://')
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { echo "server did not start:"; cat "$TMPD/$name.log"; exit 1; }
}
# req METHOD PATH [curl args...]: sets OUT (body) and CODE
req() {
    local m=$1 p=$2; shift 2
    OUT=$(curl -s -X "$m" -w '\n%{http_code}' --max-time 30 "$@" "http://127.0.0.1:$URLPORT$p")
    CODE=${OUT##*$'\n'}
    OUT=${OUT%$'\n'*}
}
J='-H Content-Type:application/json'

start main --max-queue 8
URLPORT=$PORT
req GET /v1/models
check "models 200" '[ "$CODE" = 200 ] && [[ "$OUT" == *"\"object\":\"list\""* ]] && [[ "$OUT" == *"\"id\":\"gpt-3.5-turbo\""* ]]'
BODY='{"model":"x","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Hello there"}],"max_tokens":12,"temperature":0}'
req POST /v1/chat/completions $J -d "$BODY"; A1=$OUT
check "completion 200" '[ "$CODE" = 200 ] && [[ "$OUT" == *"\"object\":\"chat.completion\""* ]] && [[ "$OUT" == *"\"finish_reason\":\"length\""* ]] && [[ "$OUT" == *"\"completion_tokens\":12"* ]]'
req POST /v1/chat/completions $J -d "$BODY"
check "greedy is deterministic" '[ "$(sed "s/chatcmpl-[0-9a-f]*//; s/\"created\":[0-9]*//" <<<"$OUT")" = "$(sed "s/chatcmpl-[0-9a-f]*//; s/\"created\":[0-9]*//" <<<"$A1")" ]'
req POST /v1/chat/completions $J -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"stream":true}'
check "stream SSE" '[ "$CODE" = 200 ] && [[ "$(head -n1 <<<"$OUT")" == "data: {"*"\"delta\":{\"role\":\"assistant\",\"content\":\"\"}"* ]] && [ "$(grep -v "^$" <<<"$OUT" | tail -n1)" = "data: [DONE]" ] && [[ "$OUT" == *"\"delta\":{},\"finish_reason\":\"length\""* ]]'
req POST /v1/chat/completions $J -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"n":2,"seed":1}'
check "n = 2" '[ "$CODE" = 200 ] && [[ "$OUT" == *"\"index\":1"* ]]'

# errors: status and OpenAI's error shape
err() { # NAME STATUS curl-args...
    local name=$1 want=$2; shift 2
    req "$@"
    check "$name -> $want" '[ "$CODE" = "$want" ] && [[ "$OUT" == "{\"error\":{\"message\":"* ]]'
}
err "bad JSON" 400 POST /v1/chat/completions $J -d '{"messages": [}'
err "not an object" 400 POST /v1/chat/completions $J -d '[1,2]'
err "unknown field" 400 POST /v1/chat/completions $J -d '{"messages":[{"role":"user","content":"a"}],"temprature":1}'
err "empty messages" 400 POST /v1/chat/completions $J -d '{"messages":[]}'
err "u/a order" 400 POST /v1/chat/completions $J -d '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}'
err "bad role" 400 POST /v1/chat/completions $J -d '{"messages":[{"role":"robot","content":"a"}]}'
err "temperature range" 400 POST /v1/chat/completions $J -d '{"messages":[{"role":"user","content":"a"}],"temperature":5}'
err "max_tokens type" 400 POST /v1/chat/completions $J -d '{"messages":[{"role":"user","content":"a"}],"max_tokens":"many"}'
err "stream with n > 1" 400 POST /v1/chat/completions $J -d '{"messages":[{"role":"user","content":"a"}],"n":2,"stream":true}'
err "wrong method" 405 GET /v1/chat/completions
err "unknown path" 404 GET /v2/whatever
head -c 1200000 /dev/zero | tr '\0' 'a' >"$TMPD/big"
err "oversized body" 413 POST /v1/chat/completions $J --data-binary @"$TMPD/big"
err "empty body" 400 POST /v1/chat/completions $J -d ''

# 50 concurrent streams, queue of 8: each completes ([DONE]) or is refused with 503
for i in $(seq 1 50); do
    curl -s -N --max-time 120 -w '\n%{http_code}' $J \
        -d '{"messages":[{"role":"user","content":"Tell me"}],"max_tokens":24,"stream":true,"temperature":0.7}' \
        "http://127.0.0.1:$PORT/v1/chat/completions" >"$TMPD/load.$i" 2>&1 &
    CPIDS+=($!)
done
wait "${CPIDS[@]}"
done_n=0 busy_n=0 bad_n=0
for i in $(seq 1 50); do
    f=$TMPD/load.$i
    code=$(tail -n1 "$f")
    if [ "$code" = 200 ] && grep -q '^data: \[DONE\]$' "$f"; then done_n=$((done_n + 1))
    elif [ "$code" = 503 ] && grep -q '"code":"queue_full"' "$f"; then busy_n=$((busy_n + 1))
    else bad_n=$((bad_n + 1)); BAD=$(cat "$f"); fi
done
echo "load: $done_n streams done, $busy_n refused (503)"
check "50 concurrent streams: $done_n done, $busy_n refused" '[ $bad_n -eq 0 ] && [ $done_n -ge 8 ] && [ $((done_n + busy_n)) -eq 50 ]' "${BAD:-}"
req POST /v1/chat/completions $J -d "$BODY"
check "still serving after the load" '[ "$CODE" = 200 ]'
kill -0 "${PIDS[0]}" 2>/dev/null
check "server alive" '[ $? -eq 0 ]'

# API key
API_KEY=sekret start keyed
URLPORT=$PORT
req GET /v1/models
check "no key -> 401" '[ "$CODE" = 401 ] && [[ "$OUT" == *"invalid_api_key"* ]]'
req GET /v1/models -H "Authorization: Bearer wrong"
check "wrong key -> 401" '[ "$CODE" = 401 ]'
req GET /v1/models -H "Authorization: Bearer sekret"
check "right key -> 200" '[ "$CODE" = 200 ]'

# the openai client
VENV=${LFL_OPENAI_VENV:-$HOME/.cache/lfl/openai-venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import openai" 2>/dev/null; then
    (python3 -m venv "$VENV" && timeout 180 "$VENV/bin/pip" install -q openai) >"$TMPD/pip.log" 2>&1
fi
if "$VENV/bin/python" -c "import openai" 2>/dev/null; then
    OUT=$("$VENV/bin/python" - "$PORT" <<'PY' 2>&1
import sys, openai
c = openai.OpenAI(base_url=f"http://127.0.0.1:{sys.argv[1]}/v1", api_key="sekret", max_retries=0)
print("models", [m.id for m in c.models.list().data])
r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=6, temperature=0)
print("finish", r.choices[0].finish_reason, "tokens", r.usage.completion_tokens, "text", repr(r.choices[0].message.content))
parts = [ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
    model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=6, temperature=0, stream=True)]
print("stream_same", "".join(parts) == r.choices[0].message.content)
try:
    c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], temperature=9)
except openai.BadRequestError as e:
    print("bad_request", e.status_code)
try:
    openai.OpenAI(base_url=f"http://127.0.0.1:{sys.argv[1]}/v1", api_key="no", max_retries=0).models.list()
except openai.AuthenticationError as e:
    print("auth", e.status_code)
PY
)
    check "openai: models" '[[ "$OUT" == *"models ["*"gpt-3.5-turbo"*"]"* ]]'
    check "openai: completion" '[[ "$OUT" == *"finish length tokens 6"* ]]'
    check "openai: stream = completion" '[[ "$OUT" == *"stream_same True"* ]]'
    check "openai: 400 error" '[[ "$OUT" == *"bad_request 400"* ]]'
    check "openai: 401 error" '[[ "$OUT" == *"auth 401"* ]]'
else
    echo "(openai client part skipped: the openai package could not be installed into $VENV: $(tail -n1 "$TMPD/pip.log" 2>/dev/null))"
fi
# a reward model (--stage rm): a value head saved in a copy of the model folder
# answers LlamaFactory's /v1/score/evaluation; the chat model refuses it
RM=$TMPD/rm
mkdir -p "$RM"
cp "$M"/* "$RM/"
cat >"$TMPD/head.lua" <<LUA
lfl.manual_seed(3)
local vh = require("lfl.train.value_head")
vh.save(vh.new(32), "$RM")
LUA
"$LFL" "$TMPD/head.lua" >"$TMPD/head.log" 2>&1
check "value head written" '[ -f "$RM/value_head.safetensors" ]' "$(cat "$TMPD/head.log")"
URLPORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$TMPD/main.out" | sed 's/.*://')
req POST /v1/score/evaluation $J -d '{"model":"m","messages":["hello"]}'
check "chat model: score -> 405" '[ "$CODE" = 405 ] && [[ "$OUT" == *"no value head"* ]]'
M=$RM start rm --stage rm
URLPORT=$PORT
req POST /v1/score/evaluation $J -d '{"model":"my-rm","messages":["hello world","a b"],"max_length":8}'
check "score 200" '[ "$CODE" = 200 ] && [[ "$OUT" =~ ^\{\"id\":\"scoreval-[0-9a-f]+\",\"object\":\"score.evaluation\",\"model\":\"my-rm\",\"scores\":\[-?[0-9.e-]+,-?[0-9.e-]+\]\}$ ]]'
req POST /v1/score/evaluation $J -d '{"model":"m","messages":[]}'
check "score: empty messages -> 400" '[ "$CODE" = 400 ] && [[ "$OUT" == *"Invalid request"* ]]'
req POST /v1/score/evaluation $J -d '{"model":"m","messages":[1]}'
check "score: not a string -> 400" '[ "$CODE" = 400 ] && [[ "$OUT" == *"invalid_request_error"* ]]'
req POST /v1/chat/completions $J -d '{"messages":[{"role":"user","content":"hi"}]}'
check "reward model: chat -> 405" '[ "$CODE" = 405 ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
