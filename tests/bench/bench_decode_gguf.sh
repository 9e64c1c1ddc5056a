#!/usr/bin/env bash
# Decode and prefill tokens/s of lfl against llama.cpp on the same GGUF files
# (figures, not pass/fail): SmolLM2-135M-Instruct's Q4_1 file from
# ~/.cache/lfl/models and a Q4_K file made from it into a temporary folder by
# llama.cpp's quantizer (Q4_K_S, re-quantizing the Q4_1 weights: ffn_down goes
# to q4_K / q5_K, the tensors with 576 columns fall back to q5_0 / q5_1, the
# embedding and tied head stay q8_0 - the same file for both sides).
#
#   bash tests/bench/bench_decode_gguf.sh [P] [N] [ROUNDS] [THREADS...]
#
# P prompt tokens per row (128), N greedy new tokens per row (32, no early
# stop), ROUNDS rounds (3), thread counts (1 2). Each round runs every (file,
# threads) pair once per engine, the engines' order alternating round to round,
# so that the other sessions' load falls on both; the table gives the median
# and the range over the rounds. One run of an engine: a warm-up, then batch 1
# and batch 8, each a prefill of the prompts and N-1 decode steps.
#   lfl:       tests/bench/bench_generate.lua P N 1 blocks FILE (generate_batch,
#              the layers' linears and the head kept as the file's blocks,
#              OMP_NUM_THREADS=threads, OMP_WAIT_POLICY=passive)
#   llama.cpp: tests/bench/bench_generate_ref.py llamacpp P N 1 (llama-cpp-python's
#              low-level API: one llama_batch holding every row as its own
#              sequence - n_seq_max 8 - so batch 8 decodes 8 tokens per
#              llama_decode; n_threads = n_threads_batch = threads)
# Prefill tokens/s = prompt tokens / (the prefill forward and the first
# tokens); decode tokens/s = (N-1) tokens per row / the later steps, the
# argmax of every row's logits included on both sides. cpu-prefill and
# cpu-decode: the same tokens per CPU-second of the process (all its threads; at 1 thread the
# figure a busy machine disturbs least, at 2 it shows the threads' overhead).
# Environment: LFL (./build/lfl), LFL_BEFORE (another lfl binary, timed as a
# third engine "lfl-before" in the same rounds: before/after on one load),
# LCP_PYTHON (the python of a venv with llama-cpp-python; default
# ~/.cache/lfl/llamacpp-venv or /work/venvs/lcp).
set -u
cd "$(dirname "$0")/../.."
P=${1:-128}
N=${2:-32}
ROUNDS=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
THREADS=("$@")
[ ${#THREADS[@]} -eq 0 ] && THREADS=(1 2)
LFL=${LFL:-./build/lfl}
PY=${LCP_PYTHON:-}
if [ -z "$PY" ]; then
    for c in ~/.cache/lfl/llamacpp-venv/bin/python /work/venvs/lcp/bin/python; do
        [ -x "$c" ] && { PY=$c; break; }
    done
fi
Q41=~/.cache/lfl/models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -x "$LFL" ] || { echo "bench_decode_gguf: $LFL is missing (bash tests/setup.sh builds it)"; exit 1; }
[ -f "$Q41" ] || { echo "bench_decode_gguf: $Q41 is missing (tests/fixtures.sh fetches it)"; exit 1; }
[ -n "$PY" ] && "$PY" -c "import llama_cpp" 2>/dev/null ||
    { echo "bench_decode_gguf: no python with llama_cpp (set LCP_PYTHON; tests/bench/README.md)"; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
Q4K=$TMP/SmolLM2-135M-Instruct.Q4_K_S.gguf
"$PY" tests/bench/bench_generate_ref.py quantize "$Q41" "$Q4K" >"$TMP/quantize.log" 2>&1 ||
    { echo "bench_decode_gguf: llama_model_quantize failed:"; tail -5 "$TMP/quantize.log"; exit 1; }
FILES=("q4_1=$Q41" "q4_k_s=$Q4K")
ENGINES=(lfl llama.cpp)
[ -n "${LFL_BEFORE:-}" ] && ENGINES=(lfl-before lfl llama.cpp)

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores" \
     "($(grep -m1 -o 'avx512_vnni' /proc/cpuinfo || echo 'no avx512_vnni'))"
echo "llama-cpp-python $("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)'); P=$P N=$N," \
     "$ROUNDS rounds, threads ${THREADS[*]}; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Q4_K file's tensor types (llama.cpp's quantizer):" \
     "$(grep -o 'converting to [a-zA-Z0-9_]*' "$TMP/quantize.log" | sort | uniq -c | awk '{printf "%s %s, ", $1, $4}')"

RES=$TMP/results  # engine file threads batch prefill decode cpu-prefill cpu-decode
run_one() { # engine file path threads
    local out
    case $1 in
    lfl|lfl-before)
        local bin=$LFL
        [ "$1" = lfl-before ] && bin=$LFL_BEFORE
        out=$(OMP_NUM_THREADS=$4 OMP_WAIT_POLICY=passive "$bin" tests/bench/bench_generate.lua "$P" "$N" 1 blocks "$3" 2>&1);;
    llama.cpp)
        out=$(BENCH_GGUF=$3 BENCH_THREADS=$4 "$PY" tests/bench/bench_generate_ref.py llamacpp "$P" "$N" 1 2>/dev/null);;
    esac
    local lines
    lines=$(printf '%s\n' "$out" | awk -v e="$1" -v f="$2" -v t="$4" \
        '/^batch [0-9]+: prefill/ { sub(":", "", $2); print e, f, t, $2, $4, $7, ($9 == "cpu-prefill" ? $10 : "-"), ($11 == "cpu-decode" ? $12 : "-") }')
    if [ -z "$lines" ]; then
        echo "bench_decode_gguf: $1 on $2 ($4 threads) gave no figures:"; printf '%s\n' "$out" | tail -5
        return
    fi
    printf '%s\n' "$lines" >>"$RES"
}

