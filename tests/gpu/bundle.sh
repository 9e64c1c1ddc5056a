#!/usr/bin/env bash
# Builds lfl with its CUDA backend for the lent GPU machine and gathers what
# tests/gpu/run.sh needs there into .gpu/ (ignored by git): the executable, the
# CUDA test binaries, and the shared libraries lfl links from Debian packages
# (LuaJIT, OpenBLAS, libyaml, ...), which that machine's image does not have;
# the C runtime and the CUDA driver come from the machine. Run it here, then
# name .gpu in the device tool's carry and run `bash tests/gpu/run.sh` there.
# LFL_CUDA_ARCHS (default 90: H100/H200) picks the architectures.
set -euo pipefail
cd "$(dirname "$0")/../.."
archs=${LFL_CUDA_ARCHS:-90}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DLFL_CUDA=ON -DLFL_CUDA_ARCHS="$archs" -DLFL_ONEDNN=OFF \
  -DLFL_MPI=OFF >build-gpu.log 2>&1 || { tail -30 build-gpu.log; exit 1; }
cmake --build build-gpu -j"$(nproc)" >>build-gpu.log 2>&1 || { grep -E "error" build-gpu.log | head -30; exit 1; }
rm -rf .gpu
mkdir -p .gpu/bin .gpu/lib
cp build-gpu/lfl build-gpu/test_cuda_* build-gpu/test_dispatch .gpu/bin/
# every library the binaries resolve, but the C/C++ runtime the machine has
for f in .gpu/bin/*; do ldd "$f"; done | awk '/=> \//{print $3}' | sort -u |
  grep -vE '/(libc|libm|libdl|libpthread|librt|libresolv|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" .gpu/lib/; done
echo "bundle: .gpu holds $(du -sh .gpu | cut -f1) ($(ls .gpu/lib | wc -l) libraries), built for sm_${archs}"
