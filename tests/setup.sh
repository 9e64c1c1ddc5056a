#!/usr/bin/env bash
# Installs what lfl needs on Debian 12 (as root, or with sudo) and builds it
# into build/. Safe to run again: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config git python3 python3-venv python3-pip
      luajit libluajit-5.1-dev libcjson-dev libcurl4-openssl-dev libreadline-dev
      libopenblas0-openmp libopenblas-openmp-dev libpcre2-dev libutf8proc-dev
      libmicrohttpd-dev libcairo2-dev libyaml-dev libdnnl-dev tmux curl
      libopenmpi-dev openmpi-bin  # multi-process training (--nproc, mpirun)
      chromium chromium-driver fonts-wqy-zenhei  # lfl board's browser test (CJK labels in its screenshots)
      clang libclang-rt-14-dev libomp-dev)  # the last three: the fuzz build (tests/fuzz/run.sh) only
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cuda=AUTO
[ "${LFL_CUDA:-}" != "" ] && cuda=$LFL_CUDA
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLFL_CUDA="$cuda" >build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j"$(nproc)" 2>&1 | tee -a build.log | grep -E "error|warning:" || true
[ "${PIPESTATUS[0]}" -eq 0 ] || { tail -50 build.log; exit 1; }
echo "setup: built build/lfl ($(./build/lfl --version | sed -n 3p))"
