/* Packed variable-length self-attention with AMX-BF16 tiles (see rerankit/engine/native_attention.py).

   qkv: [rows, ld_qkv] bf16, row r of sequence b at offsets[b] + r, the query, key and value of head
   h at columns h*dim, hidden + h*dim and 2*hidden + h*dim (hidden = heads*dim). out: [rows, ld_out]
   bf16, head h at columns h*dim. Scores in fp32, probabilities rounded to bf16 for the value
   product (as oneDNN's and ATen's bf16 flash attention do), output scaled by 1/sum in fp32.
   Every thread configures the tiles it uses and releases them when done. */
/* amx_common.h comes first (native.py) */

typedef struct {
    const bf16 *qkv;
    bf16 *out;
    const int64_t *offsets;
    const float *bias; /* NULL or [heads, max_len, max_len], added to the scaled scores */
    int64_t batch, heads, dim, hidden, ld_qkv, ld_out, max_len;
    float scale;
    int64_t next; /* the next (sequence, head group) task */
} job_t;

typedef struct { bf16 *kp, *vp, *p, *q; float *s, *o; } scratch_t;

static inline void transpose_16x16(__m512i r[16]) {
    /* r[i][j] -> r[j][i] for 32-bit elements: pairs, then quads within 128-bit lanes, then lanes */
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* u[g*4 + c], lane l: rows 4g..4g+3 of column 4l + c */
        u[g * 4 + 0] = _mm512_unpacklo_epi64(t[g * 4], t[g * 4 + 2]);
        u[g * 4 + 1] = _mm512_unpackhi_epi64(t[g * 4], t[g * 4 + 2]);
        u[g * 4 + 2] = _mm512_unpacklo_epi64(t[g * 4 + 1], t[g * 4 + 3]);
        u[g * 4 + 3] = _mm512_unpackhi_epi64(t[g * 4 + 1], t[g * 4 + 3]);
    }
    for (int c = 0; c < 4; c++) {
        const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
        const __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44), v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
        r[8 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
    }
}

static void pack_keys(const job_t *job, const bf16 *K, int64_t n, int64_t jb, bf16 *kp) {
    /* B tiles of S = Q K^T for keys jb*16 .. jb*16+15: per 32-wide chunk c of the (zero-padded)
       head dimension, 16 rows (dimension pairs) of 16 keys x 2 bf16:
       kp32[((jb * DC + c) * 16 + p) * 16 + jj] = K32[jb*16+jj][c*16+p] */
    const int64_t DC = (job->dim + 31) / 32, P = job->dim / 2;
    uint32_t *kp32 = (uint32_t *)kp;
    for (int64_t c = 0; c < DC; c++) {
        const __mmask16 m = P - c * 16 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (P - c * 16)) - 1);
        __m512i r[16];
        for (int64_t jj = 0; jj < 16; jj++)
            r[jj] = jb * 16 + jj < n ? _mm512_maskz_loadu_epi32(m, (const uint32_t *)(K + (jb * 16 + jj) * job->ld_qkv) + c * 16)
                                     : _mm512_setzero_si512();
        transpose_16x16(r);
        for (int64_t p = 0; p < 16; p++) _mm512_storeu_si512(kp32 + ((jb * DC + c) * 16 + p) * 16, r[p]);
    }
}

static void pack_values(const job_t *job, const bf16 *V, int64_t n, int64_t jp0, int64_t jp1, bf16 *vp) {
    /* B tiles of O = P V, key pairs jp0 .. jp1-1: vp[jp * 2Dp + d * 2 + e] = V[2jp + e][d], zero
       past n and past dim */
    const int64_t D = job->dim, Dp = (D + 31) / 32 * 32;
    __m512i lo_idx, hi_idx;
    {
        short lo[32], hi[32];
        for (int l = 0; l < 32; l++) { lo[l] = (short)((l / 2) | (l % 2 ? 32 : 0)); hi[l] = (short)((16 + l / 2) | (l % 2 ? 32 : 0)); }
        lo_idx = _mm512_loadu_si512(lo);
        hi_idx = _mm512_loadu_si512(hi);
    }
    for (int64_t jp = jp0; jp < jp1; jp++) {
        bf16 *dst = vp + jp * 2 * Dp;
        for (int64_t d0 = 0; d0 < Dp; d0 += 32) {
            const __mmask32 m = D - d0 >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << (D - d0)) - 1);
            __m512i a = 2 * jp < n ? _mm512_maskz_loadu_epi16(m, V + 2 * jp * job->ld_qkv + d0) : _mm512_setzero_si512();
            __m512i b = 2 * jp + 1 < n ? _mm512_maskz_loadu_epi16(m, V + (2 * jp + 1) * job->ld_qkv + d0) : _mm512_setzero_si512();
            _mm512_storeu_si512(dst + 2 * d0, _mm512_permutex2var_epi16(a, lo_idx, b));
            _mm512_storeu_si512(dst + 2 * d0 + 32, _mm512_permutex2var_epi16(a, hi_idx, b));
        }
    }
}

