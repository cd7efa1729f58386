/* translation unit of the bf16 linear kernel: the shared header, then the kernel */
#include "../rerankit_amx/kernels/amx_common.h"
#include "../rerankit_amx/kernels/bf16_linear.c"
