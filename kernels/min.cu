// min's CUDA entry: max.cu's kernel with the comparison flipped (its
// backward is max_backward's entry).
#include "dimwise.cuh"

extern "C" lfl_status lfl_cuda_min(lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices)
{
    return lfl_cuda_extremum(a, dim, true, values, indices);
}
