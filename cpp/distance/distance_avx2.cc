// AVX2 + FMA + F16C (+ POPCNT) kernels. Compiled with exactly those ISA flags; selected at run time
// only on CPUs that report all four (dispatch.cc). Every function matches distance_serial.cc up to
// float rounding (int8 and binary: exactly).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "distance/distance.h"
#include "distance/scalar.h"

namespace vecstore {
namespace distance {
namespace {

inline float hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 sh = _mm_movehdup_ps(lo);
    lo = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, lo);
    return _mm_cvtss_f32(_mm_add_ss(lo, sh));
}

inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// Loaders: 8 consecutive elements starting at element k, widened to float32.
struct F32 {
    static __m256 load(const void* p, size_t k) {
        return _mm256_loadu_ps(static_cast<const float*>(p) + k);
    }
    static float scalar(const void* p, size_t k) { return load_f32(p, k); }
};
struct F16 {
    static __m256 load(const void* p, size_t k) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + k));
        return _mm256_cvtph_ps(h);
    }
    static float scalar(const void* p, size_t k) { return load_f16(p, k); }
};
struct BF16 {
    static __m256 load(const void* p, size_t k) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + k));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static float scalar(const void* p, size_t k) { return load_bf16(p, k); }
};

// Four independent accumulators hide FMA latency; the 32-wide main loop runs for dim >= 32.
template <class L>
void l2_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        size_t k = 0;
        for (; k + 32 <= dim; k += 32) {
            const __m256 d0 = _mm256_sub_ps(L::load(q, k), L::load(row, k));
            const __m256 d1 = _mm256_sub_ps(L::load(q, k + 8), L::load(row, k + 8));
            const __m256 d2 = _mm256_sub_ps(L::load(q, k + 16), L::load(row, k + 16));
            const __m256 d3 = _mm256_sub_ps(L::load(q, k + 24), L::load(row, k + 24));
            a0 = _mm256_fmadd_ps(d0, d0, a0);
            a1 = _mm256_fmadd_ps(d1, d1, a1);
            a2 = _mm256_fmadd_ps(d2, d2, a2);
            a3 = _mm256_fmadd_ps(d3, d3, a3);
        }
        for (; k + 8 <= dim; k += 8) {
            const __m256 d0 = _mm256_sub_ps(L::load(q, k), L::load(row, k));
            a0 = _mm256_fmadd_ps(d0, d0, a0);
        }
        float sum = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
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
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        size_t k = 0;
        for (; k + 32 <= dim; k += 32) {
            a0 = _mm256_fmadd_ps(L::load(q, k), L::load(row, k), a0);
            a1 = _mm256_fmadd_ps(L::load(q, k + 8), L::load(row, k + 8), a1);
            a2 = _mm256_fmadd_ps(L::load(q, k + 16), L::load(row, k + 16), a2);
            a3 = _mm256_fmadd_ps(L::load(q, k + 24), L::load(row, k + 24), a3);
        }
        for (; k + 8 <= dim; k += 8) a0 = _mm256_fmadd_ps(L::load(q, k), L::load(row, k), a0);
        float sum = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; k < dim; ++k) sum += L::scalar(q, k) * L::scalar(row, k);
        out[i] = sum;
    }
}

template <class L>
float self_dot(const void* q, size_t dim) {
    __m256 a0 = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 8 <= dim; k += 8) {
        const __m256 v = L::load(q, k);
        a0 = _mm256_fmadd_ps(v, v, a0);
    }
    float sum = hsum(a0);
    for (; k < dim; ++k) sum += L::scalar(q, k) * L::scalar(q, k);
    return sum;
}

