// argmax's CUDA entry: max.cu's kernel (the values come along; the front
// keeps only the positions).
#include "dimwise.cuh"

extern "C" lfl_status lfl_cuda_argmax(lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices)
{
    return lfl_cuda_extremum(a, dim, false, values, indices);
}
