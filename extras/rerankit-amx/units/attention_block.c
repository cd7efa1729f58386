/* translation unit of the attention block: it calls the bf16 linear and packed attention kernels */
#include "../rerankit_amx/kernels/amx_common.h"
#include "../rerankit_amx/kernels/bf16_linear.c"
#include "../rerankit_amx/kernels/packed_attention.c"
#include "../rerankit_amx/kernels/attention_block.c"
