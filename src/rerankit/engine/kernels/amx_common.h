/* What rerankit's AMX kernels share: bf16 storage, tile configuration, AMX permission, exp, GELU.
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
