#!/usr/bin/env bash
# The trainer's thread count follows other busy processes (core/util/cpus.c):
# a real `lfl train` of the tiny golden llama with a busy competitor process
# on the machine goes from every CPU to one fewer, and back once the
# competitor stops; with LFL_ADAPT_THREADS=0, OMP_NUM_THREADS or
# full_determinism: true it keeps its count; `lfl --version` says which.
# Needs 2 or more CPUs (skips, saying so, on one).
# Usage: test_threads_adapt.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_threads_adapt.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
COMP="" RUN=""
cleanup() {
    [ -n "$COMP" ] && kill "$COMP" 2>/dev/null
    [ -n "$RUN" ] && kill "$RUN" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMPD"
}
trap cleanup EXIT
export HOME=$TMPD LFL_CACHE=$TMPD/cache
unset LFL_PATH OMP_NUM_THREADS LFL_ADAPT_THREADS

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }

ncpu=$("$LFL" -e 'print((lfl.sys.cpus()))')
if [ "$ncpu" -lt 2 ]; then
    echo "skipped: $ncpu CPU available, adapting needs 2 or more"
    echo "0 passed, 0 failed"
    exit 0
fi

mkdir -p "$TMPD/model"
for f in tests/golden/models/llama/config.json tests/golden/models/llama/model.safetensors tests/golden/serve/tokenizer.json; do
    ln -s "$ROOT/$f" "$TMPD/model/"
done
cat >"$TMPD/recipe.yaml" <<EOF
model_name_or_path: $TMPD/model
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 4
dataset: alpaca_demo
dataset_dir: $ROOT/recipes/data
template: chatml
cutoff_len: 24
max_samples: 8
output_dir: $TMPD/run
per_device_train_batch_size: 2
max_steps: 1000000
logging_steps: 1000
save_steps: 0
learning_rate: 1.0e-4
overwrite_output_dir: true
disable_tqdm: true
EOF

# wait_for FILE TEXT SECONDS: true once FILE holds TEXT
wait_for() {
    local t=0
    while [ "$t" -lt $(($3 * 10)) ]; do
        grep -qF "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
        t=$((t + 1))
    done
    return 1
}

# background_busy: CPUs' worth of busy time on the machine over 1 s, less the
# lfl run's own (from /proc/stat and /proc/PID/stat; jiffies)
background_busy() {
    local b0 t0 s0 b1 t1 s1
    read -r b0 t0 < <(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    s0=$(awk '{print $14+$15}' "/proc/$RUN/stat")
    sleep 1
    read -r b1 t1 < <(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    s1=$(awk '{print $14+$15}' "/proc/$RUN/stat")
    awk -v b=$((b1 - b0 - (s1 - s0))) -v t=$((t1 - t0)) -v n="$ncpu" 'BEGIN {printf "%.2f", (t > 0 ? b / t * n : 0)}'
}

# ---- lfl --version names the CPUs and the policy ----
out=$("$LFL" --version)
if [[ "$out" == *"CPUs: $ncpu (affinity"*"training follows other busy processes"* ]]; then ok "--version adapting"
else fail "--version adapting" "$out"; fi
out=$(OMP_NUM_THREADS=2 "$LFL" --version)
if [[ "$out" == *"threads fixed by OMP_NUM_THREADS"* ]]; then ok "--version fixed"; else fail "--version fixed" "$out"; fi

# ---- a competitor takes a CPU: one fewer thread; it stops: every CPU again ----
bash -c 'while :; do :; done' &
COMP=$!
"$LFL" train "$TMPD/recipe.yaml" >"$TMPD/adapt.log" 2>&1 </dev/null &
RUN=$!
if wait_for "$TMPD/adapt.log" "threads $ncpu -> $((ncpu - 1)): other processes keep" 60; then ok "down with a competitor"
else fail "down with a competitor" "$(cat "$TMPD/adapt.log")"; fi
kill "$COMP"; wait "$COMP" 2>/dev/null; COMP=""
# back up only where nothing else keeps a CPU half busy: on a shared machine
# (a developer's, with builds running) staying down is the right answer
idle_others=$(background_busy)
[ -n "${VERBOSE:-}" ] && echo "background without the competitor: $idle_others CPUs"
if awk -v b="$idle_others" 'BEGIN {exit !(b > 0.3)}'; then
    echo "skipped \"up when it stops\": other processes keep $idle_others CPUs busy without the competitor"
elif wait_for "$TMPD/adapt.log" "threads $((ncpu - 1)) -> $ncpu: other processes keep" 30; then ok "up when it stops"
else fail "up when it stops" "$(cat "$TMPD/adapt.log")"; fi
kill "$RUN"; wait "$RUN" 2>/dev/null; RUN=""
if grep -qF "[lfl] threads $ncpu of $ncpu CPUs (affinity" "$TMPD/adapt.log"; then ok "header line"
else fail "header line" "$(head -20 "$TMPD/adapt.log")"; fi

# ---- LFL_ADAPT_THREADS=0, OMP_NUM_THREADS and full_determinism keep the count ----
for env in LFL_ADAPT_THREADS=0 OMP_NUM_THREADS=$ncpu full_determinism=true; do
    bash -c 'while :; do :; done' &
    COMP=$!
    if [ "$env" = full_determinism=true ]; then
        "$LFL" train "$TMPD/recipe.yaml" max_steps=400 full_determinism=true >"$TMPD/fixed.log" 2>&1 </dev/null
    else
        env "$env" "$LFL" train "$TMPD/recipe.yaml" max_steps=400 >"$TMPD/fixed.log" 2>&1 </dev/null
    fi
    rc=$?
    kill "$COMP"; wait "$COMP" 2>/dev/null; COMP=""
    if [ $rc -eq 0 ] && grep -qF "[lfl] done: 400 steps" "$TMPD/fixed.log" && ! grep -q "threads .* -> " "$TMPD/fixed.log"; then
        ok "$env keeps the count"
    else
        fail "$env keeps the count" "rc=$rc $(cat "$TMPD/fixed.log")"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