template <class L>
void cos_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const float qq = self_dot<L>(q, dim);
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
        __m256 x0 = _mm256_setzero_ps(), x1 = _mm256_setzero_ps();
        size_t k = 0;
        for (; k + 16 <= dim; k += 16) {
            const __m256 b0 = L::load(row, k), b1 = L::load(row, k + 8);
            d0 = _mm256_fmadd_ps(L::load(q, k), b0, d0);
            d1 = _mm256_fmadd_ps(L::load(q, k + 8), b1, d1);
            x0 = _mm256_fmadd_ps(b0, b0, x0);
            x1 = _mm256_fmadd_ps(b1, b1, x1);
        }
        for (; k + 8 <= dim; k += 8) {
            const __m256 b0 = L::load(row, k);
            d0 = _mm256_fmadd_ps(L::load(q, k), b0, d0);
            x0 = _mm256_fmadd_ps(b0, b0, x0);
        }
        float dot = hsum(_mm256_add_ps(d0, d1));
        float xx = hsum(_mm256_add_ps(x0, x1));
        for (; k < dim; ++k) {
            const float b = L::scalar(row, k);
            dot += L::scalar(q, k) * b;
            xx += b * b;
        }
        out[i] = cosine_from(dot, qq, xx);
    }
}

// int8: widen 16 lanes to int16, then madd pairs into int32 (exact).
inline __m256i load_i8x16(const void* p, size_t k) {
    return _mm256_cvtepi8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(p) + k)));
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
        __m256i acc = _mm256_setzero_si256(), acc_xx = _mm256_setzero_si256();
        size_t k = 0;
        for (; k + 16 <= dim; k += 16) {
            const __m256i va = load_i8x16(a, k), vb = load_i8x16(b, k);
            if (kMetric == 0) {
                const __m256i d = _mm256_sub_epi16(va, vb);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
            } else {
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(va, vb));
                if (kMetric == 2) acc_xx = _mm256_add_epi32(acc_xx, _mm256_madd_epi16(vb, vb));
            }
        }
        int32_t s = hsum_i32(acc), xx = hsum_i32(acc_xx);
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

void l2sq_f32_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<F32>(q, x, n, s, d, o); }
void ip_f32_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<F32>(q, x, n, s, d, o); }
void cos_f32_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<F32>(q, x, n, s, d, o); }
void l2sq_f16_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<F16>(q, x, n, s, d, o); }
void ip_f16_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<F16>(q, x, n, s, d, o); }
void cos_f16_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<F16>(q, x, n, s, d, o); }
void l2sq_bf16_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<BF16>(q, x, n, s, d, o); }
void ip_bf16_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<BF16>(q, x, n, s, d, o); }
void cos_bf16_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<BF16>(q, x, n, s, d, o); }
void l2sq_i8_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many<0>(q, x, n, s, d, o); }
void ip_i8_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many<1>(q, x, n, s, d, o); }
void cos_i8_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many<2>(q, x, n, s, d, o); }
void hamming_b1_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_many<false>(q, x, n, s, d, o); }
void jaccard_b1_avx2(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_many<true>(q, x, n, s, d, o); }

void to_f32_f16_avx2(const void* src, size_t dim, float* dst) {
    size_t k = 0;
    for (; k + 8 <= dim; k += 8) _mm256_storeu_ps(dst + k, F16::load(src, k));
    for (; k < dim; ++k) dst[k] = load_f16(src, k);
}
void to_f32_bf16_avx2(const void* src, size_t dim, float* dst) {
    size_t k = 0;
    for (; k + 8 <= dim; k += 8) _mm256_storeu_ps(dst + k, BF16::load(src, k));
    for (; k < dim; ++k) dst[k] = load_bf16(src, k);
}
void to_f32_i8_avx2(const void* src, size_t dim, float* dst) {
    const int8_t* s = static_cast<const int8_t*>(src);
    size_t k = 0;
    for (; k + 8 <= dim; k += 8) {
        const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + k));
        _mm256_storeu_ps(dst + k, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)));
    }
    for (; k < dim; ++k) dst[k] = static_cast<float>(s[k]);
}

