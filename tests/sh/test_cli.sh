#!/usr/bin/env bash
# The `lfl` command line: -e, -l, script arguments, stdin scripts, exit status
# and traceback on errors, --version (the BLAS kernel on AVX-512 CPUs), --help,
# and `lfl <command>` dispatch (help listing, unknown commands, YAML recipes).
# Usage: test_cli.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_cli.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GGUF=${LFL_CACHE:-$HOME/.cache/lfl}/models/SmolLM2-135M-Instruct.Q4_1.gguf
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
export HOME=$TMPD  # no user ~/.lfl modules, no history
unset LFL_PATH LFL_HOME OPENBLAS_CORETYPE

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }

# run CMD...: sets OUT, ERR, RC (bounded by a timeout)
run() {
    timeout 60 "$@" >"$TMPD/out" 2>"$TMPD/err" </dev/null
    RC=$?
    OUT=$(cat "$TMPD/out")
    ERR=$(cat "$TMPD/err")
}
# expect NAME CONDITION...: CONDITION is a shell test run with OUT/ERR/RC set
expect() {
    local name=$1; shift
    if "$@"; then ok "$name"; else fail "$name" "rc=$RC
stdout: $OUT
stderr: $ERR"; fi
}
has() { printf '%s' "$1" | grep -qF -- "$2"; }
lacks() { ! has "$1" "$2"; }

# ---- -e and -l ----
run "$LFL" -e 'print(6 * 7)'
expect "-e runs code" [ "$RC" = 0 -a "$OUT" = 42 ]
run "$LFL" -e 'x = 1' -e 'print(x + 1)'
expect "-e twice, same state" [ "$RC" = 0 -a "$OUT" = 2 ]
run "$LFL" -e "print(lfl.load('$ROOT/tests/golden/models/qwen3'))"
expect "lfl.load describes an HF folder's model" has "$OUT" "Model(qwen3: 2 layers, hidden 32"
if [ -f "$GGUF" ]; then
    run "$LFL" -e "local m = lfl.load('$GGUF'); print(m)"
    expect "lfl.load describes the SmolLM2 GGUF" has "$OUT" "Model(llama: 30 layers, hidden 576, heads 9/3"
else
    echo "SKIP lfl.load of the SmolLM2 GGUF: $GGUF missing (run tests/fixtures.sh)"
fi
run "$LFL" -l lfl.test -e 'print(type(test.run), type(lfl.tensor))'
expect "-l module sets the global of its last name part" [ "$RC" = 0 -a "$OUT" = "function	function" ]
run "$LFL" -l P=lfl.pretty -e 'print(P.render({1, 2}))'
expect "-l NAME=module" [ "$RC" = 0 -a "$OUT" = "{1, 2}" ]
run "$LFL" -l no.such.module
expect "-l unknown module fails" [ "$RC" = 1 ]
expect "-l unknown module names it" has "$ERR" "module 'no.such.module' not found"
run "$LFL" -e
expect "-e without code: usage error" [ "$RC" = 2 ]