static void attend(const job_t *job, int64_t start, int64_t n, int64_t h, const bf16 *kp, const bf16 *vp,
                   scratch_t *w) {
    /* head h of one sequence, its keys and values packed (kp, vp) by pack_keys and pack_values */
    const int64_t D = job->dim, Dp = (D + 31) / 32 * 32, DC = Dp / 32;
    const int64_t nb = (n + 15) / 16, sw = nb * 16, npad = (n + 31) / 32 * 32;
    const bf16 *Q = job->qkv + start * job->ld_qkv + h * D;
    const __m512 scale = _mm512_set1_ps(job->scale);
    const __mmask16 tail = (n % 16) ? (__mmask16)((1u << (n % 16)) - 1) : (__mmask16)0xFFFF;
    float inv[16];
    for (int64_t i0 = 0; i0 < n; i0 += 16) {
        const int64_t rows = n - i0 < 16 ? n - i0 : 16;
        /* the block's queries, contiguous and zero-padded to 16 rows */
        if (rows < 16 || D < Dp) memset(w->q, 0, 16 * Dp * sizeof(bf16));
        for (int64_t r = 0; r < rows; r++) memcpy(w->q + r * Dp, Q + (i0 + r) * job->ld_qkv, D * sizeof(bf16));
        if (DC == 1) _tile_loadd(1, w->q, Dp * 2);
        for (int64_t jb = 0; jb < nb; jb += 4) { /* four 16x16 score tiles in flight */
            const int64_t cnt = nb - jb < 4 ? nb - jb : 4;
            const bf16 *kb = kp + jb * DC * 512;
            _tile_zero(4);
            if (cnt > 1) _tile_zero(5);
            if (cnt > 2) _tile_zero(6);
            if (cnt > 3) _tile_zero(7);
            for (int64_t c = 0; c < DC; c++) {
                if (DC > 1) _tile_loadd(1, w->q + c * 32, Dp * 2);
                _tile_loadd(2, kb + c * 512, 64);
                _tile_dpbf16ps(4, 1, 2);
                if (cnt > 1) { _tile_loadd(3, kb + (DC + c) * 512, 64); _tile_dpbf16ps(5, 1, 3); }
                if (cnt > 2) { _tile_loadd(0, kb + (2 * DC + c) * 512, 64); _tile_dpbf16ps(6, 1, 0); }
                if (cnt > 3) { _tile_loadd(2, kb + (3 * DC + c) * 512, 64); _tile_dpbf16ps(7, 1, 2); }
            }
            _tile_stored(4, w->s + jb * 16, sw * 4);
            if (cnt > 1) _tile_stored(5, w->s + jb * 16 + 16, sw * 4);
            if (cnt > 2) _tile_stored(6, w->s + jb * 16 + 32, sw * 4);
            if (cnt > 3) _tile_stored(7, w->s + jb * 16 + 48, sw * 4);
        }
        for (int64_t r = 0; r < 16; r++) {
            float *srow = w->s + r * sw;
            const float *brow = job->bias ? job->bias + (h * job->max_len + (i0 + r < n ? i0 + r : 0)) * job->max_len : NULL;
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int64_t jb = 0; jb < nb; jb++) {
                const __mmask16 m = jb == nb - 1 ? tail : (__mmask16)0xFFFF;
                __m512 x = _mm512_mul_ps(_mm512_loadu_ps(srow + jb * 16), scale);
                if (brow) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, brow + jb * 16));
                _mm512_storeu_ps(srow + jb * 16, x);
                mx = _mm512_mask_max_ps(mx, m, mx, x);
            }
            const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
            __m512 sum = _mm512_setzero_ps();
            bf16 *prow = w->p + r * npad;
            for (int64_t jb = 0; jb < npad / 16; jb += 2) {
                __m512 e0 = _mm512_setzero_ps(), e1 = _mm512_setzero_ps();
                if (jb < nb) {
                    const __mmask16 m = jb == nb - 1 ? tail : (__mmask16)0xFFFF;
                    e0 = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_loadu_ps(srow + jb * 16), vmax)));
                }
                if (jb + 1 < nb) {
                    const __mmask16 m = jb + 1 == nb - 1 ? tail : (__mmask16)0xFFFF;
                    e1 = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_loadu_ps(srow + jb * 16 + 16), vmax)));
                }
                sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
                _mm512_storeu_si512(prow + jb * 16, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
            }
            inv[r] = 1.0f / _mm512_reduce_add_ps(sum);
        }
        for (int64_t dg = 0; dg < Dp; dg += 64) {
            /* 64 columns: four accumulators; 32 columns: two, and two more for the odd key steps */
            const int four = Dp - dg >= 64;
            const int64_t steps = npad / 32;
            _tile_zero(4); _tile_zero(5); _tile_zero(6); _tile_zero(7);
            for (int64_t ks = 0; ks < steps; ks++) {
                const bf16 *vrow = vp + ks * 16 * 2 * Dp + dg * 2;
                if (four) {
                    _tile_loadd(1, w->p + ks * 32, npad * 2);
                    _tile_loadd(2, vrow, 4 * Dp); _tile_dpbf16ps(4, 1, 2);
                    _tile_loadd(3, vrow + 32, 4 * Dp); _tile_dpbf16ps(5, 1, 3);
                    _tile_loadd(0, vrow + 64, 4 * Dp); _tile_dpbf16ps(6, 1, 0);
                    _tile_loadd(2, vrow + 96, 4 * Dp); _tile_dpbf16ps(7, 1, 2);
                } else if (ks % 2 == 0) {
                    _tile_loadd(1, w->p + ks * 32, npad * 2);
                    _tile_loadd(2, vrow, 4 * Dp); _tile_dpbf16ps(4, 1, 2);
                    _tile_loadd(3, vrow + 32, 4 * Dp); _tile_dpbf16ps(5, 1, 3);
                } else {
                    _tile_loadd(0, w->p + ks * 32, npad * 2);
                    _tile_loadd(2, vrow, 4 * Dp); _tile_dpbf16ps(6, 0, 2);
                    _tile_loadd(3, vrow + 32, 4 * Dp); _tile_dpbf16ps(7, 0, 3);
                }
            }
            _tile_stored(4, w->o, 256);
            _tile_stored(5, w->o + 16, 256);
            _tile_stored(6, w->o + 32, 256);
            _tile_stored(7, w->o + 48, 256);
            if (!four)
                for (int64_t r = 0; r < 16; r++)
                    for (int64_t d = 0; d < 32; d += 16)
                        _mm512_storeu_ps(w->o + r * 64 + d, _mm512_add_ps(_mm512_loadu_ps(w->o + r * 64 + d), _mm512_loadu_ps(w->o + r * 64 + 32 + d)));
            const int64_t cols = D - dg < 64 ? D - dg : 64;
            for (int64_t r = 0; r < rows; r++) {
                bf16 *dst = job->out + (start + i0 + r) * job->ld_out + h * D + dg;
                const __m512 f = _mm512_set1_ps(inv[r]);
                for (int64_t d = 0; d < cols; d += 16) /* dim is a multiple of 16 */
                    _mm256_storeu_si256((__m256i *)(dst + d), (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(w->o + r * 64 + d), f)));
            }
        }
    }
}

