/* int8 linear layers on AMX tiles (see rerankit/engine/int8_layers.py).

   y[m, n] = act(xs[m] * ws[n] * sum_k xq[m, k] w[n, k] + bias[n]) + residual[m, n]

   Activations are quantized per row (xs: one scale per token), weights per output channel (ws),
   both symmetric int8; products accumulate exactly in int32 (AMX TDPBSSD) and the epilogue runs
   in fp32. act is nothing or GELU (erf form, as BERT's). The result is written in bf16, or
   quantized per row again (the input of the next int8 layer, without a bf16 round trip).
   Every OpenMP thread configures the tiles it uses and releases them when done. */
/* amx_common.h comes first (native.py) */

/* w int8 [N, K] -> B tiles [N/16][K/64][16 rows][16 cols x 4]; N % 16 == 0, K % 64 == 0 */
void rk_pack_int8_weight(const int8_t *w, int8_t *packed, int64_t N, int64_t K) {
    pack_b_tiles((const uint8_t *)w, (uint8_t *)packed, N, K);
}

/* per-row symmetric int8 of x * channel (channel: NULL or [K] factors, the inverse of the
   smoothing folded into the weights): q = round(x / s), s = max|x| / 127 per row. K % 16 == 0. */
void rk_quantize_rows(const bf16 *x, int64_t M, int64_t K, int64_t ld, const float *channel, int8_t *q,
                      float *scales, int threads) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 64)
    for (int64_t m = 0; m < M; m++) {
        const bf16 *row = x + m * ld;
        __m512 mx = _mm512_setzero_ps();
        for (int64_t k = 0; k < K; k += 16) {
            __m512 v = bf16_to_ps(_mm256_loadu_si256((const __m256i *)(row + k)));
            if (channel) v = _mm512_mul_ps(v, _mm512_loadu_ps(channel + k));
            mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
        }
        const float amax = _mm512_reduce_max_ps(mx), s = amax > 0 ? amax / 127.0f : 1.0f;
        scales[m] = s;
        const __m512 inv = _mm512_set1_ps(1.0f / s);
        for (int64_t k = 0; k < K; k += 16) {
            __m512 v = _mm512_mul_ps(bf16_to_ps(_mm256_loadu_si256((const __m256i *)(row + k))), inv);
            if (channel) v = _mm512_mul_ps(v, _mm512_loadu_ps(channel + k));
            _mm_storeu_si128((__m128i *)(q + m * K + k), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
        }
    }
}

typedef struct {
    const float *xs, *ws, *bias;
    const bf16 *residual;
    int64_t ld_res, N, ld_out;
    int gelu;
    bf16 *out;      /* bf16 output, or NULL when rowbuf collects fp32 rows for quantization */
    float *rowbuf;  /* [32, N] */
} epilogue_t;

/* rows [r0, r1) of the finished 32 x 32 block at (m0, n0) whose int32 sums are in c (32 a row) */
static inline void epilogue(const epilogue_t *e, const int32_t *c, int64_t m0, int64_t n0, int64_t r0, int64_t r1) {
    const __m512 w0 = _mm512_loadu_ps(e->ws + n0), w1 = _mm512_loadu_ps(e->ws + n0 + 16);
    const __m512 bb0 = e->bias ? _mm512_loadu_ps(e->bias + n0) : _mm512_setzero_ps();
    const __m512 bb1 = e->bias ? _mm512_loadu_ps(e->bias + n0 + 16) : _mm512_setzero_ps();
    for (int64_t r = r0; r < r1; r++) {
        const __m512 sx = _mm512_set1_ps(e->xs[m0 + r]);
        __m512 y0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + r * 32)), _mm512_mul_ps(sx, w0), bb0);
        __m512 y1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + r * 32 + 16)), _mm512_mul_ps(sx, w1), bb1);
        if (e->gelu) { y0 = gelu_ps(y0); y1 = gelu_ps(y1); }
        if (e->residual) add_bf16_32(e->residual + (m0 + r) * e->ld_res + n0, &y0, &y1);
        if (e->out) {
            _mm512_storeu_si512(e->out + (m0 + r) * e->ld_out + n0, (__m512i)_mm512_cvtne2ps_pbh(y1, y0));
        } else {
            _mm512_storeu_ps(e->rowbuf + r * e->N + n0, y0);
            _mm512_storeu_ps(e->rowbuf + r * e->N + n0 + 16, y1);
        }
    }
}

