#!/usr/bin/env bash
# `cmake --install <build> --prefix P` gives a working lfl: P/bin/lfl, run from
# another, empty folder, reads its library from P/share/lfl (lfl.home and the
# module search path say so, not the source tree), LFL_HOME still overrides,
# and a small LoRA SFT recipe placed in that folder trains two steps on the
# real SmolLM2 GGUF and writes its adapter.
# Usage: test_install.sh path/to/build/lfl   (the build folder is its folder)
set -u
LFL=$(realpath "${1:?usage: test_install.sh path/to/build/lfl}")
BUILD=$(dirname "$LFL")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GGUF=${LFL_CACHE:-$HOME/.cache/lfl}/models/SmolLM2-135M-Instruct.Q4_1.gguf
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
TMPD=$(cd "$TMPD" && pwd -P) # lfl.home comes from /proc/self/exe: no links in it
export HOME=$TMPD/home       # no user ~/.lfl modules
mkdir -p "$HOME"
unset LFL_PATH LFL_HOME OPENBLAS_CORETYPE

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
check() { if eval "$2"; then ok "$1"; else fail "$1" "${OUT:-}"; fi; }

if [ ! -f "$BUILD/cmake_install.cmake" ]; then
    echo "FAIL  $BUILD is not a CMake build folder (no cmake_install.cmake)"
    exit 1
fi
P=$TMPD/prefix
OUT=$(cmake --install "$BUILD" --prefix "$P" 2>&1); RC=$?
check "cmake --install runs" '[ $RC -eq 0 ]'
check "binary in P/bin" '[ -x "$P/bin/lfl" ]'
check "stdlib and recipes in P/share/lfl" '[ -f "$P/share/lfl/stdlib/lfl/init.lua" ] && [ -f "$P/share/lfl/recipes/templates/smollm.lua" ] && [ -f "$P/share/lfl/recipes/data/identity.json" ]'

WORK=$TMPD/elsewhere
mkdir -p "$WORK"
cd "$WORK" || exit 1
check "the other folder starts empty" '[ -z "$(ls -A)" ]'
OUT=$("$P/bin/lfl" -e 'print(lfl.home)' 2>&1); RC=$?
check "lfl.home is P/share/lfl" '[ $RC -eq 0 ] && [ "$OUT" = "$P/share/lfl" ]'
OUT=$("$P/bin/lfl" -e 'print(debug.getinfo(lfl.test.run, "S").source); print(package.searchpath("recipes.templates.smollm", package.path))' 2>&1); RC=$?
check "modules load from P/share/lfl" '[ $RC -eq 0 ] && [ "$OUT" = "@$P/share/lfl/stdlib/lfl/test.lua
$P/share/lfl/recipes/templates/smollm.lua" ]'
OUT=$(LFL_HOME=$ROOT "$P/bin/lfl" -e 'print(lfl.home)' 2>&1); RC=$?
check "LFL_HOME overrides" '[ $RC -eq 0 ] && [ "$OUT" = "$ROOT" ]'

if [ -f "$GGUF" ]; then
    cat > "$WORK/tiny_sft.lua" <<EOF
return {model_name_or_path = "$GGUF", stage = "sft", do_train = true, finetuning_type = "lora",
  lora_rank = 2, lora_target = "q_proj,v_proj", dataset = "identity", template = "smollm",
  cutoff_len = 64, max_samples = 4, max_steps = 2, per_device_train_batch_size = 2,
  learning_rate = 1e-3, logging_steps = 1, output_dir = "saves/tiny", seed = 42}
EOF
    OUT=$(timeout 120 "$P/bin/lfl" train tiny_sft.lua 2>&1); RC=$?
    check "installed lfl trains a recipe from another folder" '[ $RC -eq 0 ]'
    check "adapter written under that folder" '[ -s "$WORK/saves/tiny/adapter_model.safetensors" ] && [ -s "$WORK/saves/tiny/adapter_config.json" ]'
    check "two steps logged" 'grep -q "\"current_steps\":2," "$WORK/saves/tiny/trainer_log.jsonl"'
else
    echo "SKIP training with the installed lfl: $GGUF missing (run tests/fixtures.sh)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
