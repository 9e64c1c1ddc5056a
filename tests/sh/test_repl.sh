#!/usr/bin/env bash
# The REPL driven through a pseudo-terminal (tmux on a private socket):
# expression and tensor printing, multi-line input, tab completion, errors
# that keep the REPL alive, Ctrl-C (interrupting a loop, clearing the line),
# Ctrl-D, and the history file under $HOME. Usage: test_repl.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_repl.sh path/to/lfl}")
command -v tmux >/dev/null || { echo "test_repl: tmux is not installed (tests/setup.sh installs it)"; echo "0 passed, 1 failed"; exit 1; }

TMPD=$(mktemp -d)
SOCK="$TMPD/tmux.sock"  # a private server, removed with the temp dir
TM() { tmux -S "$SOCK" -f /dev/null "$@"; }
cleanup() { TM kill-server >/dev/null 2>&1; rm -rf "$TMPD"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
DEADLINE=$((SECONDS + 120))  # for the whole script: a broken REPL fails fast
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -25; return 0; }

# the whole pane (scrollback included), wrapped lines joined
screen() { TM capture-pane -p -J -S - -t "$1" 2>/dev/null; }

# wait_for PANE TEXT [COUNT] [SECONDS]: until TEXT (fixed string) is on COUNT lines
wait_for() {
    local pane=$1 text=$2 count=${3:-1} secs=${4:-10}
    local deadline=$((SECONDS + secs))
    [ $deadline -gt $DEADLINE ] && deadline=$DEADLINE
    while [ $SECONDS -lt $deadline ]; do
        [ "$(screen "$pane" | grep -cF -- "$text")" -ge "$count" ] && return 0
        sleep 0.1
    done
    return 1
}

# ready PANE: until the last line is an empty prompt, i.e. readline waits for
# keys (a Ctrl-D typed before that would reach a terminal in cooked mode)
ready() {
    local deadline=$((SECONDS + 10))
    [ $deadline -gt $DEADLINE ] && deadline=$DEADLINE
    while [ $SECONDS -lt $deadline ]; do
        case "$(screen "$1" | sed -e 's/ *$//' -e '/^$/d' | tail -n 1)" in ">" | ">>") return 0 ;; esac
        sleep 0.1
    done
    return 1
}

