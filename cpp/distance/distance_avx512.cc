// AVX-512 (F, BW, VL, DQ with FMA and F16C) kernels. Same structure as distance_avx2.cc at twice the
// width; selected only on CPUs that report all of F/BW/VL/DQ (dispatch.cc). Extensions (VNNI, BF16,
// VPOPCNTDQ) live in distance_avx512_ext.cc so this file runs on every AVX-512 CPU.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "distance/distance.h"
#include "distance/scalar.h"

namespace vecstore {
namespace distance {
namespace {

inline const __m256i* as_m256i(const void* p) { return static_cast<const __m256i*>(p); }

struct F32 {
    static __m512 load(const void* p, size_t k) {
        return _mm512_loadu_ps(static_cast<const float*>(p) + k);
    }
    static float scalar(const void* p, size_t k) { return load_f32(p, k); }
};
struct F16 {
    static __m512 load(const void* p, size_t k) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(as_m256i(static_cast<const uint16_t*>(p) + k)));
    }
    static float scalar(const void* p, size_t k) { return load_f16(p, k); }
};
struct BF16 {
    static __m512 load(const void* p, size_t k) {
        const __m256i h = _mm256_loadu_si256(as_m256i(static_cast<const uint16_t*>(p) + k));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    static float scalar(const void* p, size_t k) { return load_bf16(p, k); }
};

template <class L>
void l2_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 32 <= dim; k += 32) {
            const __m512 d0 = _mm512_sub_ps(L::load(q, k), L::load(row, k));
            const __m512 d1 = _mm512_sub_ps(L::load(q, k + 16), L::load(row, k + 16));
            a0 = _mm512_fmadd_ps(d0, d0, a0);
            a1 = _mm512_fmadd_ps(d1, d1, a1);
        }
        for (; k + 16 <= dim; k += 16) {
            const __m512 d0 = _mm512_sub_ps(L::load(q, k), L::load(row, k));
            a0 = _mm512_fmadd_ps(d0, d0, a0);
        }
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; k < dim; ++k) {
            const float d = L::scalar(q, k) - L::scalar(row, k);
            sum += d * d;
        }
        out[i] = sum;
    }
}

template <class L>
void ip_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 32 <= dim; k += 32) {
            a0 = _mm512_fmadd_ps(L::load(q, k), L::load(row, k), a0);
            a1 = _mm512_fmadd_ps(L::load(q, k + 16), L::load(row, k + 16), a1);
        }
        for (; k + 16 <= dim; k += 16) a0 = _mm512_fmadd_ps(L::load(q, k), L::load(row, k), a0);
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; k < dim; ++k) sum += L::scalar(q, k) * L::scalar(row, k);
        out[i] = sum;
    }
}

template <class L>
void cos_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    float qq;
    {
        __m512 a = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 16 <= dim; k += 16) {
            const __m512 v = L::load(q, k);
            a = _mm512_fmadd_ps(v, v, a);
        }
        qq = _mm512_reduce_add_ps(a);
        for (; k < dim; ++k) qq += L::scalar(q, k) * L::scalar(q, k);
    }
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        __m512 d0 = _mm512_setzero_ps(), x0 = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 16 <= dim; k += 16) {
            const __m512 b0 = L::load(row, k);
            d0 = _mm512_fmadd_ps(L::load(q, k), b0, d0);
            x0 = _mm512_fmadd_ps(b0, b0, x0);
        }
        float dot = _mm512_reduce_add_ps(d0);
        float xx = _mm512_reduce_add_ps(x0);
        for (; k < dim; ++k) {
            const float b = L::scalar(row, k);
            dot += L::scalar(q, k) * b;
            xx += b * b;
        }
        out[i] = cosine_from(dot, qq, xx);
    }
}

// int8: widen 32 lanes to int16, madd pairs into int32 (exact).
inline __m512i load_i8x32(const void* p, size_t k) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(as_m256i(static_cast<const int8_t*>(p) + k)));
}

template <int kMetric>  // 0 = L2, 1 = IP, 2 = COSINE
void i8_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const int8_t* a = static_cast<const int8_t*>(q);
    int32_t qq = 0;
    if (kMetric == 2) {
        for (size_t k = 0; k < dim; ++k) qq += a[k] * a[k];
    }
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        const int8_t* b = reinterpret_cast<const int8_t*>(row);
        __m512i acc = _mm512_setzero_si512(), acc_xx = _mm512_setzero_si512();
        size_t k = 0;
        for (; k + 32 <= dim; k += 32) {
            const __m512i va = load_i8x32(a, k), vb = load_i8x32(b, k);
            if (kMetric == 0) {
                const __m512i d = _mm512_sub_epi16(va, vb);
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
            } else {
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(va, vb));
                if (kMetric == 2) acc_xx = _mm512_add_epi32(acc_xx, _mm512_madd_epi16(vb, vb));
            }
        }
        int32_t s = _mm512_reduce_add_epi32(acc), xx = _mm512_reduce_add_epi32(acc_xx);
        for (; k < dim; ++k) {
            if (kMetric == 0) {
                const int32_t d = a[k] - b[k];
                s += d * d;
            } else {
                s += a[k] * b[k];
                xx += b[k] * b[k];
            }
        }
        out[i] = kMetric == 2 ? cosine_from(static_cast<float>(s), static_cast<float>(qq),
                                            static_cast<float>(xx))
                              : static_cast<float>(s);
    }
}

