/* What rerankit's AMX kernels share: bf16 storage, tile configuration and packing, AMX permission, exp, GELU.
   native.py compiles this file in front of each kernel's source. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef uint16_t bf16;

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg_t;

int rk_amx_init(void) { return (int)syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */); }

/* eight 16 x 64-byte tiles: every kernel here uses that shape */
static void configure_tiles(void) {
    tilecfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.colsb[t] = 64; cfg.rows[t] = 16; }
    _tile_loadconfig(&cfg);
}

/* weight rows [N][row_bytes] -> B tiles [N/16][row_bytes/64][16 rows][16 cols x 4 bytes], as
   TDPBSSD (4 int8 of K per 4 bytes) and TDPBF16PS (2 bf16) read them; N % 16 == 0, row_bytes % 64 == 0 */
static void pack_b_tiles(const uint8_t *w, uint8_t *packed, int64_t N, int64_t row_bytes) {
    const int64_t KB = row_bytes / 64;
    for (int64_t nb = 0; nb < N / 16; nb++)
        for (int64_t kb = 0; kb < KB; kb++)
            for (int64_t r = 0; r < 16; r++)
                for (int64_t c = 0; c < 16; c++)
                    memcpy(packed + ((nb * KB + kb) * 16 + r) * 64 + c * 4, w + (nb * 16 + c) * row_bytes + kb * 64 + r * 4, 4);
}

static inline __m512 exp_ps(__m512 x) {
    /* 2^n * 2^f with n = round(x log2 e), |f| <= 0.5; degree-5 polynomial (rel. error < 2e-7) */
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.3333558146e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108665e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650696e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718056e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 bf16_to_ps(__m256i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)); }

/* y0, y1 += the 32 bf16 at res (a residual row's slice) */
static inline void add_bf16_32(const bf16 *res, __m512 *y0, __m512 *y1) {
    *y0 = _mm512_add_ps(*y0, bf16_to_ps(_mm256_loadu_si256((const __m256i *)res)));
    *y1 = _mm512_add_ps(*y1, bf16_to_ps(_mm256_loadu_si256((const __m256i *)(res + 16))));
}

static inline __m512 gelu_ps(__m512 x) {
    /* x/2 (1 + erf(x / sqrt 2)); erf(a) = 1 - 1/(1 + a1 a + ... + a6 a^6)^16 for a >= 0
       (Abramowitz & Stegun 7.1.28, abs. error < 3e-7): no exp, one reciprocal */
    const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    const __m512 a = _mm512_abs_ps(z);
    __m512 p = _mm512_fmadd_ps(a, _mm512_set1_ps(0.0000430638f), _mm512_set1_ps(0.0002765672f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(0.0001520143f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(0.0092705272f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(0.0422820123f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(0.0705230784f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(1.0f));
    __m512 t = _mm512_rcp14_ps(p); /* 1 / p: 14 bits, then one Newton step */
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(p, t, _mm512_set1_ps(2.0f)));
    t = _mm512_mul_ps(t, t); /* t^16 */
    t = _mm512_mul_ps(t, t);
    t = _mm512_mul_ps(t, t);
    t = _mm512_mul_ps(t, t);
    __m512 erf_abs = _mm512_sub_ps(_mm512_set1_ps(1.0f), t);
    __m512 erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs),
                   _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000u))));
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), _mm512_add_ps(erf, _mm512_set1_ps(1.0f)));
}