# ---- scripts and their arguments ----
cat >"$TMPD/args.lua" <<'EOF'
print("arg0=" .. arg[0], "n=" .. #arg, "a1=" .. tostring(arg[1]), "a2=" .. tostring(arg[2]))
print("varargs=" .. select("#", ...) .. ":" .. table.concat({...}, ","))
print("before=" .. tostring(arg[-1]))
EOF
run "$LFL" "$TMPD/args.lua" one "two words"
expect "script runs" [ "$RC" = 0 ]
expect "arg[0] is the script" has "$OUT" "arg0=$TMPD/args.lua"
expect "arg[1..n]" has "$OUT" "n=2	a1=one	a2=two words"
expect "... holds the arguments" has "$OUT" "varargs=2:one,two words"
expect "arg[-1] is the executable" has "$OUT" "before=$LFL"
run "$LFL" -- "$TMPD/args.lua" -e
expect "-- ends the options" has "$OUT" "a1=-e"
printf 'print("from stdin", ...)\n' >"$TMPD/stdin.lua"
out=$(timeout 30 "$LFL" < "$TMPD/stdin.lua" 2>&1)
RC=$? OUT=$out ERR=
expect "stdin runs when it is not a terminal" [ "$RC" = 0 -a "$OUT" = "from stdin" ]
out=$(timeout 30 "$LFL" - x y < "$TMPD/stdin.lua" 2>&1)
RC=$? OUT=$out
expect "'-' runs stdin with arguments" [ "$RC" = 0 -a "$OUT" = "from stdin	x	y" ]

# ---- errors: message and traceback on stderr, exit status 1 ----
cat >"$TMPD/fails.lua" <<'EOF'
print("before the error")
local function inner() error("inner exploded") end
local function outer() inner() end
outer()
print("not reached")
EOF
run "$LFL" "$TMPD/fails.lua"
expect "error: exit status 1" [ "$RC" = 1 ]
expect "error: output before it kept" [ "$OUT" = "before the error" ]
expect "error: message on stderr" has "$ERR" "lfl: $TMPD/fails.lua:2: inner exploded"
expect "error: traceback on stderr" has "$ERR" "stack traceback:"
expect "error: traceback names the functions" has "$ERR" "in function 'outer'"
expect "error: traceback has the line" has "$ERR" "fails.lua:4: in main chunk"
run "$LFL" -e 'lfl.matmul(lfl.zeros(2, 3), lfl.zeros(4, 5))'
expect "C error: exit status 1" [ "$RC" = 1 ]
expect "C error: the core message" has "$ERR" "matmul"
expect "C error: traceback" has "$ERR" "stack traceback:"
printf 'local x = = 1\n' >"$TMPD/syntax.lua"
run "$LFL" "$TMPD/syntax.lua"
expect "syntax error: exit status 1" [ "$RC" = 1 ]
expect "syntax error: message" has "$ERR" "syntax.lua:1:"
run "$LFL" "$TMPD/missing.lua"
expect "missing script: exit status 1" [ "$RC" = 1 ]
expect "missing script: message" has "$ERR" "cannot open $TMPD/missing.lua"
run "$LFL" -e 'os.exit(3)'
expect "os.exit status passes through" [ "$RC" = 3 ]
run "$LFL" -e 'error({})'
expect "non-string error object: exit 1" [ "$RC" = 1 ]
expect "non-string error object: said so" has "$ERR" "error object is a table value"

# ---- --version ----
run "$LFL" --version
expect "--version: exit 0" [ "$RC" = 0 ]
expect "--version: lfl version" grep -qE '^lfl [0-9]+\.[0-9]+\.[0-9]+' "$TMPD/out"
expect "--version: LuaJIT" grep -qE '^LuaJIT 2\.1' "$TMPD/out"
expect "--version: BLAS and its kernel" grep -qE '^BLAS: .*OpenBLAS.*kernel [A-Za-z0-9]+' "$TMPD/out"
expect "--version: CUDA availability" grep -qE '^CUDA' "$TMPD/out"
expect "--version: NCCL availability" grep -qE '^NCCL: ' "$TMPD/out"
expect "--version: MPI availability" grep -qE '^MPI: ' "$TMPD/out"
expect "--version: which communicators" grep -qE '^Communicators: host tensors (mpi|none \(one process\)); device tensors (nccl|none)' "$TMPD/out"
expect "--version: op coverage per device kind" grep -qE '^ops: [0-9]+ kernels; CPU [0-9]+, CUDA [0-9]+' "$TMPD/out"
kernel=$(sed -n 's/^BLAS: .*kernel \([A-Za-z0-9]*\).*/\1/p' "$TMPD/out")
if grep -qw avx512f /proc/cpuinfo; then
    case "$kernel" in
        SkylakeX | Cooperlake | SapphireRapids) ok "--version: AVX-512 kernel on an AVX-512 CPU ($kernel)" ;;
        *) fail "--version: AVX-512 kernel on an AVX-512 CPU (got '$kernel')" "$OUT" ;;
    esac
else
    expect "--version: a kernel is named" [ -n "$kernel" ]
fi
run "$LFL" -v
expect "-v is --version" grep -qE '^BLAS: ' "$TMPD/out"

# ---- --help and bad options ----
run "$LFL" --help
expect "--help: exit 0" [ "$RC" = 0 ]
expect "--help: usage" has "$OUT" "usage: lfl"
expect "--help: lists -e -l -i" has "$OUT" "-e CODE"
expect "--help: mentions commands" has "$OUT" "lfl <command>"
run "$LFL" --no-such-option
expect "unknown option: exit 2" [ "$RC" = 2 ]
expect "unknown option: named" has "$ERR" "unknown option --no-such-option"

