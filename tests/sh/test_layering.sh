#!/usr/bin/env bash
# Layer rules of the C core, checked on the source (no build needed):
#  - ops reach devices only through the dispatch table: no per-op
#    `device != LFL_CPU` style checks and no direct CUDA calls in core/ops
#    (checks that two tensors share a device stay);
#  - every line of the CUDA column (kernels/optable.c) names a kernel that
#    kernels/*.cu defines;
#  - the core level (core/*.c, core/*.h: tensors, copies, dtypes, autograd)
#    includes nothing from core/ops/ or core/io/, and tensor_copy.c calls no
#    dequantizer by name;
#  - sha256 lives below hub (core/util/), and nothing outside core/hub reaches
#    into hub's private header;
#  - one vectorised exp: lfl_vexpf is defined once, in core/ops/vmath.h.
# Usage: test_layering.sh [path/to/lfl] (unused; run from the repository root)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1

passed=0 failed=0
ok() { passed=$((passed + 1)); [ -n "${VERBOSE:-}" ] && echo "ok    $1"; return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' | head -20; return 0; }
# none NAME OUTPUT: passes when OUTPUT (the lines found) is empty
none() { if [ -z "$2" ]; then ok "$1"; else fail "$1" "$2"; fi; }

# ---- dispatch: no per-op device checks, no direct CUDA calls ----
none "no per-op 'device != LFL_CPU' checks in core/ops" \
    "$(grep -nE '(->|\.)device[[:space:]]*(!=|==)[[:space:]]*LFL_CPU|LFL_CPU[[:space:]]*(!=|==)' core/ops/*.c core/ops/*.h)"
none "no 'CUDA tensors are not supported' errors in core/ops" \
    "$(grep -nE 'CUDA tensors are not supported|only CPU tensors|CPU-only for now' core/ops/*.c core/ops/*.h)"
none "core/ops calls no CUDA function directly (only optable.h declares them)" \
    "$(grep -nE 'lfl_cuda_[a-z_]+' core/ops/*.c core/ops/*.h | grep -v '^core/ops/optable.h:' | grep -v 'lfl_cuda_kernels')"
none "core/ops keeps no kernels.h-style CUDA header" "$(ls core/kernels.h 2>/dev/null)"
entries=$(sed -n 's/^ *CUDA_ENTRY(\([a-z_0-9]*\)).*/\1/p' kernels/optable.c)
if [ -n "$entries" ]; then ok "kernels/optable.c lists CUDA entries"; else fail "kernels/optable.c lists CUDA entries"; fi
missing=""
for e in $entries; do
    grep -qE "extern \"C\" lfl_status lfl_cuda_${e}\(" kernels/*.cu || missing="$missing $e"
    grep -qE "X\(${e}, " core/ops/optable.h || missing="$missing $e(not in LFL_OP_LIST)"
done
none "every CUDA entry has its lfl_cuda_<op> in kernels/*.cu and its op in the list" "$missing"
# every op of the list has its CPU kernel defined in some core/ops file
ops=$(sed -n 's/^ *X(\([a-z_0-9]*\), .*/\1/p' core/ops/optable.h)
nocpu=""
for o in $ops; do grep -qE "^lfl_status lfl_cpu_${o}\(" core/ops/*.c || nocpu="$nocpu $o"; done
none "every op of LFL_OP_LIST has lfl_cpu_<op> defined in core/ops" "$nocpu"
[ "$(echo "$ops" | wc -w)" -gt 40 ] && ok "the op list was read" || fail "the op list was read" "$ops"

# ---- the core level calls nothing above it ----
none "core/*.c and core/*.h include nothing from ops/ or io/" \
    "$(grep -nE '#include "(\.\./)?(ops|io)/' core/*.c core/*.h)"
none "tensor_copy.c calls no dequantizer or ops/io function by name" \
    "$(grep -nE 'lfl_dequantize|lfl_gemm_|lfl_gguf|lfl_safetensors' core/tensor_copy.c)"

# ---- sha256 below hub ----
none "no sha256 in core/hub" "$(ls core/hub/sha256* 2>/dev/null)"
[ -f core/util/sha256.c ] && [ -f core/util/sha256.h ] && ok "core/util/sha256.{c,h}" || fail "core/util/sha256.{c,h}"
none "nothing outside core/hub includes hub's internal.h" \
    "$(grep -rnE '#include ".*hub/internal\.h"' core lua repl tests/c | grep -v '^core/hub/')"
none "every user of lfl_sha256_* includes util/sha256.h (or is hub, through internal.h)" \
    "$(for f in $(grep -rlE 'lfl_sha256_[a-z]+\(' core lua repl | grep -v '^core/util/'); do
         case $f in core/hub/*) grep -q 'internal.h' "$f" || echo "$f";; *) grep -q 'util/sha256.h' "$f" || echo "$f";; esac
       done)"

# ---- one vectorised exp ----
defs=$(grep -rnE '^[A-Za-z_ ]*float lfl_vexpf\(' core kernels tests/c)
[ "$(printf '%s\n' "$defs" | grep -c .)" = 1 ] && printf '%s' "$defs" | grep -q '^core/ops/vmath.h:' \
    && ok "lfl_vexpf is defined once, in core/ops/vmath.h" || fail "lfl_vexpf is defined once, in core/ops/vmath.h" "$defs"
none "no other vectorised-exp header" "$(ls core/ops/vexp.h core/ops/fastmath.h 2>/dev/null)"
none "no other exp approximation (lfl_fexp...)" "$(grep -rnE 'lfl_fexp|lfl_ftanh|lfl_fnormcdf' core kernels tests/c)"
grep -q '#include "ops/vmath.h"' tests/c/test_vexp.c && ok "test_vexp tests vmath.h" || fail "test_vexp tests vmath.h"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
