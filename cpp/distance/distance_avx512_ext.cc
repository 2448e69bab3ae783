// AVX-512 extension kernels: VNNI for int8, BF16 dot products, VPOPCNTDQ for binary vectors.
// dispatch.cc installs each over the plain avx512 kernel only when the CPU reports its extension.
// int8 stays exact (vpdpwssd accumulates int16 pair products into int32). ip_bf16 uses vdpbf16ps,
// whose products are exact in float32 (8-bit mantissas) but which treats bfloat16 subnormals as zero.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "distance/distance.h"
#include "distance/scalar.h"

namespace vecstore {
namespace distance {
namespace {

inline __m512i load_i8x32(const void* p, size_t k) {
    return _mm512_cvtepi8_epi16(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const int8_t*>(p) + k)));
}

template <int kMetric>  // 0 = L2, 1 = IP, 2 = COSINE
void i8_vnni_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
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
                acc = _mm512_dpwssd_epi32(acc, d, d);
            } else {
                acc = _mm512_dpwssd_epi32(acc, va, vb);
                if (kMetric == 2) acc_xx = _mm512_dpwssd_epi32(acc_xx, vb, vb);
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
void bits_popcnt_many(const void* q, const void* x, size_t n, size_t stride, size_t dim,
                      float* out) {
    const size_t bytes = dim / 8;
    const unsigned char* a = static_cast<const unsigned char*>(q);
    const unsigned char* row = static_cast<const unsigned char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        __m512i v_diff = _mm512_setzero_si512(), v_inter = _mm512_setzero_si512();
        __m512i v_uni = _mm512_setzero_si512();
        size_t k = 0;
        for (; k + 64 <= bytes; k += 64) {
            const __m512i u = _mm512_loadu_si512(a + k), v = _mm512_loadu_si512(row + k);
            if (kJaccard) {
                v_inter = _mm512_add_epi64(v_inter, _mm512_popcnt_epi64(_mm512_and_si512(u, v)));
                v_uni = _mm512_add_epi64(v_uni, _mm512_popcnt_epi64(_mm512_or_si512(u, v)));
            } else {
                v_diff = _mm512_add_epi64(v_diff, _mm512_popcnt_epi64(_mm512_xor_si512(u, v)));
            }
        }
        uint64_t diff = static_cast<uint64_t>(_mm512_reduce_add_epi64(v_diff));
        uint64_t inter = static_cast<uint64_t>(_mm512_reduce_add_epi64(v_inter));
        uint64_t uni = static_cast<uint64_t>(_mm512_reduce_add_epi64(v_uni));
        for (; k < bytes; ++k) {
            diff += _mm_popcnt_u32(a[k] ^ row[k]);
            inter += _mm_popcnt_u32(a[k] & row[k]);
            uni += _mm_popcnt_u32(a[k] | row[k]);
        }
        out[i] = kJaccard ? jaccard_from(inter, uni) : static_cast<float>(diff);
    }
}

}  // namespace

void l2sq_i8_avx512vnni(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_vnni_many<0>(q, x, n, s, d, o); }
void ip_i8_avx512vnni(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_vnni_many<1>(q, x, n, s, d, o); }
void cos_i8_avx512vnni(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_vnni_many<2>(q, x, n, s, d, o); }
void hamming_b1_avx512popcnt(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_popcnt_many<false>(q, x, n, s, d, o); }
void jaccard_b1_avx512popcnt(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_popcnt_many<true>(q, x, n, s, d, o); }

void ip_bf16_avx512bf16(const void* q, const void* x, size_t n, size_t stride, size_t dim,
                        float* out) {
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        __m512 acc = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 32 <= dim; k += 32) {
            const __m512i a = _mm512_loadu_si512(static_cast<const uint16_t*>(q) + k);
            const __m512i b = _mm512_loadu_si512(reinterpret_cast<const uint16_t*>(row) + k);
            acc = _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
        }
        float sum = _mm512_reduce_add_ps(acc);
        for (; k < dim; ++k) sum += load_bf16(q, k) * load_bf16(row, k);
        out[i] = sum;
    }
}

}  // namespace distance
}  // namespace vecstore