// 6 x 16 register tile: 12 accumulators + 2 panel vectors + 1 broadcast = 15 of 16 ymm registers.
// Per k step: 2 panel loads + 6 broadcasts feed 12 FMAs, so the loop is FMA-bound, not load-bound.
void dot_tile_f32_avx2(const float* q, size_t ldq, size_t mr, const float* panel, size_t kc,
                       float* c, size_t ldc, bool accumulate) {
    constexpr size_t nr = kAvx2Nr;
    // Rows past mr alias row 0: computed and discarded, which keeps one code path for every mr.
    const float* q0 = q;
    const float* q1 = q + (mr > 1 ? 1 : 0) * ldq;
    const float* q2 = q + (mr > 2 ? 2 : 0) * ldq;
    const float* q3 = q + (mr > 3 ? 3 : 0) * ldq;
    const float* q4 = q + (mr > 4 ? 4 : 0) * ldq;
    const float* q5 = q + (mr > 5 ? 5 : 0) * ldq;
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    const float* b = panel;
    for (size_t k = 0; k < kc; ++k, b += nr) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 a = _mm256_broadcast_ss(q0 + k);
        c00 = _mm256_fmadd_ps(a, b0, c00);
        c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(q1 + k);
        c10 = _mm256_fmadd_ps(a, b0, c10);
        c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(q2 + k);
        c20 = _mm256_fmadd_ps(a, b0, c20);
        c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(q3 + k);
        c30 = _mm256_fmadd_ps(a, b0, c30);
        c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(q4 + k);
        c40 = _mm256_fmadd_ps(a, b0, c40);
        c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(q5 + k);
        c50 = _mm256_fmadd_ps(a, b0, c50);
        c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    const __m256 rows[6][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                               {c30, c31}, {c40, c41}, {c50, c51}};
    for (size_t i = 0; i < mr; ++i) {
        float* dst = c + i * ldc;
        __m256 r0 = rows[i][0], r1 = rows[i][1];
        if (accumulate) {
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(dst));
            r1 = _mm256_add_ps(r1, _mm256_loadu_ps(dst + 8));
        }
        _mm256_storeu_ps(dst, r0);
        _mm256_storeu_ps(dst + 8, r1);
    }
}

// Quantised scan, four rows per iteration for ILP. Per 32 bytes of a row: vpmaddubsw (uint8 code x
// int8 query -> int16 pair sums, exact because |q| <= 64), vpmaddwd by ones (-> int32) and an add;
// the query's dim/32 vectors are loaded once per row group from L1. Measured on the 2-vCPU EPYC
// (100k x 128): compute-bound at ~3.1 ns/row (data in L2), so the scan of a large matrix is DRAM-bound.
void dot_u8i8_avx2(const uint8_t* codes, size_t n, size_t stride, size_t dim, const int8_t* q,
                   int32_t* out) {
    const __m256i ones_i16x16 = _mm256_set1_epi16(1);
    auto step = [&](const uint8_t* row, __m256i q_i8x32, __m256i acc) {
        const __m256i c_u8x32 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row));
        const __m256i pairs_i16x16 = _mm256_maddubs_epi16(c_u8x32, q_i8x32);
        return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs_i16x16, ones_i16x16));
    };
    // Software prefetch kPrefetchBytes ahead: the code matrix streams from DRAM, and on the EPYC
    // the hardware prefetcher alone reached ~8.6 GB/s on one core; this made the 100k x 128 scan
    // 1.49 -> 1.17 ms cold. Prefetches past the end are harmless (they never fault).
    constexpr size_t kPrefetchBytes = 4096;
    const size_t group_bytes = 4 * stride;
    size_t i = 0;
    for (; i + 4 <= n; i += 4, codes += 4 * stride) {
        for (size_t b = 0; b < group_bytes; b += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(codes) + kPrefetchBytes + b, _MM_HINT_T0);
        }
        const uint8_t* r0 = codes;
        const uint8_t* r1 = codes + stride;
        const uint8_t* r2 = codes + 2 * stride;
        const uint8_t* r3 = codes + 3 * stride;
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        __m256i a2 = _mm256_setzero_si256(), a3 = _mm256_setzero_si256();
        for (size_t k = 0; k < dim; k += 32) {
            const __m256i q_i8x32 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k));
            a0 = step(r0 + k, q_i8x32, a0);
            a1 = step(r1 + k, q_i8x32, a1);
            a2 = step(r2 + k, q_i8x32, a2);
            a3 = step(r3 + k, q_i8x32, a3);
        }
        // hadd twice: lanes (row0..row3) of each 128-bit half, then fold the halves.
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
        const __m128i s_i32x4 =
            _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), s_i32x4);
    }
    for (; i < n; ++i, codes += stride) {
        __m256i acc = _mm256_setzero_si256();
        for (size_t k = 0; k < dim; k += 32) {
            acc = step(codes + k, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k)), acc);
        }
        out[i] = hsum_i32(acc);
    }
}

}  // namespace distance
}  // namespace vecstore
