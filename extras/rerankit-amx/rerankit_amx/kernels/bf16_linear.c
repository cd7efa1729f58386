/* bf16 linear layers on AMX tiles (see rerankit/engine/bf16_linear.py).

   out[m, n] = bf16(act(sum_k x[m, k] w[n, k] + bias[n]) + residual[m, n]), optionally layer-normed
   per row.

   x and w in bf16, products summed in fp32 by AMX TDPBF16PS, the epilogue (bias, GELU in erf form,
   residual, the layer norm that follows a residual add in BERT's layers) in fp32, rounded once.
   Each thread takes blocks of 32 rows as it frees up (dynamic scheduling: the cores of a VM need
   not run at one speed) and walks the output columns 32 at a time. A block's epilogue runs a few
   rows at a time between the tile products of the next block: 1.1-1.3x faster than after them on
   the development VM, where the two still overlap only in part (the epilogue costs about a third
   of a feed-forward matmul's time). gemm_rows and gemm_flush are that walk, for kernels compiled
   after this file (attention_block.c). */
/* amx_common.h comes first (native.py) */

/* w bf16 [N, K] -> B tiles [N/16][K/32][16 k-pairs][16 cols x 2]; N % 16 == 0, K % 32 == 0 */
void rk_pack_bf16_weight(const bf16 *w, bf16 *packed, int64_t N, int64_t K) {
    pack_b_tiles((const uint8_t *)w, (uint8_t *)packed, N, 2 * K);
}

typedef struct {
    const float *bias;
    const bf16 *residual;
    int64_t ld_res, ld_out, N;
    int gelu, stream;
    bf16 *out;
    const float *ln_w, *ln_b; /* layer norm after the residual, or NULL */
    float eps;
    float *rowbuf;            /* [32, N] fp32 rows awaiting their layer norm (ln_w only) */
} bf16_epilogue_t;

static inline void store_bf16(const bf16_epilogue_t *e, bf16 *dst, __m512 lo, __m512 hi) {
    const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    if (e->stream) _mm512_stream_si512((__m512i *)dst, v); /* past the caches: no read for ownership */
    else _mm512_storeu_si512(dst, v);
}

/* rows [r0, r1) of the finished 32 x 32 block at (m0, n0) whose fp32 sums are in c (32 a row) */
static inline void epilogue_rows(const bf16_epilogue_t *e, const float *c, int64_t m0, int64_t n0, int64_t r0,
                                 int64_t r1) {
    const __m512 bb0 = e->bias ? _mm512_loadu_ps(e->bias + n0) : _mm512_setzero_ps();
    const __m512 bb1 = e->bias ? _mm512_loadu_ps(e->bias + n0 + 16) : _mm512_setzero_ps();
    for (int64_t r = r0; r < r1; r++) {
        __m512 y0 = _mm512_add_ps(_mm512_load_ps(c + r * 32), bb0);
        __m512 y1 = _mm512_add_ps(_mm512_load_ps(c + r * 32 + 16), bb1);
        if (e->gelu) { y0 = gelu_ps(y0); y1 = gelu_ps(y1); }
        if (e->residual) add_bf16_32(e->residual + (m0 + r) * e->ld_res + n0, &y0, &y1);
        if (e->rowbuf) {
            _mm512_store_ps(e->rowbuf + r * e->N + n0, y0);
            _mm512_store_ps(e->rowbuf + r * e->N + n0 + 16, y1);
        } else {
            store_bf16(e, e->out + (m0 + r) * e->ld_out + n0, y0, y1);
        }
    }
}

/* layer norm of the rows waiting in rowbuf (fp32, before any rounding), written to out in bf16 */
static void norm_rows(const bf16_epilogue_t *e, int64_t m0, int64_t rows) {
    const int64_t N = e->N;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = e->rowbuf + r * N;
        __m512 sum = _mm512_setzero_ps();
        for (int64_t n = 0; n < N; n += 16) sum = _mm512_add_ps(sum, _mm512_load_ps(row + n));
        const __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) / (float)N);
        __m512 sq = _mm512_setzero_ps();
        for (int64_t n = 0; n < N; n += 16) {
            const __m512 d = _mm512_sub_ps(_mm512_load_ps(row + n), mean);
            sq = _mm512_fmadd_ps(d, d, sq);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(sq) / (float)N + e->eps));
        bf16 *dst = e->out + (m0 + r) * e->ld_out;
        for (int64_t n = 0; n < N; n += 32) {
            const __m512 y0 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_load_ps(row + n), mean), inv),
                                              _mm512_loadu_ps(e->ln_w + n), _mm512_loadu_ps(e->ln_b + n));
            const __m512 y1 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_load_ps(row + n + 16), mean), inv),
                                              _mm512_loadu_ps(e->ln_w + n + 16), _mm512_loadu_ps(e->ln_b + n + 16));
            store_bf16(e, dst + n, y0, y1);
        }
    }
}

/* where a thread's walk over row blocks stands: the last block, whose sums wait in c[pending % 2] */
typedef struct { int64_t pending, m0, n0, rows; } gemm_state_t;

