#!/usr/bin/env bash
# The device communicator (NCCL; in the LFL_CUDA=EMU build the NCCL emulator
# over MPI) on 1, 2 and 3 ranks: every collective on device tensors equals the MPI
# communicator's result on host copies (tests/sh/dist/nccl_collectives.lua); a
# stalled rank makes rank 0 fail within ddp_timeout naming the operation; a
# killed one ends the job. Needs a CUDA device (a GPU, or build-emu's emulator),
# NCCL and MPI: skips with the reason otherwise.
# Usage: test_cuda_nccl.sh path/to/lfl
set -u
LFL=$(realpath "${1:?usage: test_cuda_nccl.sh path/to/lfl}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
unset WORLD_SIZE NNODES NODE_RANK FORCE_TORCHRUN NPROC_PER_NODE
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

why=$("$LFL" -e 'local d, n = lfl.sys.cuda(); local ok, nccl = lfl.comm.nccl()
  if n < 1 then io.write("no CUDA device (" .. d .. ")")
  elseif not ok then io.write("no NCCL (" .. nccl .. ")")
  elseif not lfl.comm.have_mpi() then io.write("no MPI (NCCL is bootstrapped over it)") end')
if [ -n "$why" ]; then echo "test_cuda_nccl: skipped: $why"; exit 0; fi
command -v mpirun >/dev/null || { echo "FAIL  mpirun is missing (openmpi-bin)"; exit 1; }

passed=0 failed=0
ok() { passed=$((passed + 1)); return 0; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -25 | sed 's/^/      | /'; return 0; }
SCRIPT=$ROOT/tests/sh/dist/nccl_collectives.lua

for n in 1 2 3; do
    out=$(timeout 300 "$LFL" "$SCRIPT" --nproc $n 2>&1); rc=$?
    if [ $rc = 0 ] && [ "$(printf '%s\n' "$out" | grep -c 'nccl collectives ok')" = $n ]; then ok
    else fail "device collectives on $n rank(s) (rc $rc)" "$out"; fi
done

t0=$(date +%s)
out=$(timeout 120 "$LFL" "$SCRIPT" stall --nproc 2 2>&1); rc=$?
t1=$(date +%s)
if [ $rc != 0 ] && printf '%s' "$out" | grep -q "nccl stall ok" && [ $((t1 - t0)) -le 30 ]; then ok
else fail "a stalled rank: rank 0 fails naming all_reduce within ddp_timeout=3 s (rc $rc, $((t1 - t0)) s)" "$out"; fi

t0=$(date +%s)
out=$(timeout 120 "$LFL" "$SCRIPT" kill --nproc 2 2>&1); rc=$?
t1=$(date +%s)
if [ $rc != 0 ] && printf '%s' "$out" | grep -q "rank 1 dies on purpose" && [ $((t1 - t0)) -le 30 ]; then ok
else fail "a dead rank ends the job (rc $rc, $((t1 - t0)) s)" "$out"; fi

echo "test_cuda_nccl: $passed passed, $failed failed"
[ $failed = 0 ]