static void attend_sequence(const job_t *job, int64_t b, int64_t h0, int64_t h1, scratch_t *w) {
    /* heads h0..h1-1 of sequence b: every head's keys and values are packed first, so the rows
       stream through the cache once and the tile loads never wait on the packing stores */
    const int64_t start = job->offsets[b], n = job->offsets[b + 1] - start;
    if (n <= 0) return;
    const int64_t Dp = (job->dim + 31) / 32 * 32, npad = (n + 31) / 32 * 32, nb = (n + 15) / 16;
    const int64_t kstride = nb * 16 * Dp, vstride = npad * Dp;
    for (int64_t jb = 0; jb < nb; jb++) /* row blocks outside: the reads walk along each row */
        for (int64_t h = h0; h < h1; h++) {
            const bf16 *K = job->qkv + start * job->ld_qkv + job->hidden + h * job->dim;
            pack_keys(job, K, n, jb, w->kp + (h - h0) * kstride);
            const int64_t jp1 = jb == nb - 1 ? npad / 2 : (jb + 1) * 8; /* the last block zero-fills to npad */
            pack_values(job, K + job->hidden, n, jb * 8, jp1, w->vp + (h - h0) * vstride);
        }
    for (int64_t h = h0; h < h1; h++)
        attend(job, start, n, h, w->kp + (h - h0) * kstride, w->vp + (h - h0) * vstride, w);
}

