/* liblfl: the public C API in one include. */
#ifndef LFL_H
#define LFL_H

#define LFL_VERSION "0.1.0"

#include "status.h"
#include "dtype.h"
#include "tensor.h"
#include "autograd.h"
#include "ops.h"
#include "rng.h"
#include "blas.h"
#include "device.h"

#endif
