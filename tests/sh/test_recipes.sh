#!/usr/bin/env bash
# `lfl recipes [KIND]` and the resolver seen from the command line: a recipe in
# ~/.lfl/recipes/ is listed as "user" with the bundled file it overrides, an
# LFL_PATH entry comes first, and a recipes/ folder in the current directory
# is never used (neither listed nor loaded).
# Usage: test_recipes.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_recipes.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
export HOME=$TMPD/home
unset LFL_PATH LFL_HOME
BUNDLED=$("$LFL" -e 'io.write(lfl.home)')/recipes  # where this lfl finds its own recipes

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | tail -20; return 0; }
run() {
    timeout 60 "$@" >"$TMPD/out" 2>"$TMPD/err" </dev/null
    RC=$?
    OUT=$(cat "$TMPD/out")
    ERR=$(cat "$TMPD/err")
}
expect() {
    local name=$1; shift
    if "$@"; then ok "$name"; else fail "$name" "rc=$RC
stdout: $OUT
stderr: $ERR"; fi
}
# check NAME 'CONDITIONS': several conditions joined with && in one string
check() {
    local name=$1; shift
    if eval "$1"; then ok "$name"; else fail "$name" "rc=$RC
stdout: $OUT
stderr: $ERR"; fi
}
has() { printf '%s' "$1" | grep -qF -- "$2"; }
lacks() { ! has "$1" "$2"; }
# has, with runs of spaces counted as one (the listing's columns widen with the longest name)
hasw() { printf '%s' "$1" | tr -s ' ' | grep -qF -- "$(printf '%s' "$2" | tr -s ' ')"; }

U=$HOME/.lfl/recipes
mkdir -p "$U/templates" "$U/approaches" "$TMPD/extra/recipes/templates" "$TMPD/cwd/recipes/templates" \
         "$TMPD/cwd/recipes/approaches"
echo 'return {format_user = "{{content}}", default_system = "user qwen"}' >"$U/templates/qwen.lua"
echo 'return {format_user = "{{content}}"}' >"$U/templates/usertpl.lua"
echo 'local s = lfl.recipes.bundled("approaches", "sft"); s.name = "userstage"; return s' >"$U/approaches/userstage.lua"
echo 'return {format_user = "{{content}}", default_system = "extra qwen"}' >"$TMPD/extra/recipes/templates/qwen.lua"
echo 'return {format_user = "{{content}}", default_system = "cwd"}' >"$TMPD/cwd/recipes/templates/cwdtpl.lua"
echo 'return {format_user = "{{content}}", default_system = "cwd"}' >"$TMPD/cwd/recipes/templates/qwen.lua"
echo 'return {}' >"$TMPD/cwd/recipes/approaches/cwdstage.lua"

# ---- listing ----
run "$LFL" recipes
check "lists all four kinds" '[ "$RC" = 0 ] && has "$OUT" "templates:" && has "$OUT" "models:" \
    && has "$OUT" "datasets:" && has "$OUT" "approaches:"'
run "$LFL" help
expect "lfl help names recipes" has "$OUT" "recipes"
run "$LFL" recipes templates
expect "user override listed with what it hides" hasw "$OUT" \
    "qwen           user     $U/templates/qwen.lua  (overrides $BUNDLED/templates/qwen.lua)"
expect "user extension listed" hasw "$OUT" "usertpl        user     $U/templates/usertpl.lua"
expect "bundled listed" hasw "$OUT" "llama3         bundled  $BUNDLED/templates/llama3.lua"
expect "only one kind" lacks "$OUT" "approaches:"
run "$LFL" recipes approaches
expect "user approach listed" has "$OUT" "userstage  user"
run "$LFL" recipes --json models
check "json" '[ "$RC" = 0 ] && has "$OUT" "\"source\":" && has "$OUT" "$BUNDLED/models/llama.lua"' 
run "$LFL" recipes widgets
check "unknown kind: rc 2 and the kinds" '[ "$RC" = 2 ] && has "$ERR" "kinds: templates, models, datasets, approaches"' 

# ---- LFL_PATH first ----
LFL_PATH="$TMPD/extra/?.lua" run "$LFL" recipes templates
expect "LFL_PATH entry searched first" hasw "$OUT" \
    "qwen           LFL_PATH $TMPD/extra/recipes/templates/qwen.lua  (overrides $U/templates/qwen.lua)"
LFL_PATH="$TMPD/extra" run "$LFL" -e 'print(lfl.template.get("qwen").default_system)'
expect "LFL_PATH template wins" [ "$OUT" = "extra qwen" ]
run "$LFL" -e 'print(lfl.template.get("qwen").default_system)'
expect "user template wins over bundled" [ "$OUT" = "user qwen" ]

# ---- the current directory is never searched ----
cd "$TMPD/cwd"
run "$LFL" recipes
check "cwd recipes not listed" 'lacks "$OUT" "cwdtplX" && lacks "$OUT" "cwdstage" && lacks "$OUT" "$TMPD/cwd"' 
run "$LFL" -e 'print(lfl.template.get("qwen").default_system)'
expect "cwd template does not override" [ "$OUT" = "user qwen" ]
run "$LFL" -e 'print(lfl.recipes.find("templates", "cwdtpl"))'
expect "cwd template not found" [ "$OUT" = "nil" ]
run "$LFL" -e 'print(pcall(lfl.template.get, "cwdtpl"))'
expect "cwd template unknown" has "$OUT" "unknown template 'cwdtpl'"
run "$LFL" -e 'print(select(2, lfl.approach.check_stage("cwdstage")))'
expect "cwd approach is not a stage" has "$OUT" "stage 'cwdstage' (stages found: dpo, grpo, kto, orpo, ppo, pt, rm, sft, simpo, userstage"
cd "$ROOT"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