/* a thread's buffers for attend_sequence over `heads` heads of sequences up to max_len; 0 when
   out of memory (scratch_free releases what was allocated either way) */
static int scratch_alloc(scratch_t *w, int64_t heads, int64_t dim, int64_t max_len) {
    const int64_t D = (dim + 31) / 32 * 32, Lpad = (max_len + 31) / 32 * 32;
    w->kp = aligned_alloc(64, (size_t)heads * Lpad * D * sizeof(bf16));
    w->vp = aligned_alloc(64, (size_t)heads * Lpad * D * sizeof(bf16));
    w->p = aligned_alloc(64, (size_t)16 * Lpad * sizeof(bf16));
    w->q = aligned_alloc(64, (size_t)16 * D * sizeof(bf16));
    w->s = aligned_alloc(64, (size_t)16 * Lpad * sizeof(float));
    w->o = aligned_alloc(64, (size_t)16 * 64 * sizeof(float));
    return w->kp && w->vp && w->p && w->q && w->s && w->o;
}

static void scratch_free(scratch_t *w) { free(w->kp); free(w->vp); free(w->p); free(w->q); free(w->s); free(w->o); }

static int work(job_t *job, int64_t groups) {
    /* one thread's share: scratch, tile configuration, (sequence, head group) tasks taken dynamically */
    const int64_t per_group = (job->heads + groups - 1) / groups;
    scratch_t w;
    int ok = scratch_alloc(&w, per_group, job->dim, job->max_len);
    if (ok) {
        configure_tiles();
        for (;;) {
            int64_t t;
#pragma omp atomic capture
            t = job->next++;
            if (t >= job->batch * groups) break;
            const int64_t b = t / groups, h0 = t % groups * per_group;
            attend_sequence(job, b, h0, h0 + per_group < job->heads ? h0 + per_group : job->heads, &w);
        }
        _tile_release(); /* leave the thread's tiles as found: oneDNN and ATen configure their own */
    }
    scratch_free(&w);
    return ok;
}

/* 0 on success; 1: unsupported shape (dim not a multiple of 16, or a sequence longer than
   max_len); 2: out of memory. Runs on the OpenMP team of the calling thread (torch's, as the
   library links the libgomp that torch has loaded). */
int rk_packed_attention(const bf16 *qkv, bf16 *out, const int64_t *offsets, const float *bias,
                        int64_t batch, int64_t heads, int64_t dim, int64_t ld_qkv, int64_t ld_out,
                        int64_t max_len, int threads) {
    if (dim % 16 || dim < 16 || heads < 1 || max_len < 1) return 1;
    for (int64_t b = 0; b < batch; b++)
        if (offsets[b + 1] - offsets[b] > max_len || offsets[b + 1] < offsets[b]) return 1;
    job_t job = {qkv, out, offsets, bias, batch, heads, dim, heads * dim, ld_qkv, ld_out, max_len,
                 1.0f / sqrtf((float)dim), 0};
    int failed = 0;
    if (threads < 1) threads = 1;
    /* whole sequences per task when there are enough of them to share out, else single heads */
    const int64_t groups = batch >= 4 * threads ? 1 : heads;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    failed |= !work(&job, groups);
    return failed ? 2 : 0;
}
