// AVX2 + FMA + F16C code kernels for HNSW traversal (index/hnsw_sq.h). Compiled with those flags
// only; selected by sq::active_kernels() when the active distance table is avx2 or avx512.
// Two accumulators of 8 lanes cover 16 dimensions per step (the rows are short: 128 dims are 8
// steps, so more accumulators would not pay for their final reduction); the tail is scalar.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "index/hnsw_sq.h"

namespace vecstore {
namespace index {
namespace sq {
namespace {

inline float hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 sh = _mm_movehdup_ps(lo);
    lo = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, lo);
    return _mm_cvtss_f32(_mm_add_ss(lo, sh));
}

// 8 codes starting at element i, widened to float32.
struct U8 {
    static __m256 load(const uint8_t* p, size_t i) {
        const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i));
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
    }
    static float scalar(const uint8_t* p, size_t i) { return static_cast<float>(p[i]); }
};
struct F16 {
    static __m256 load(const uint8_t* p, size_t i) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
    }
    static float scalar(const uint8_t* p, size_t i) {
        return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(p[2 * i] | (p[2 * i + 1] << 8))));
    }
};
struct BF16 {
    static __m256 load(const uint8_t* p, size_t i) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static float scalar(const uint8_t* p, size_t i) {
        const uint32_t u = (uint32_t(p[2 * i]) | (uint32_t(p[2 * i + 1]) << 8)) << 16;
        return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(u))));
    }
};

// sum (q_i - w_i * c_i)^2, w = scale (SQ8) or 1 (FP16/BF16, kScaled false).
template <class L, bool kScaled>
float l2(const float* q, const float* scale, const uint8_t* code, size_t dim) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        const __m256 c0 = L::load(code, i), c1 = L::load(code, i + 8);
        const __m256 d0 = kScaled ? _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i), c0,
                                                     _mm256_loadu_ps(q + i))
                                  : _mm256_sub_ps(_mm256_loadu_ps(q + i), c0);
        const __m256 d1 = kScaled ? _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i + 8), c1,
                                                     _mm256_loadu_ps(q + i + 8))
                                  : _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), c1);
        a0 = _mm256_fmadd_ps(d0, d0, a0);
        a1 = _mm256_fmadd_ps(d1, d1, a1);
    }
    if (i + 8 <= dim) {
        const __m256 c0 = L::load(code, i);
        const __m256 d0 = kScaled ? _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i), c0,
                                                     _mm256_loadu_ps(q + i))
                                  : _mm256_sub_ps(_mm256_loadu_ps(q + i), c0);
        a0 = _mm256_fmadd_ps(d0, d0, a0);
        i += 8;
    }
    float acc = hsum(_mm256_add_ps(a0, a1));
    for (; i < dim; ++i) {
        const float d = q[i] - (kScaled ? scale[i] : 1.0f) * L::scalar(code, i);
        acc += d * d;
    }
    return acc;
}

template <class L>
float ip(const float* q, const uint8_t* code, size_t dim) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), L::load(code, i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), L::load(code, i + 8), a1);
    }
    if (i + 8 <= dim) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), L::load(code, i), a0);
        i += 8;
    }
    float acc = hsum(_mm256_add_ps(a0, a1));
    for (; i < dim; ++i) acc += q[i] * L::scalar(code, i);
    return acc;
}

}  // namespace

float sq8_l2_avx2(const float* q, const float* s, const uint8_t* c, size_t dim) {
    return l2<U8, true>(q, s, c, dim);
}
float sq8_ip_avx2(const float* q, const float*, const uint8_t* c, size_t dim) {
    return ip<U8>(q, c, dim);
}
float f16_l2_avx2(const float* q, const float* s, const uint8_t* c, size_t dim) {
    return l2<F16, false>(q, s, c, dim);
}
float f16_ip_avx2(const float* q, const float*, const uint8_t* c, size_t dim) {
    return ip<F16>(q, c, dim);
}
float bf16_l2_avx2(const float* q, const float* s, const uint8_t* c, size_t dim) {
    return l2<BF16, false>(q, s, c, dim);
}
float bf16_ip_avx2(const float* q, const float*, const uint8_t* c, size_t dim) {
    return ip<BF16>(q, c, dim);
}

}  // namespace sq
}  // namespace index
}  // namespace vecstore
