// The CUDA kernels' shared device functions (Philox, dropout keep, exp/erf/tanh, both GELUs, bf16 rounding)
// compiled for the host, so that tests compare them bit for bit with the Swift kernels of BERTKernels.
#include "../BERTCUDA/Kernels/bert_shared.cuh"