for r in $(seq 1 "$ROUNDS"); do
    for fp in "${FILES[@]}"; do
        for t in "${THREADS[@]}"; do
            order=("${ENGINES[@]}")
            if [ $((r % 2)) -eq 0 ]; then # reversed every other round
                rev=(); for ((i=${#order[@]}-1; i>=0; i--)); do rev+=("${order[i]}"); done; order=("${rev[@]}")
            fi
            for e in "${order[@]}"; do run_one "$e" "${fp%%=*}" "${fp#*=}" "$t"; done
        done
    done
    echo "round $r done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done

echo
echo "tokens/s, median [min-max] over $ROUNDS rounds (P=$P N=$N, greedy)"
printf '%-7s %-2s %-11s %-22s %-22s %-22s %-22s %-22s %-22s %-22s %-22s\n' file th engine "prefill b1" "decode b1" \
    "prefill b8" "decode b8" "cpu-prefill b1" "cpu-decode b1" "cpu-prefill b8" "cpu-decode b8"
[ -f "$RES" ] || exit 1
for fp in "${FILES[@]}"; do
    f=${fp%%=*}
    for t in "${THREADS[@]}"; do
        for e in "${ENGINES[@]}"; do
            row=$(printf '%-7s %-2s %-11s' "$f" "$t" "$e")
            for col in "1 5" "1 6" "8 5" "8 6" "1 7" "1 8" "8 7" "8 8"; do
                set -- $col
                cell=$(awk -v e="$e" -v f="$f" -v t="$t" -v b="$1" -v c="$2" \
                    '$1 == e && $2 == f && $3 == t && $4 == b && $c != "-" { print $c }' "$RES" | sort -g |
                    awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
                           printf "%.1f [%.1f-%.1f]", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }')
                row="$row $(printf '%-22s' "$cell")"
            done
            echo "$row"
        done
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
