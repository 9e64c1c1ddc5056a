#!/usr/bin/env bash
# No code of lfl runs a shell: fails (exit 1) on any os.execute, io.popen,
# system( or popen( in stdlib/ recipes/ repl/ lua/ core/ kernels/, listing
# each hit. File work goes through lfl.fs (lua/l_fs.c, core/fs.c).
# Usage: test_no_shell.sh [path/to/lfl]   (the binary is not needed)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
dirs=()
for d in stdlib recipes repl lua core kernels; do [ -d "$d" ] && dirs+=("$d"); done
[ ${#dirs[@]} -gt 0 ] || { echo "no_shell_check: no source folders under $ROOT"; exit 2; }
pattern='\bos\.execute\b|\bio\.popen\b|\bsystem[[:space:]]*\(|\bpopen[[:space:]]*\('
hits=$(grep -rnIE "$pattern" "${dirs[@]}")
rc=$?
[ $rc -le 1 ] || { echo "no_shell_check: grep failed ($rc)"; exit 2; }
if [ -n "$hits" ]; then
    n=$(printf '%s\n' "$hits" | wc -l)
    printf '%s\n' "$hits" | sed 's/^/FAIL  shell-out: /'
    echo "0 passed, $n failed (use lfl.fs instead of a shell)"
    exit 1
fi
echo "1 passed, 0 failed (no shell-outs in ${dirs[*]})"