template <bool kJaccard>
void bits_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const size_t bytes = dim / 8;
    const unsigned char* a = static_cast<const unsigned char*>(q);
    const unsigned char* row = static_cast<const unsigned char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        uint64_t diff = 0, inter = 0, uni = 0;
        size_t k = 0;
        for (; k + 8 <= bytes; k += 8) {
            const uint64_t u = load_u64(a + k), v = load_u64(row + k);
            if (kJaccard) {
                inter += _mm_popcnt_u64(u & v);
                uni += _mm_popcnt_u64(u | v);
            } else {
                diff += _mm_popcnt_u64(u ^ v);
            }
        }
        for (; k < bytes; ++k) {
            diff += _mm_popcnt_u32(a[k] ^ row[k]);
            inter += _mm_popcnt_u32(a[k] & row[k]);
            uni += _mm_popcnt_u32(a[k] | row[k]);
        }
        out[i] = kJaccard ? jaccard_from(inter, uni) : static_cast<float>(diff);
    }
}

}  // namespace

void l2sq_f32_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<F32>(q, x, n, s, d, o); }
void ip_f32_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<F32>(q, x, n, s, d, o); }
void cos_f32_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<F32>(q, x, n, s, d, o); }
void l2sq_f16_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<F16>(q, x, n, s, d, o); }
void ip_f16_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<F16>(q, x, n, s, d, o); }
void cos_f16_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<F16>(q, x, n, s, d, o); }
void l2sq_bf16_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<BF16>(q, x, n, s, d, o); }
void ip_bf16_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<BF16>(q, x, n, s, d, o); }
void cos_bf16_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<BF16>(q, x, n, s, d, o); }
void l2sq_i8_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many<0>(q, x, n, s, d, o); }
void ip_i8_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many<1>(q, x, n, s, d, o); }
void cos_i8_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many<2>(q, x, n, s, d, o); }
void hamming_b1_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_many<false>(q, x, n, s, d, o); }
void jaccard_b1_avx512(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_many<true>(q, x, n, s, d, o); }

void to_f32_f16_avx512(const void* src, size_t dim, float* dst) {
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) _mm512_storeu_ps(dst + k, F16::load(src, k));
    for (; k < dim; ++k) dst[k] = load_f16(src, k);
}
void to_f32_bf16_avx512(const void* src, size_t dim, float* dst) {
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) _mm512_storeu_ps(dst + k, BF16::load(src, k));
    for (; k < dim; ++k) dst[k] = load_bf16(src, k);
}
void to_f32_i8_avx512(const void* src, size_t dim, float* dst) {
    const int8_t* s = static_cast<const int8_t*>(src);
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k));
        _mm512_storeu_ps(dst + k, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)));
    }
    for (; k < dim; ++k) dst[k] = static_cast<float>(s[k]);
}

// 6 x 32 register tile: 12 zmm accumulators, 2 panel vectors, 1 broadcast (of 32 registers).
void dot_tile_f32_avx512(const float* q, size_t ldq, size_t mr, const float* panel, size_t kc,
                         float* c, size_t ldc, bool accumulate) {
    constexpr size_t nr = kAvx512Nr;
    const float* qr[6];
    for (size_t i = 0; i < 6; ++i) qr[i] = q + (i < mr ? i : 0) * ldq;
    __m512 acc[6][2];
    for (size_t i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float* b = panel;
    for (size_t k = 0; k < kc; ++k, b += nr) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 6
        for (size_t i = 0; i < 6; ++i) {
            const __m512 a = _mm512_set1_ps(qr[i][k]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    for (size_t i = 0; i < mr; ++i) {
        float* dst = c + i * ldc;
        __m512 r0 = acc[i][0], r1 = acc[i][1];
        if (accumulate) {
            r0 = _mm512_add_ps(r0, _mm512_loadu_ps(dst));
            r1 = _mm512_add_ps(r1, _mm512_loadu_ps(dst + 16));
        }
        _mm512_storeu_ps(dst, r0);
        _mm512_storeu_ps(dst + 16, r1);
    }
}

}  // namespace distance
}  // namespace vecstore
