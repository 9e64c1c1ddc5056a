// The NCCL emulator's entry points (nccl_emu.cc): NCCL's collectives over MPI
// on the emulated device memory, so that the NCCL backend (kernels/comm_nccl.cu)
// runs on ranks without a GPU. One device per process (the emulator's cuda:0).
#ifndef LFL_KERNELS_EMU_NCCL_EMU_H
#define LFL_KERNELS_EMU_NCCL_EMU_H

#include "cuda_emu.h"
#include "../nccl.cuh"

// the API table as dlsym would fill it from libnccl.so.2
lfl_nccl_api lfl_nccl_emu_api(void);
// How long an emulated collective waits for the other ranks before it fails
// with ncclRemoteError (a real NCCL call would hang until aborted; the emulator
// runs each call to its end, so it needs the deadline itself).
void lfl_nccl_emu_set_timeout(ncclComm_t comm, double seconds);

#endif
