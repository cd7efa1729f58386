/* translation unit of the packed attention kernel */
#include "../rerankit_amx/kernels/amx_common.h"
#include "../rerankit_amx/kernels/packed_attention.c"