static void quantize_fp32_rows(const float *x, int64_t rows, int64_t K, int8_t *q, float *scales, float offset) {
    /* per row: symmetric int8 (offset 0), or unsigned uint8 of x + offset (offset > 0: for inputs
       bounded below by -offset, as GELU's by -0.17, which then use all 256 steps instead of ~128) */
    for (int64_t m = 0; m < rows; m++) {
        const float *row = x + m * K;
        __m512 mx = _mm512_setzero_ps();
        for (int64_t k = 0; k < K; k += 16) {
            const __m512 v = _mm512_loadu_ps(row + k);
            mx = _mm512_max_ps(mx, offset > 0 ? v : _mm512_abs_ps(v));
        }
        const float amax = _mm512_reduce_max_ps(mx) + offset, s = amax > 0 ? amax / (offset > 0 ? 255.0f : 127.0f) : 1.0f;
        scales[m] = s;
        const __m512 inv = _mm512_set1_ps(1.0f / s), off = _mm512_set1_ps(offset);
        for (int64_t k = 0; k < K; k += 16) {
            const __m512 v = _mm512_mul_ps(_mm512_add_ps(_mm512_loadu_ps(row + k), off), inv);
            const __m128i b = offset > 0 ? _mm512_cvtusepi32_epi8(_mm512_max_epi32(_mm512_cvtps_epi32(v), _mm512_setzero_si512()))
                                         : _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v));
            _mm_storeu_si128((__m128i *)(q + m * K + k), b);
        }
    }
}

/* out = bf16(act(...) + residual) as in the header; M % 16 == 0, K % 64 == 0, N % 32 == 0 (else 1).
   x_unsigned: xq holds uint8 (products by TDPBUSD; the caller folds the offset into bias).
   With out == NULL the rows are quantized per row instead, into q_out [M, N] and q_scales [M]
   (unsigned around -q_offset when q_offset > 0, see quantize_fp32_rows).
   Returns 2 when a thread could not allocate its row buffer. */
int rk_int8_linear(const int8_t *xq, const float *xs, int64_t M, int64_t K, const int8_t *wp, const float *ws,
                   const float *bias, int64_t N, const bf16 *residual, int64_t ld_res, int gelu, bf16 *out,
                   int64_t ld_out, int8_t *q_out, float *q_scales, int threads, int x_unsigned, float q_offset) {
    if (M % 16 || K % 64 || N % 32 || (!out && (!q_out || !q_scales))) return 1;
    const int64_t KB = K / 64, MB = (M + 31) / 32;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        epilogue_t e = {xs, ws, bias, residual, ld_res, N, ld_out, gelu, out, NULL};
        if (!out) e.rowbuf = aligned_alloc(64, (size_t)32 * N * sizeof(float));
        if (!out && !e.rowbuf) failed = 1;
        else {
        configure_tiles();
        int32_t c[2][32 * 32] __attribute__((aligned(64)));
        /* row blocks handed out as threads free up: cores of a VM need not run at one speed (on the
           2-core development VM one ran ~30% slower), and equal static halves wait for the slower */
#pragma omp for schedule(dynamic, 2)
        for (int64_t mb = 0; mb < MB; mb++) {
            const int64_t m0 = mb * 32;
            const int two = M - m0 >= 32;
            const int64_t rows = two ? 32 : 16;
            const int8_t *a0 = xq + m0 * K, *a1 = a0 + 16 * K;
            for (int64_t n0 = 0, j = 0; n0 < N; n0 += 32, j++) {
                /* the tiles of block j compute while the epilogue of block j - 1 runs, a few rows
                   after each step's products (the AMX unit never waits for the vector units) */
                const int8_t *b0 = wp + (n0 / 16) * KB * 1024, *b1 = b0 + KB * 1024;
                _tile_zero(4); _tile_zero(5);
                if (two) { _tile_zero(6); _tile_zero(7); }
                for (int64_t kb = 0, done = 0; kb < KB; kb++) {
                    _tile_loadd(0, a0 + kb * 64, K);
                    _tile_loadd(2, b0 + kb * 1024, 64);
                    _tile_loadd(3, b1 + kb * 1024, 64);
                    if (x_unsigned) { _tile_dpbusd(4, 0, 2); _tile_dpbusd(5, 0, 3); }
                    else { _tile_dpbssd(4, 0, 2); _tile_dpbssd(5, 0, 3); }
                    if (two) {
                        _tile_loadd(1, a1 + kb * 64, K);
                        if (x_unsigned) { _tile_dpbusd(6, 1, 2); _tile_dpbusd(7, 1, 3); }
                        else { _tile_dpbssd(6, 1, 2); _tile_dpbssd(7, 1, 3); }
                    }
                    if (j > 0) {
                        const int64_t upto = (kb + 1) * rows / KB;
                        epilogue(&e, c[(j - 1) % 2], m0, n0 - 32, done, upto);
                        done = upto;
                    }
                }
                int32_t *cj = c[j % 2];
                _tile_stored(4, cj, 128); _tile_stored(5, cj + 16, 128);
                if (two) { _tile_stored(6, cj + 512, 128); _tile_stored(7, cj + 528, 128); }
            }
            epilogue(&e, c[(N / 32 - 1) % 2], m0, N - 32, 0, rows);
            if (!out) quantize_fp32_rows(e.rowbuf, rows, N, q_out + m0 * N, q_scales + m0, q_offset);
        }
        _tile_release();
        }
        free(e.rowbuf);
    }
    return failed ? 2 : 0;
}
