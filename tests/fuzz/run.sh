#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, into
# build-fuzz/, apart from the normal build) and runs each for N seconds from
# its committed corpus tests/fuzz/corpus/<target>; fails on any crash,
# sanitizer report, leak, timeout or out-of-memory.
#
#   bash tests/fuzz/run.sh [seconds per target, default 60] [target ...]
#
# 0 seconds replays the committed corpus once and mutates nothing. "ci"
# replays it and then fuzzes each target for a fixed number of inputs from a
# fixed seed (about 20 CPU-s each): the same inputs on every run,
# so CI fails on a regression, never on what a random seed happened to find.
# Fuzzing for time (random seeds) is done by hand.
#
# LFL_FUZZ_JOBS: targets run side by side (default: the number of cores).
# LFL_FUZZ_FLAGS: more libFuzzer flags (e.g. "-fork=1 -ignore_crashes=1" to go
# on past a crash in long runs by hand).
# LFL_FUZZ_WORK: grown corpora, logs and crash inputs (default build-fuzz/work);
# a crash input is kept there as crash-*/leak-*/timeout-*/oom-* and printed.
# Reproduce one: build-fuzz/fuzz_<target> <crash file>
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi

# clang with libFuzzer and OpenMP (Debian packages), installed when missing
pkgs=(clang libclang-rt-14-dev libomp-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p build-fuzz
log=build-fuzz/build.log
cmake -S . -B build-fuzz -DLFL_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release >$log 2>&1 \
  || { cat $log; exit 1; }
cmake --build build-fuzz -j"$(nproc)" --target fuzz >>$log 2>&1 || { tail -50 $log; exit 1; }

work=${LFL_FUZZ_WORK:-build-fuzz/work}
jobs=${LFL_FUZZ_JOBS:-$(nproc)}
mkdir -p "$work"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 dir=$work/$1
  mkdir -p "$dir/corpus"
  local dict=()
  case $t in json|http|dataset_record|tokenizer|safetensors) dict=(-dict=tests/fuzz/json.dict) ;; esac
  # -timeout: seconds one input may take; -rss_limit_mb: the tokenizers
  # (several real vocabularies under ASan) need about 1.5 GB
  local timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -o "$dir.cpu" -f "%U %S")
  # the grown corpus first (libFuzzer adds the new inputs it finds to it);
  # "ci" starts from an empty one, as on a clean clone, so it runs the same
  # inputs here as there
  local grown=$dir/corpus
  local mode=(-max_total_time="$secs")
  if [ "$secs" = ci ]; then
    # inputs per target: about 20 CPU-s each under ASan (AMD EPYC, measured)
    local n
    case $t in
      json) n=150000 ;; gguf) n=300000 ;; safetensors) n=400000 ;; http) n=60000 ;;
      tokenizer) n=40000 ;; dataset_record) n=30000 ;; yaml) n=150000 ;; *) n=20000 ;;
    esac
    mode=(-seed=1 -runs="$n")
    grown=$dir/ci-corpus
    rm -rf "$grown"
    mkdir -p "$grown"
  elif [ "$secs" -eq 0 ]; then
    mode=(-runs=0)
  fi
  # shellcheck disable=SC2086
  "${timer[@]}" ./build-fuzz/fuzz_"$t" "${mode[@]}" -timeout=20 -rss_limit_mb=4096 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$dir/" "${dict[@]}" ${LFL_FUZZ_FLAGS:-} "$grown" "tests/fuzz/corpus/$t" \
    >"$dir.log" 2>&1
}

pids=() names=() failed=()
for t in "${targets[@]}"; do
  [ -x "build-fuzz/fuzz_$t" ] || { echo "fuzz: no target '$t'"; exit 1; }
  run_one "$t" & pids+=($!); names+=("$t")
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
done
for i in "${!pids[@]}"; do
  t=${names[$i]}
  if wait "${pids[$i]}"; then rc=0; else rc=$?; fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -oE '(DONE|pulse|NEW|REDUCE|INITED) +cov: [0-9]+ ft: [0-9]+' "$work/$t.log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  cpu=$(awk '/^[0-9.]+ [0-9.]+$/ {printf "%.0f", $1 + $2}' "$work/$t.cpu" 2>/dev/null || true)
  if [ "$rc" -eq 0 ]; then
    if [ "$secs" = ci ]; then
      printf 'fuzz: %-15s ok     %s inputs from seed 1 (%s CPU s), %s\n' "$t" "$runs" "${cpu:-?}" "$cov"
    elif [ "$secs" -eq 0 ]; then
      printf 'fuzz: %-15s ok     corpus of %s inputs replayed (%s CPU s), %s\n' "$t" "$runs" "${cpu:-?}" "$cov"
    else
      printf 'fuzz: %-15s ok     %s runs in %s s (%s CPU s), %s\n' "$t" "$runs" "$secs" "${cpu:-?}" "$cov"
    fi
  else
    printf 'fuzz: %-15s FAILED (exit %s), log %s\n' "$t" "$rc" "$work/$t.log"
    grep -E 'ERROR|runtime error|SUMMARY|BUG|fuzz_[a-z_]*: |Test unit written' "$work/$t.log" | head -20 || true
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"; exit 1; }