# ---- commands: lfl <command> through stdlib/lfl/cmd/init.lua ----
run "$LFL" nosuchcmd a b
expect "unknown command: non-zero exit" [ "$RC" -ne 0 ]
expect "unknown command: clear message" has "$ERR" "'nosuchcmd' is neither a file nor a command"
expect "unknown command: points at lfl help" has "$ERR" "lfl help"
expect "unknown command: no traceback" lacks "$ERR" "stack traceback"
# a recipe's problems, all in one report, without a traceback (LFL_TRACEBACK=1 adds it)
printf 'model_name_or_path: /nonexist\nstage: sft\nfoo: 1\nlearning_rate: abc\n' >"$TMPD/bad_recipe.yaml"
run "$LFL" train "$TMPD/bad_recipe.yaml" lora_rank=zero
expect "recipe problems: exit 1" [ "$RC" = 1 ]
expect "recipe problems: counted" has "$ERR" "4 problems with the arguments:"
expect "recipe problems: unknown key" has "$ERR" "  - $TMPD/bad_recipe.yaml: unknown argument 'foo'"
expect "recipe problems: bad value" has "$ERR" "  - $TMPD/bad_recipe.yaml: learning_rate: expected a number >= 0, got \"abc\""
expect "recipe problems: command line" has "$ERR" "  - command line: lora_rank: expected"
expect "recipe problems: a rule" has "$ERR" "  - arguments: dataset is required for training"
expect "recipe problems: no traceback" lacks "$ERR" "stack traceback"
# the template's and datasets' problems (checked before the model loads) together too
printf 'model_name_or_path: /x\nstage: sft\ntemplate: nosuch\ndataset: nosuch1,identity,nosuch2\n' >"$TMPD/pf.yaml"
run "$LFL" train "$TMPD/pf.yaml"
expect "preflight: counted" has "$ERR" "3 problems with the arguments:"
expect "preflight: template" has "$ERR" "unknown template 'nosuch'"
expect "preflight: both datasets" has "$ERR" "no dataset named 'nosuch2'"
# LlamaFactory's flag form (llamafactory-cli train --stage sft --do_train ...): --key value,
# --key=value, a bare --key (true), --no_key (false for a boolean key); all problems together
run "$LFL" train --stage sft --do_train --lora_rank --cutoff_len=abc --lr_scheduler_type nosuch --no_double_quantization
expect "flags: exit 1" [ "$RC" = 1 ]
expect "flags: bare flag is true" has "$ERR" "command line: lora_rank: expected an integer >= 1, got true"
expect "flags: --key=value" has "$ERR" "command line: cutoff_len: expected an integer >= 2, got \"abc\""
expect "flags: --key value" has "$ERR" "command line: lr_scheduler_type: expected one of"
expect "flags: --no_key" has "$ERR" "command line: double_quantization: false has no effect"
expect "flags: do_train true" has "$ERR" "arguments: dataset is required for training"
# the flag form for chat and export too (a flag that is a recipe argument and no option of the command)
mkdir -p "$TMPD/tiny"
cp "$ROOT/tests/golden/models/llama/config.json" "$ROOT/tests/golden/models/llama/model.safetensors" \
    "$ROOT/tests/golden/serve/tokenizer.json" "$TMPD/tiny/"
printf 'hello\nexit\n' | timeout 60 "$LFL" chat --model_name_or_path "$TMPD/tiny" --template chatml \
    --max_new_tokens 3 --do_sample false >"$TMPD/out" 2>"$TMPD/err"
RC=$?; OUT=$(cat "$TMPD/out"); ERR=$(cat "$TMPD/err")
expect "chat flags: exit 0" [ "$RC" = 0 ]
expect "chat flags: replied" has "$OUT" "Assistant:"
run "$LFL" export --model_name_or_path "$TMPD/tiny" --export_dir "$TMPD/tiny_export"
expect "export flags: exit 0" [ "$RC" = 0 ]
expect "export flags: wrote" [ -f "$TMPD/tiny_export/model.safetensors" ]
run "$LFL" train --stage sft oops
expect "flags: a stray word" has "$ERR" "command line: 'oops' is not a --key value flag"
LFL_TRACEBACK=1 run "$LFL" train "$TMPD/bad_recipe.yaml"
expect "LFL_TRACEBACK=1: traceback" has "$ERR" "stack traceback"
run "$LFL" chat --model "$TMPD/no-such-model"
expect "chat, missing model: exit 1" [ "$RC" = 1 ]
expect "chat, missing model: no traceback" lacks "$ERR" "stack traceback"
run "$LFL" help
expect "help: exit 0" [ "$RC" = 0 ]
expect "help: lists itself" grep -qE '^  help ' "$TMPD/out"
# a command and a train command from a user path (LFL_PATH)
mkdir -p "$TMPD/path/lfl/cmd"
cat >"$TMPD/path/lfl/cmd/hello.lua" <<'EOF'
return {
  help = "say hello (test command)",
  usage = "usage: lfl hello NAME...",
  run = function(args) print("hello " .. table.concat(args, "+")); return #args end,
}
EOF
cat >"$TMPD/path/lfl/cmd/train.lua" <<'EOF'
return {help = "train (test stand-in)", run = function(args) print("train got " .. args[1]) end}
EOF
export LFL_PATH="$TMPD/path/?.lua"
run "$LFL" hello ann bob
expect "command dispatch and its exit status" [ "$RC" = 2 -a "$OUT" = "hello ann+bob" ]
run "$LFL" help
expect "help lists a command with its help line" grep -qE '^  hello +say hello \(test command\)' "$TMPD/out"
run "$LFL" help hello
expect "help <command> prints its usage" [ "$RC" = 0 -a "$OUT" = "usage: lfl hello NAME..." ]
run "$LFL" help nosuchcmd
expect "help <unknown>: non-zero exit" [ "$RC" -ne 0 ]
printf 'model_name_or_path: x\n' >"$TMPD/recipe.yaml"
run "$LFL" "$TMPD/recipe.yaml"
# the real train command validates it (no dataset given)
expect "a YAML recipe runs as lfl train" grep -q "dataset is required for training" "$TMPD/err"
run "$LFL" nosuchcmd
expect "unknown command lists the known ones" has "$ERR" "hello"
printf 'return {help = "broken", run = function() error("command failed on purpose") end}\n' \
    >"$TMPD/path/lfl/cmd/broken.lua"
run "$LFL" broken
expect "a failing command: exit 1" [ "$RC" = 1 ]
expect "a failing command: its message" has "$ERR" "command failed on purpose"
unset LFL_PATH

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