/* rows m0 .. m0 + tile_rows - 1 of x (tile_rows 16 or 32) times every column block of wp; the
   epilogue writes the first `valid` of them. Each block's epilogue runs a few rows at a time
   between the tile products of the next block (which may be the next call's); gemm_flush ends it. */
static inline void gemm_rows(const bf16 *x, int64_t ldx, int64_t m0, int64_t tile_rows, int64_t valid, int64_t K,
                             const bf16 *wp, int64_t N, const bf16_epilogue_t *e, float (*c)[32 * 32],
                             gemm_state_t *st) {
    const int64_t KB = K / 32;
    const int two = tile_rows == 32;
    const bf16 *a0 = x + m0 * ldx, *a1 = a0 + 16 * ldx;
    for (int64_t n0 = 0; n0 < N; n0 += 32) {
        const bf16 *b0 = wp + (n0 / 16) * KB * 512, *b1 = b0 + KB * 512;
        _tile_zero(4); _tile_zero(5);
        if (two) { _tile_zero(6); _tile_zero(7); }
        int64_t done = 0;
        for (int64_t kb = 0; kb < KB; kb++) {
            _tile_loadd(0, a0 + kb * 32, ldx * 2);
            _tile_loadd(2, b0 + kb * 512, 64);
            _tile_loadd(3, b1 + kb * 512, 64);
            _tile_dpbf16ps(4, 0, 2); _tile_dpbf16ps(5, 0, 3);
            if (two) {
                _tile_loadd(1, a1 + kb * 32, ldx * 2);
                _tile_dpbf16ps(6, 1, 2); _tile_dpbf16ps(7, 1, 3);
            }
            if (st->pending >= 0) { /* the previous block's epilogue, spread over this block's steps */
                const int64_t upto = (kb + 1) * st->rows / KB;
                epilogue_rows(e, c[st->pending % 2], st->m0, st->n0, done, upto);
                done = upto;
            }
        }
        /* the previous block was the last of its rows: they are whole, normalize them (before
           this block's epilogue, one step later, refills the row buffer) */
        if (st->pending >= 0 && e->rowbuf && st->n0 == N - 32) norm_rows(e, st->m0, st->rows);
        st->pending++;
        st->m0 = m0; st->n0 = n0; st->rows = valid;
        float *cj = c[st->pending % 2];
        _tile_stored(4, cj, 128); _tile_stored(5, cj + 16, 128);
        if (two) { _tile_stored(6, cj + 512, 128); _tile_stored(7, cj + 528, 128); }
    }
}

static inline void gemm_flush(const bf16_epilogue_t *e, float (*c)[32 * 32], gemm_state_t *st) {
    if (st->pending < 0) return;
    epilogue_rows(e, c[st->pending % 2], st->m0, st->n0, 0, st->rows);
    if (e->rowbuf) norm_rows(e, st->m0, st->rows);
    st->pending = -1;
}

/* out as in the header, then a layer norm over each row where ln_w is given (weight ln_w, bias
   ln_b, both fp32 [N]); x [M, K] with row stride ldx, wp packed by rk_pack_bf16_weight, bias fp32
   [N] or NULL, residual bf16 [M, N] (row stride ld_res) or NULL. stream: write out with
   non-temporal stores (for outputs larger than the caches; out 64-byte aligned). M % 16 == 0,
   K % 32 == 0, N % 32 == 0, else 1; 2 when a thread could not allocate its row buffer. */
int rk_bf16_linear(const bf16 *x, int64_t ldx, int64_t M, int64_t K, const bf16 *wp, const float *bias, int64_t N,
                   const bf16 *residual, int64_t ld_res, int gelu, bf16 *out, int64_t ld_out, const float *ln_w,
                   const float *ln_b, float eps, int stream, int threads) {
    if (M % 16 || K % 32 || N % 32 || (ln_w && !ln_b)) return 1;
    stream = stream && (uintptr_t)out % 64 == 0 && (ld_out * 2) % 64 == 0;
    const int64_t MB = (M + 31) / 32;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        bf16_epilogue_t e = {bias, residual, ld_res, ld_out, N, gelu, stream, out, ln_w, ln_b, eps, NULL};
        if (ln_w) e.rowbuf = aligned_alloc(64, (size_t)32 * N * sizeof(float));
        if (ln_w && !e.rowbuf) failed = 1;
        else {
        configure_tiles();
        float c[2][32 * 32] __attribute__((aligned(64)));
        gemm_state_t st = {-1, 0, 0, 0};
#pragma omp for schedule(dynamic, 2) nowait
        for (int64_t mb = 0; mb < MB; mb++) {
            const int64_t rows = M - mb * 32 >= 32 ? 32 : 16;
            gemm_rows(x, ldx, mb * 32, rows, rows, K, wp, N, &e, c, &st);
        }
        gemm_flush(&e, c, &st);
        if (stream) _mm_sfence(); /* streamed stores visible before the threads join */
        _tile_release();
        }
        free(e.rowbuf);
    }
    return failed ? 2 : 0;
}