# type TEXT literally, then optional keys
send() { local pane=$1 text=$2; shift 2; TM send-keys -t "$pane" -l -- "$text"; [ $# -gt 0 ] && TM send-keys -t "$pane" "$@"; }
line() { send "$1" "$2" Enter; }

# check NAME PANE TEXT [COUNT]
check() { if wait_for "$2" "$3" "${4:-1}"; then ok "$1"; else fail "$1 (no '$3' on screen)" "$(screen "$2")"; fi; }

# start NAME: a REPL in a fresh window, HOME pointing at the temp dir. A shell
# around it reports its exit status on the screen (tmux's own #{pane_dead_status}
# needs SIGCHLD, which a parent with a blocked mask can keep from its server);
# the shell's INT trap keeps it alive through Ctrl-C, and lfl starts with the
# default SIGINT action.
start() {
    local cmd
    cmd=$(printf 'env HOME=%q TERM=xterm LFL_HOME= sh -c %q %q' "$TMPD" \
        'trap true INT; "$0"; echo "[lfl exited with status $?]"' "$LFL")
    TM new-session -d -s "$1" -x 160 -y 50 "$cmd" \; \
        set-option -t "$1" remain-on-exit on \; set-option -t "$1" history-limit 5000
}

# ---- first session ----
P=one
start $P
check "banner" $P "Lua REPL"
if [ $failed -gt 0 ]; then echo "$passed passed, $failed failed"; exit 1; fi
line $P "1234 + 4321"
check "expression printed" $P "5555"
line $P "{b = 2, a = {1, 2}, 'x'}"
check "table pretty-printed" $P '{"x", a = {1, 2}, b = 2}'
line $P "lfl.tensor({1.5, 2.5})"
check "tensor printed" $P "tensor([1.5000, 2.5000],"
check "tensor shape/dtype" $P "shape=[2], dtype=f32"
line $P "print('pr' .. 'inted', 1 + 1 == 2)"
check "print works" $P "printed"

# multi-line: a function definition, then a table expression split over lines
line $P "function sq(v)"
check "continuation prompt" $P ">>"
line $P "  return v * v"
line $P "end"
line $P "sq(12) + 0.5"
check "multi-line function" $P "144.5"
line $P "{10,"
line $P "20}"
check "multi-line expression" $P "{10, 20}"

# errors: message + traceback, the REPL goes on
line $P "error('oops-one')"
check "error message" $P "stdin:1: oops-one"
check "error traceback" $P "stack traceback:"
line $P "lfl.add(lfl.zeros(2), lfl.zeros(3))"
check "C error message" $P "add: shapes [2] and [3] cannot be broadcast"
line $P "local t = nil; t.x = 1"
check "runtime error" $P "attempt to index local 't'"
line $P "777 + 1"
check "alive after errors" $P "778"

# completion: ambiguous (two tabs list), unique, methods after ':', lazy modules
ready $P
send $P "lfl.te" Tab
sleep 0.3
TM send-keys -t $P Tab
if wait_for $P "lfl.tensor" 1 && wait_for $P "lfl.test" 1; then ok "completion lists lfl.tensor and lfl.test"
else fail "completion lists lfl.tensor and lfl.test" "$(screen $P)"; fi
TM send-keys -t $P C-u
send $P "lfl.aran" Tab
sleep 0.3
line $P "(3)"
check "unique completion (lfl.aran -> lfl.arange)" $P "tensor([0.0000, 1.0000, 2.0000],"
line $P "xx = lfl.zeros(2, 5)"
send $P "xx:nume" Tab
sleep 0.3
line $P "() + 0.25"
check "method completion (xx:nume -> xx:numel)" $P "10.25"
send $P "lfl.pret" Tab
sleep 0.3
line $P ".render({7, 7})"
check "lazy module completion (lfl.pret -> lfl.pretty)" $P '"{7, 7}"'
send $P "lfl.test.assert_tens" Tab
sleep 0.3
line $P " == nil"
check "field of a lazy module (lfl.test.assert_tensor_close)" $P "false"
send $P "string.fo" Tab
sleep 0.3
line $P "('%d-%d', 31, 32)"
check "library field completion (string.format)" $P '"31-32"'

# Ctrl-C interrupts running code and returns to the prompt
# (each loop announces itself, so the Ctrl-C surely lands while it runs)
interrupt() { # interrupt NAME N CODE: run CODE, which prints started-N first
    line $P "io.write('started-' .. $2, '\n') io.flush() $3"
    if wait_for $P "started-$2"; then
        sleep 0.3
        TM send-keys -t $P C-c
        check "$1" $P "interrupted" "$2"
    else
        fail "$1 (the code did not start)" "$(screen $P)"
    fi
}
interrupt "Ctrl-C interrupts while true do end" 1 "while true do end"
line $P "function spin() local s = 0 while true do s = s + 1 end end"
interrupt "Ctrl-C interrupts a REPL-defined function" 2 "spin()"
interrupt "Ctrl-C interrupts a loop calling C" 3 "for i = 1, 1e12 do local z = lfl.zeros(4) end"
line $P "880 + 8"
check "alive after Ctrl-C" $P "888"

# Ctrl-C at the prompt clears the line, and a pending multi-line chunk
ready $P
send $P "garbage garbage"
sleep 0.2
TM send-keys -t $P C-c
line $P "990 + 9"
check "Ctrl-C clears the line" $P "999"
if screen $P | grep -q "near 'garbage'"; then fail "cleared line was not run" "$(screen $P)"; else ok "cleared line was not run"; fi
line $P "local pending = {"
ready $P
TM send-keys -t $P C-c
line $P "1000 + 1"
check "Ctrl-C drops a pending chunk" $P "1001"

line $P "4444 + 1"
check "last entry" $P "4445"
ready $P
TM send-keys -t $P C-d
check "Ctrl-D exits with status 0" $P "[lfl exited with status 0]"

# ---- history: written under $HOME, multi-line entries whole, recalled next time ----
H="$TMPD/.lfl_history"
if [ -f "$H" ] && grep -qF "1234 + 4321" "$H" && grep -qF "4444 + 1" "$H"; then ok "history file written"
else fail "history file written" "$(cat "$H" 2>/dev/null || echo "(no $H)")"; fi
if grep -qxF "function sq(v)" "$H" && grep -qxF "  return v * v" "$H"; then ok "multi-line entry in history"
else fail "multi-line entry in history" "$(cat "$H" 2>/dev/null)"; fi
P=two
start $P
check "second session" $P "Lua REPL"
ready $P
TM send-keys -t $P Up
sleep 0.3
TM send-keys -t $P Enter
check "history recalled (Up)" $P "4445"
TM send-keys -t $P C-d

# ---- a trainer built, inspected and driven step by step (lfl.trainer) ----
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$TMPD/model"
ln -s "$ROOT/tests/golden/models/llama/config.json" "$ROOT/tests/golden/models/llama/model.safetensors" \
    "$ROOT/tests/golden/serve/tokenizer.json" "$TMPD/model/"
P=three
start $P
check "third session" $P "Lua REPL"
line $P "t = lfl.trainer{model_name_or_path = '$TMPD/model', dataset = 'alpaca_demo', template = 'chatml', cutoff_len = 24, max_samples = 8, per_device_train_batch_size = 2, max_steps = 3, logging_steps = 1, output_dir = '$TMPD/run', disable_tqdm = true}"
check "trainer set up" $P "trainable params"
line $P "t"
check "trainer printed" $P "Trainer(step 0/3, epoch 0.00, loss -"
line $P "info = t:step()"
check "one step logged" $P "[lfl] step 1/3 loss"
line $P "t.state.global_step * 1000 + t.state.total_steps"
check "t.state after one step" $P "1003"
send $P "t:ste" Tab
sleep 0.3
line $P "()"
check "method completion (t:ste -> t:step)" $P "grad_norm = "
line $P "t:step()"
check "third step logged" $P "[lfl] step 3/3 loss"
line $P "t"
check "trainer after three steps" $P "Trainer(step 3/3"
line $P "#t.names == #t.params and t.optimizer ~= nil and 5550 + t.global_step"
check "parts and counters" $P "5553"
# the model, its adapter and the dataset of that run, inspected and driven by hand
line $P "m = t.model"
line $P "m"
check "model printed" $P "Model(llama: 2 layers, hidden 32"
line $P "ad = m.lora"
line $P "ad"
check "adapter printed" $P "Adapter(default: LoRA r=8"
line $P "b = lfl.peft.add_lora(m, {name = 'b', rank = 2, target = 'q_proj'})"
line $P "7000 + #m:adapter_names()"
check "a second adapter" $P "7002"
line $P "ids = lfl.tensor({{1, 2, 3}}, 'i64')"
line $P "y = m:forward(ids, {adapter = false}) - m:forward(ids, {adapter = 'b'})"
line $P "m:set_adapter('default')"
line $P "m.lora.name"
check "switched per call and back" $P "default"
line $P "ds = t.train_set"
line $P "ds"
check "dataset printed" $P "lfl.Dataset: 8 rows"
line $P "b1 = ds:collate({1, 2}, 'pack')"
line $P "6000 + b1.nexamples"
check "dataset collated in C" $P "6002"
line $P "t:finish().metrics.epoch"
check "finish" $P "[lfl] done: 3 steps"
if wait_for $P "[lfl] done: 3 steps" && [ -f "$TMPD/run/adapter_model.safetensors" ]; then ok "adapter saved by t:finish()"
else fail "adapter saved by t:finish()" "$(ls "$TMPD/run" 2>&1)"; fi
ready $P
TM send-keys -t $P C-d

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
