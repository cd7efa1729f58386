/* translation unit of the int8 linear kernel */
#include "../rerankit_amx/kernels/amx_common.h"
#include "../rerankit_amx/kernels/int8_linear.c"
