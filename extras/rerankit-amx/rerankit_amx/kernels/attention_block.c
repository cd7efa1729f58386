/* A transformer layer's attention block, one sequence per task (see rerankit/engine/attention_block.py):

   y = LayerNorm(attention(x Wqkv^T + bqkv) Wo^T + bo + x)

   for the rows of each sequence of a packed batch. The sequence's QKV projection, attention
   context and output rows stay in the thread's buffers (a few hundred KB, in its L2 cache) instead
   of going through memory between three kernels; only x is read and y written. The arithmetic is
   that of bf16_linear.c and packed_attention.c, whose functions this file calls (native.py
   compiles amx_common.h, bf16_linear.c, packed_attention.c and this file as one unit). */

typedef struct {
    bf16 *x, *qkv, *ctx; /* [Lpad, hidden], [Lpad, 3 hidden], [Lpad, hidden] */
    float *rowbuf;       /* [32, hidden] */
    scratch_t att;
} block_scratch_t;

/* 0 on success; 1: unsupported shape (hidden not a multiple of 32, dim of 16, a sequence longer than
   max_len); 2: out of memory. wqkv, wo: packed by rk_pack_bf16_weight ([3 hidden, hidden] and
   [hidden, hidden]); bqkv, bo, ln_w, ln_b fp32; bias: NULL or [heads, max_len, max_len] added to
   the scaled scores (MPNet). Rows of y outside the sequences are not written. */
int rk_attention_block(const bf16 *x, int64_t ldx, bf16 *y, int64_t ldy, const int64_t *offsets, int64_t batch,
                       const float *bias, int64_t heads, int64_t dim, int64_t max_len, const bf16 *wqkv,
                       const float *bqkv, const bf16 *wo, const float *bo, const float *ln_w, const float *ln_b,
                       float eps, int threads) {
    const int64_t hidden = heads * dim;
    if (dim % 16 || dim < 16 || heads < 1 || hidden % 32 || max_len < 1) return 1;
    for (int64_t b = 0; b < batch; b++)
        if (offsets[b + 1] - offsets[b] > max_len || offsets[b + 1] < offsets[b]) return 1;
    const int64_t Lpad = (max_len + 31) / 32 * 32;
    int64_t next = 0;
    int failed = 0;
    if (threads < 1) threads = 1;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        block_scratch_t w;
        w.x = aligned_alloc(64, (size_t)Lpad * hidden * sizeof(bf16));
        w.qkv = aligned_alloc(64, (size_t)Lpad * 3 * hidden * sizeof(bf16));
        w.ctx = aligned_alloc(64, (size_t)Lpad * hidden * sizeof(bf16));
        w.rowbuf = aligned_alloc(64, (size_t)32 * hidden * sizeof(float));
        int ok = scratch_alloc(&w.att, heads, dim, max_len) && w.x && w.qkv && w.ctx && w.rowbuf;
        if (ok) {
            /* rows past a sequence's end feed only rows that are never written back; zeroed once
               so that they hold numbers */
            memset(w.ctx, 0, (size_t)Lpad * hidden * sizeof(bf16));
            configure_tiles();
            float c[2][32 * 32] __attribute__((aligned(64)));
            int64_t local_offsets[2] = {0, 0}; /* the sequence as a batch of one */
            for (;;) {
                int64_t b;
#pragma omp atomic capture
                b = next++;
                if (b >= batch) break;
                const int64_t start = offsets[b], n = offsets[b + 1] - start, n16 = (n + 15) / 16 * 16;
                if (n <= 0) continue;
                /* the sequence's rows, zero-padded to whole tiles */
                for (int64_t r = 0; r < n; r++) memcpy(w.x + r * hidden, x + (start + r) * ldx, hidden * sizeof(bf16));
                memset(w.x + n * hidden, 0, (n16 - n) * hidden * sizeof(bf16));
                /* QKV projection into the thread's buffer */
                const bf16_epilogue_t eq = {bqkv, NULL, 0, 3 * hidden, 3 * hidden, 0, 0, w.qkv, NULL, NULL, 0.0f, NULL};
                gemm_state_t st = {-1, 0, 0, 0};
                for (int64_t m0 = 0; m0 < n16; m0 += 32) {
                    const int64_t rows = n16 - m0 >= 32 ? 32 : 16;
                    gemm_rows(w.x, hidden, m0, rows, rows, hidden, wqkv, 3 * hidden, &eq, c, &st);
                }
                gemm_flush(&eq, c, &st);
                /* attention over all heads of the sequence, into the context buffer */
                local_offsets[1] = n;
                const job_t job = {w.qkv, w.ctx, local_offsets, bias, 1, heads, dim, hidden, 3 * hidden, hidden, max_len,
                                   1.0f / sqrtf((float)dim), 0};
                attend_sequence(&job, 0, 0, heads, &w.att);
                /* output projection + residual, layer norm, written to the sequence's rows of y */
                const bf16_epilogue_t eo = {bo, x + start * ldx, ldx, ldy, hidden, 0, 0, y + start * ldy,
                                            ln_w, ln_b, eps, w.rowbuf};
                for (int64_t m0 = 0; m0 < n16; m0 += 32) {
                    const int64_t rows = n16 - m0 >= 32 ? 32 : 16, valid = n - m0 < rows ? n - m0 : rows;
                    gemm_rows(w.ctx, hidden, m0, rows, valid, hidden, wo, hidden, &eo, c, &st);
                }
                gemm_flush(&eo, c, &st);
            }
            _tile_release();
        }
        free(w.x); free(w.qkv); free(w.ctx); free(w.rowbuf);
        scratch_free(&w.att);
        failed |= !ok;
    }
    return failed ? 2 : 0;
}
