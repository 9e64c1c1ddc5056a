#!/usr/bin/env bash
# LoRA SFT of SmolLM2-135M quiet and with one competing busy process, lfl and
# (where its venv exists: bash tests/ref/lf_venv.sh) LlamaFactory, in bf16 and
# f32, in one run: the script starts the competitor (one busy shell loop, the
# "browser tab" of a laptop) before each run and stops it after. lfl runs
# twice with the competitor: as shipped (its thread count follows the free
# CPUs) and with LFL_ADAPT_THREADS=0 (both threads, meeting at barriers).
# Prints one table; the ratio column is the run's tokens/s over the same
# side's quiet tokens/s. Figures only (never a test).
# Usage: bash tests/bench/bench_sharing.sh [steps] [cutoff_len] [precisions] [quiet]
#   defaults: 6 steps, cutoff_len 512, "bf16 f32"; a smaller cutoff_len gives
#   quicker, rougher figures (LlamaFactory then runs the same cutoff); "quiet"
#   skips the competitor runs (lfl and LlamaFactory side by side only).
# An OPENBLAS_CORETYPE in the environment (some machines export one: Haswell
# on an AVX-512 CPU halves lfl's f32 GEMMs) is removed so each engine runs its
# own kernel choice, unless BENCH_KEEP_CORETYPE=1; torch does not read it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STEPS=${1:-6}
CUT=${2:-512}
PRECS=${3:-bf16 f32}
QUIET=${4:-}
if [ -n "${OPENBLAS_CORETYPE:-}" ] && [ "${BENCH_KEEP_CORETYPE:-0}" != 1 ]; then
    echo "(OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE removed for this benchmark; BENCH_KEEP_CORETYPE=1 keeps it)"
    unset OPENBLAS_CORETYPE
fi
LFL=$ROOT/build/lfl
W=$(mktemp -d)
COMP=""
trap '[ -n "$COMP" ] && kill "$COMP" 2>/dev/null; rm -rf "$W"' EXIT
competitor_on() { bash -c 'while :; do :; done' & COMP=$!; sleep 1; }
competitor_off() { kill "$COMP"; wait "$COMP" 2>/dev/null || true; COMP=""; }

# lfl_run PREC [env...] -> "tokens/s rss"
lfl_run() {
    local prec=$1; shift
    env "$@" "$LFL" "$ROOT/tests/bench/bench_lora_sft.lua" "$STEPS" 185 "$prec" "$CUT" >"$W/lfl.log" 2>&1
    sed -n 's/.*-> \([0-9]*\) tokens\/s, peak RSS \([0-9]*\) MB.*/\1 \2/p' "$W/lfl.log"
}
LF=0
if [ -x "$HOME/.cache/lfl/refvenv-lf/bin/llamafactory-cli" ]; then LF=1; fi
# lf_run PREC -> "tokens/s rss" (tests/bench/bench_lora_sft_lf.sh, the same recipe)
lf_run() {
    local d=$W/lf_$1
    mkdir -p "$d"
    LF_STEPS=$STEPS LF_CUTOFF=$CUT bash "$ROOT/tests/bench/bench_lora_sft_lf.sh" "$d" "$1" >"$W/lf.log" 2>&1 || { echo "0 0"; return; }
    sed -n 's/.*-> \([0-9]*\) tokens\/s, peak RSS \([0-9]*\) MB.*/\1 \2/p' "$W/lf.log"
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs;" \
     "AMX: $(grep -qw amx_bf16 /proc/cpuinfo && echo yes || echo no); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# the f32 figures depend on OpenBLAS's kernel set (OPENBLAS_CORETYPE pins it)
"$LFL" --version | grep "^BLAS" || true
echo "LoRA r8 SFT, SmolLM2-135M, seq $CUT x batch 4, $STEPS steps (median step)"
printf "%-6s %-44s %9s %8s %7s\n" prec run "tokens/s" "RSS MB" "ratio"
for prec in $PRECS; do
    read -r q qm < <(lfl_run "$prec")
    printf "%-6s %-44s %9s %8s %7s\n" "$prec" "lfl quiet" "$q" "$qm" "1.00"
    if [ "$QUIET" = quiet ]; then
        if [ $LF = 1 ]; then
            read -r lq lqm < <(lf_run "$prec")
            printf "%-6s %-44s %9s %8s %7s\n" "$prec" "LlamaFactory quiet" "$lq" "$lqm" "1.00"
            printf "%-6s %-44s %9.2f\n" "$prec" "lfl / LlamaFactory (quiet)" "$(echo "$q / ($lq + 0.0001)" | bc -l)"
        fi
        continue
    fi
    competitor_on
    read -r c cm < <(lfl_run "$prec")
    read -r f fm < <(lfl_run "$prec" LFL_ADAPT_THREADS=0)
    competitor_off
    printf "%-6s %-44s %9s %8s %7.2f\n" "$prec" "lfl + 1 busy process" "$c" "$cm" "$(echo "$c / $q" | bc -l)"
    printf "%-6s %-44s %9s %8s %7.2f\n" "$prec" "lfl + 1 busy process, LFL_ADAPT_THREADS=0" "$f" "$fm" "$(echo "$f / $q" | bc -l)"
    if [ $LF = 1 ]; then
        read -r lq lqm < <(lf_run "$prec")
        printf "%-6s %-44s %9s %8s %7s\n" "$prec" "LlamaFactory quiet" "$lq" "$lqm" "1.00"
        competitor_on
        read -r lc lcm < <(lf_run "$prec")
        competitor_off
        printf "%-6s %-44s %9s %8s %7.2f\n" "$prec" "LlamaFactory + 1 busy process" "$lc" "$lcm" \
            "$(echo "$lc / ($lq + 0.0001)" | bc -l)"
        printf "%-6s %-44s %9.2f %8.2f\n" "$prec" "lfl / LlamaFactory (quiet; with the process)" \
            "$(echo "$q / ($lq + 0.0001)" | bc -l)" "$(echo "$c / ($lc + 0.0001)" | bc -l)"
    else
        echo "       (LlamaFactory skipped: no venv at ~/.cache/lfl/refvenv-lf; bash tests/ref/lf_venv.sh makes it)"
    fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
