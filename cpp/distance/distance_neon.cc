// Arm NEON (ARMv8-A Advanced SIMD, AArch64) kernels. Plain ARMv8.0 only: no fp16 arithmetic, no
// dot-product or bf16 extensions, so every AArch64 CPU runs them. Results follow distance.h; the
// final formulas (cosine, Jaccard) come from scalar.h so every ISA rounds them the same way.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "distance/distance.h"
#include "distance/scalar.h"

namespace vecstore {
namespace distance {
namespace {

// Widening loads: each policy reads 4 or 8 elements starting at element k of p and returns
// float32 lanes, plus a scalar load for the tail. Rows are only element-aligned (distance.h), which
// is all vld1 needs.
struct F32 {
    static float32x4_t load4(const void* p, size_t k) {
        return vld1q_f32(static_cast<const float*>(p) + k);
    }
    static void load8(const void* p, size_t k, float32x4_t* lo, float32x4_t* hi) {
        *lo = vld1q_f32(static_cast<const float*>(p) + k);
        *hi = vld1q_f32(static_cast<const float*>(p) + k + 4);
    }
    static float at(const void* p, size_t k) { return load_f32(p, k); }
};

// FCVTL widens IEEE half exactly (FPCR.AHP is 0 on Linux), subnormals included.
struct F16 {
    static float32x4_t load4(const void* p, size_t k) {
        const uint16x4_t h_u16x4 = vld1_u16(static_cast<const uint16_t*>(p) + k);
        return vcvt_f32_f16(vreinterpret_f16_u16(h_u16x4));
    }
    static void load8(const void* p, size_t k, float32x4_t* lo, float32x4_t* hi) {
        const float16x8_t h_f16x8 =
            vreinterpretq_f16_u16(vld1q_u16(static_cast<const uint16_t*>(p) + k));
        *lo = vcvt_f32_f16(vget_low_f16(h_f16x8));
        *hi = vcvt_high_f32_f16(h_f16x8);
    }
    static float at(const void* p, size_t k) { return load_f16(p, k); }
};

// bfloat16 is the top half of a float32: widen by shifting each u16 into the high half of a u32.
struct BF16 {
    static float32x4_t load4(const void* p, size_t k) {
        const uint16x4_t b_u16x4 = vld1_u16(static_cast<const uint16_t*>(p) + k);
        return vreinterpretq_f32_u32(vshll_n_u16(b_u16x4, 16));
    }
    static void load8(const void* p, size_t k, float32x4_t* lo, float32x4_t* hi) {
        const uint16x8_t b_u16x8 = vld1q_u16(static_cast<const uint16_t*>(p) + k);
        *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(b_u16x8), 16));
        *hi = vreinterpretq_f32_u32(vshll_high_n_u16(b_u16x8, 16));
    }
    static float at(const void* p, size_t k) { return load_bf16(p, k); }
};

inline float sum4(float32x4_t s0, float32x4_t s1, float32x4_t s2, float32x4_t s3) {
    return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
}

// Four independent accumulators hide the FMA latency (4 cycles on most cores, 2 pipes).
template <class L>
float l2_one(const void* a, const void* b, size_t dim) {
    float32x4_t s0_f32x4 = vdupq_n_f32(0.0f), s1_f32x4 = s0_f32x4, s2_f32x4 = s0_f32x4,
                s3_f32x4 = s0_f32x4;
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        float32x4_t a0, a1, a2, a3, b0, b1, b2, b3;
        L::load8(a, k, &a0, &a1);
        L::load8(a, k + 8, &a2, &a3);
        L::load8(b, k, &b0, &b1);
        L::load8(b, k + 8, &b2, &b3);
        const float32x4_t d0 = vsubq_f32(a0, b0), d1 = vsubq_f32(a1, b1);
        const float32x4_t d2 = vsubq_f32(a2, b2), d3 = vsubq_f32(a3, b3);
        s0_f32x4 = vfmaq_f32(s0_f32x4, d0, d0);
        s1_f32x4 = vfmaq_f32(s1_f32x4, d1, d1);
        s2_f32x4 = vfmaq_f32(s2_f32x4, d2, d2);
        s3_f32x4 = vfmaq_f32(s3_f32x4, d3, d3);
    }
    for (; k + 4 <= dim; k += 4) {
        const float32x4_t d = vsubq_f32(L::load4(a, k), L::load4(b, k));
        s0_f32x4 = vfmaq_f32(s0_f32x4, d, d);
    }
    float sum = sum4(s0_f32x4, s1_f32x4, s2_f32x4, s3_f32x4);
    for (; k < dim; ++k) {
        const float d = L::at(a, k) - L::at(b, k);
        sum += d * d;
    }
    return sum;
}

template <class L>
float ip_one(const void* a, const void* b, size_t dim) {
    float32x4_t s0_f32x4 = vdupq_n_f32(0.0f), s1_f32x4 = s0_f32x4, s2_f32x4 = s0_f32x4,
                s3_f32x4 = s0_f32x4;
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        float32x4_t a0, a1, a2, a3, b0, b1, b2, b3;
        L::load8(a, k, &a0, &a1);
        L::load8(a, k + 8, &a2, &a3);
        L::load8(b, k, &b0, &b1);
        L::load8(b, k + 8, &b2, &b3);
        s0_f32x4 = vfmaq_f32(s0_f32x4, a0, b0);
        s1_f32x4 = vfmaq_f32(s1_f32x4, a1, b1);
        s2_f32x4 = vfmaq_f32(s2_f32x4, a2, b2);
        s3_f32x4 = vfmaq_f32(s3_f32x4, a3, b3);
    }
    for (; k + 4 <= dim; k += 4) s0_f32x4 = vfmaq_f32(s0_f32x4, L::load4(a, k), L::load4(b, k));
    float sum = sum4(s0_f32x4, s1_f32x4, s2_f32x4, s3_f32x4);
    for (; k < dim; ++k) sum += L::at(a, k) * L::at(b, k);
    return sum;
}

// Dot product and the row's squared norm in one pass over the row.
template <class L>
void dot_norm_one(const void* a, const void* b, size_t dim, float* dot, float* bb) {
    float32x4_t d0_f32x4 = vdupq_n_f32(0.0f), d1_f32x4 = d0_f32x4, d2_f32x4 = d0_f32x4,
                d3_f32x4 = d0_f32x4;
    float32x4_t n0_f32x4 = d0_f32x4, n1_f32x4 = d0_f32x4, n2_f32x4 = d0_f32x4, n3_f32x4 = d0_f32x4;
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        float32x4_t a0, a1, a2, a3, b0, b1, b2, b3;
        L::load8(a, k, &a0, &a1);
        L::load8(a, k + 8, &a2, &a3);
        L::load8(b, k, &b0, &b1);
        L::load8(b, k + 8, &b2, &b3);
        d0_f32x4 = vfmaq_f32(d0_f32x4, a0, b0);
        d1_f32x4 = vfmaq_f32(d1_f32x4, a1, b1);
        d2_f32x4 = vfmaq_f32(d2_f32x4, a2, b2);
        d3_f32x4 = vfmaq_f32(d3_f32x4, a3, b3);
        n0_f32x4 = vfmaq_f32(n0_f32x4, b0, b0);
        n1_f32x4 = vfmaq_f32(n1_f32x4, b1, b1);
        n2_f32x4 = vfmaq_f32(n2_f32x4, b2, b2);
        n3_f32x4 = vfmaq_f32(n3_f32x4, b3, b3);
    }
    for (; k + 4 <= dim; k += 4) {
        const float32x4_t b0 = L::load4(b, k);
        d0_f32x4 = vfmaq_f32(d0_f32x4, L::load4(a, k), b0);
        n0_f32x4 = vfmaq_f32(n0_f32x4, b0, b0);
    }
    float dot_sum = sum4(d0_f32x4, d1_f32x4, d2_f32x4, d3_f32x4);
    float norm_sum = sum4(n0_f32x4, n1_f32x4, n2_f32x4, n3_f32x4);
    for (; k < dim; ++k) {
        const float y = L::at(b, k);
        dot_sum += L::at(a, k) * y;
        norm_sum += y * y;
    }
    *dot = dot_sum;
    *bb = norm_sum;
}

template <class L>
void l2_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) out[i] = l2_one<L>(q, row, dim);
}

template <class L>
void ip_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) out[i] = ip_one<L>(q, row, dim);
}

template <class L>
void cos_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const float qq = ip_one<L>(q, q, dim);
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        float dot, xx;
        dot_norm_one<L>(q, row, dim, &dot, &xx);
        out[i] = cosine_from(dot, qq, xx);
    }
}

// ---- int8 ---------------------------------------------------------------------------------------
// Exact in int32 like the serial code. A product of two int8 fits int16 (|-128 * -128| = 2^14), so
// products are formed with SMULL and pairwise-added into int32 (SADALP). A difference needs 9 bits
// and its square 17, so differences are widened to int16 first and squared with SMLAL into int32.

inline int32_t dot_i8(const int8_t* a, const int8_t* b, size_t dim) {
    int32x4_t s0_s32x4 = vdupq_n_s32(0), s1_s32x4 = s0_s32x4;
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        const int8x16_t a_s8x16 = vld1q_s8(a + k), b_s8x16 = vld1q_s8(b + k);
        s0_s32x4 = vpadalq_s16(s0_s32x4, vmull_s8(vget_low_s8(a_s8x16), vget_low_s8(b_s8x16)));
        s1_s32x4 = vpadalq_s16(s1_s32x4, vmull_high_s8(a_s8x16, b_s8x16));
    }
    for (; k + 8 <= dim; k += 8) {
        s0_s32x4 = vpadalq_s16(s0_s32x4, vmull_s8(vld1_s8(a + k), vld1_s8(b + k)));
    }
    int32_t sum = vaddvq_s32(vaddq_s32(s0_s32x4, s1_s32x4));
    for (; k < dim; ++k) sum += a[k] * b[k];
    return sum;
}

inline int32_t l2_i8(const int8_t* a, const int8_t* b, size_t dim) {
    int32x4_t s0_s32x4 = vdupq_n_s32(0), s1_s32x4 = s0_s32x4;
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        const int8x16_t a_s8x16 = vld1q_s8(a + k), b_s8x16 = vld1q_s8(b + k);
        const int16x8_t lo_s16x8 = vsubl_s8(vget_low_s8(a_s8x16), vget_low_s8(b_s8x16));
        const int16x8_t hi_s16x8 = vsubl_high_s8(a_s8x16, b_s8x16);
        s0_s32x4 = vmlal_s16(s0_s32x4, vget_low_s16(lo_s16x8), vget_low_s16(lo_s16x8));
        s1_s32x4 = vmlal_high_s16(s1_s32x4, lo_s16x8, lo_s16x8);
        s0_s32x4 = vmlal_s16(s0_s32x4, vget_low_s16(hi_s16x8), vget_low_s16(hi_s16x8));
        s1_s32x4 = vmlal_high_s16(s1_s32x4, hi_s16x8, hi_s16x8);
    }
    for (; k + 8 <= dim; k += 8) {
        const int16x8_t d_s16x8 = vsubl_s8(vld1_s8(a + k), vld1_s8(b + k));
        s0_s32x4 = vmlal_s16(s0_s32x4, vget_low_s16(d_s16x8), vget_low_s16(d_s16x8));
        s1_s32x4 = vmlal_high_s16(s1_s32x4, d_s16x8, d_s16x8);
    }
    int32_t sum = vaddvq_s32(vaddq_s32(s0_s32x4, s1_s32x4));
    for (; k < dim; ++k) {
        const int32_t d = a[k] - b[k];
        sum += d * d;
    }
    return sum;
}

inline void dot_norm_i8(const int8_t* a, const int8_t* b, size_t dim, int32_t* dot, int32_t* bb) {
    int32x4_t d_s32x4 = vdupq_n_s32(0), n_s32x4 = d_s32x4;
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        const int8x16_t a_s8x16 = vld1q_s8(a + k), b_s8x16 = vld1q_s8(b + k);
        d_s32x4 = vpadalq_s16(d_s32x4, vmull_s8(vget_low_s8(a_s8x16), vget_low_s8(b_s8x16)));
        d_s32x4 = vpadalq_s16(d_s32x4, vmull_high_s8(a_s8x16, b_s8x16));
        n_s32x4 = vpadalq_s16(n_s32x4, vmull_s8(vget_low_s8(b_s8x16), vget_low_s8(b_s8x16)));
        n_s32x4 = vpadalq_s16(n_s32x4, vmull_high_s8(b_s8x16, b_s8x16));
    }
    for (; k + 8 <= dim; k += 8) {
        const int8x8_t a_s8x8 = vld1_s8(a + k), b_s8x8 = vld1_s8(b + k);
        d_s32x4 = vpadalq_s16(d_s32x4, vmull_s8(a_s8x8, b_s8x8));
        n_s32x4 = vpadalq_s16(n_s32x4, vmull_s8(b_s8x8, b_s8x8));
    }
    int32_t dot_sum = vaddvq_s32(d_s32x4), norm_sum = vaddvq_s32(n_s32x4);
    for (; k < dim; ++k) {
        dot_sum += a[k] * b[k];
        norm_sum += b[k] * b[k];
    }
    *dot = dot_sum;
    *bb = norm_sum;
}

// ---- binary -------------------------------------------------------------------------------------
// CNT gives per-byte counts (<= 8); UADALP folds them into uint16 lanes, which gain at most 16 per
// 16-byte step, so they are flushed into uint32 every kBlockSteps steps, well before 65535.
constexpr size_t kBlockSteps = 2048;

struct BitCounts {
    uint64_t diff = 0, inter = 0, uni = 0;
};

template <bool kJaccard>
BitCounts count_bits(const uint8_t* a, const uint8_t* b, size_t bytes) {
    uint32x4_t diff_u32x4 = vdupq_n_u32(0), inter_u32x4 = diff_u32x4, uni_u32x4 = diff_u32x4;
    size_t k = 0;
    while (k + 16 <= bytes) {
        uint16x8_t diff_u16x8 = vdupq_n_u16(0), inter_u16x8 = diff_u16x8, uni_u16x8 = diff_u16x8;
        for (size_t step = 0; step < kBlockSteps && k + 16 <= bytes; ++step, k += 16) {
            const uint8x16_t a_u8x16 = vld1q_u8(a + k), b_u8x16 = vld1q_u8(b + k);
            if (kJaccard) {
                inter_u16x8 = vpadalq_u8(inter_u16x8, vcntq_u8(vandq_u8(a_u8x16, b_u8x16)));
                uni_u16x8 = vpadalq_u8(uni_u16x8, vcntq_u8(vorrq_u8(a_u8x16, b_u8x16)));
            } else {
                diff_u16x8 = vpadalq_u8(diff_u16x8, vcntq_u8(veorq_u8(a_u8x16, b_u8x16)));
            }
        }
        diff_u32x4 = vpadalq_u16(diff_u32x4, diff_u16x8);
        inter_u32x4 = vpadalq_u16(inter_u32x4, inter_u16x8);
        uni_u32x4 = vpadalq_u16(uni_u32x4, uni_u16x8);
    }
    BitCounts c;
    c.diff = vaddlvq_u32(diff_u32x4);
    c.inter = vaddlvq_u32(inter_u32x4);
    c.uni = vaddlvq_u32(uni_u32x4);
    if (k + 8 <= bytes) {
        const uint8x8_t a_u8x8 = vld1_u8(a + k), b_u8x8 = vld1_u8(b + k);
        if (kJaccard) {
            c.inter += vaddlv_u8(vcnt_u8(vand_u8(a_u8x8, b_u8x8)));
            c.uni += vaddlv_u8(vcnt_u8(vorr_u8(a_u8x8, b_u8x8)));
        } else {
            c.diff += vaddlv_u8(vcnt_u8(veor_u8(a_u8x8, b_u8x8)));
        }
        k += 8;
    }
    for (; k < bytes; ++k) {
        c.diff += popcount64(a[k] ^ b[k]);
        c.inter += popcount64(a[k] & b[k]);
        c.uni += popcount64(a[k] | b[k]);
    }
    return c;
}

template <bool kJaccard>
void bits_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const size_t bytes = dim / 8;
    const uint8_t* a = static_cast<const uint8_t*>(q);
    const uint8_t* row = static_cast<const uint8_t*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        const BitCounts c = count_bits<kJaccard>(a, row, bytes);
        out[i] = kJaccard ? jaccard_from(c.inter, c.uni) : static_cast<float>(c.diff);
    }
}

}  // namespace

// clang-format off
void l2sq_f32_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<F32>(q, x, n, s, d, o); }
void ip_f32_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<F32>(q, x, n, s, d, o); }
void cos_f32_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<F32>(q, x, n, s, d, o); }
void l2sq_f16_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<F16>(q, x, n, s, d, o); }
void ip_f16_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<F16>(q, x, n, s, d, o); }
void cos_f16_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<F16>(q, x, n, s, d, o); }
void l2sq_bf16_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<BF16>(q, x, n, s, d, o); }
void ip_bf16_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<BF16>(q, x, n, s, d, o); }
void cos_bf16_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<BF16>(q, x, n, s, d, o); }
void hamming_b1_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_many<false>(q, x, n, s, d, o); }
void jaccard_b1_neon(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_many<true>(q, x, n, s, d, o); }
// clang-format on

void l2sq_i8_neon(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const int8_t* a = static_cast<const int8_t*>(q);
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        out[i] = static_cast<float>(l2_i8(a, reinterpret_cast<const int8_t*>(row), dim));
    }
}

void ip_i8_neon(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const int8_t* a = static_cast<const int8_t*>(q);
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        out[i] = static_cast<float>(dot_i8(a, reinterpret_cast<const int8_t*>(row), dim));
    }
}

void cos_i8_neon(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const int8_t* a = static_cast<const int8_t*>(q);
    const float qq = static_cast<float>(dot_i8(a, a, dim));
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        int32_t dot, xx;
        dot_norm_i8(a, reinterpret_cast<const int8_t*>(row), dim, &dot, &xx);
        out[i] = cosine_from(static_cast<float>(dot), qq, static_cast<float>(xx));
    }
}

void to_f32_f16_neon(const void* src, size_t dim, float* dst) {
    size_t k = 0;
    for (; k + 8 <= dim; k += 8) {
        float32x4_t lo, hi;
        F16::load8(src, k, &lo, &hi);
        vst1q_f32(dst + k, lo);
        vst1q_f32(dst + k + 4, hi);
    }
    for (; k < dim; ++k) dst[k] = load_f16(src, k);
}

void to_f32_bf16_neon(const void* src, size_t dim, float* dst) {
    size_t k = 0;
    for (; k + 8 <= dim; k += 8) {
        float32x4_t lo, hi;
        BF16::load8(src, k, &lo, &hi);
        vst1q_f32(dst + k, lo);
        vst1q_f32(dst + k + 4, hi);
    }
    for (; k < dim; ++k) dst[k] = load_bf16(src, k);
}

void to_f32_i8_neon(const void* src, size_t dim, float* dst) {
    const int8_t* s = static_cast<const int8_t*>(src);
    size_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        const int8x16_t v_s8x16 = vld1q_s8(s + k);
        const int16x8_t lo_s16x8 = vmovl_s8(vget_low_s8(v_s8x16));
        const int16x8_t hi_s16x8 = vmovl_high_s8(v_s8x16);
        vst1q_f32(dst + k, vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo_s16x8))));
        vst1q_f32(dst + k + 4, vcvtq_f32_s32(vmovl_high_s16(lo_s16x8)));
        vst1q_f32(dst + k + 8, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi_s16x8))));
        vst1q_f32(dst + k + 12, vcvtq_f32_s32(vmovl_high_s16(hi_s16x8)));
    }
    for (; k < dim; ++k) dst[k] = static_cast<float>(s[k]);
}

// 4 x 16 tile: 16 accumulators + 4 panel vectors + 4 q vectors fit the 32 NEON registers. Each
// (i, j) pair is accumulated as fma(q[i][k], panel[k][j], acc) for k = 0, 1, ... in order whatever
// mr is, so blocking never changes a result. Rows i >= mr are computed from row 0 (always valid)
// and never stored.
void dot_tile_f32_neon(const float* q, size_t ldq, size_t mr, const float* panel, size_t kc,
                       float* c, size_t ldc, bool accumulate) {
    constexpr size_t nr = kNeonNr;
    const float* q0 = q;
    const float* q1 = mr > 1 ? q + ldq : q;
    const float* q2 = mr > 2 ? q + 2 * ldq : q;
    const float* q3 = mr > 3 ? q + 3 * ldq : q;

    float32x4_t acc[4][4];
    for (size_t i = 0; i < 4; ++i) {
        for (size_t j = 0; j < 4; ++j) acc[i][j] = vdupq_n_f32(0.0f);
    }

#define VS_NEON_TILE_STEP(lane)                                          \
    do {                                                                 \
        const float* p = panel + (k + lane) * nr;                        \
        const float32x4_t b0 = vld1q_f32(p), b1 = vld1q_f32(p + 4);      \
        const float32x4_t b2 = vld1q_f32(p + 8), b3 = vld1q_f32(p + 12); \
        acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a0_f32x4, lane);      \
        acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a0_f32x4, lane);      \
        acc[0][2] = vfmaq_laneq_f32(acc[0][2], b2, a0_f32x4, lane);      \
        acc[0][3] = vfmaq_laneq_f32(acc[0][3], b3, a0_f32x4, lane);      \
        acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a1_f32x4, lane);      \
        acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a1_f32x4, lane);      \
        acc[1][2] = vfmaq_laneq_f32(acc[1][2], b2, a1_f32x4, lane);      \
        acc[1][3] = vfmaq_laneq_f32(acc[1][3], b3, a1_f32x4, lane);      \
        acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a2_f32x4, lane);      \
        acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a2_f32x4, lane);      \
        acc[2][2] = vfmaq_laneq_f32(acc[2][2], b2, a2_f32x4, lane);      \
        acc[2][3] = vfmaq_laneq_f32(acc[2][3], b3, a2_f32x4, lane);      \
        acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a3_f32x4, lane);      \
        acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a3_f32x4, lane);      \
        acc[3][2] = vfmaq_laneq_f32(acc[3][2], b2, a3_f32x4, lane);      \
        acc[3][3] = vfmaq_laneq_f32(acc[3][3], b3, a3_f32x4, lane);      \
    } while (0)

    size_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        const float32x4_t a0_f32x4 = vld1q_f32(q0 + k), a1_f32x4 = vld1q_f32(q1 + k);
        const float32x4_t a2_f32x4 = vld1q_f32(q2 + k), a3_f32x4 = vld1q_f32(q3 + k);
        VS_NEON_TILE_STEP(0);
        VS_NEON_TILE_STEP(1);
        VS_NEON_TILE_STEP(2);
        VS_NEON_TILE_STEP(3);
    }
    for (; k < kc; ++k) {
        // Lane 0 of a broadcast: the same fused multiply-add as the vector loop above.
        const float32x4_t a0_f32x4 = vld1q_dup_f32(q0 + k), a1_f32x4 = vld1q_dup_f32(q1 + k);
        const float32x4_t a2_f32x4 = vld1q_dup_f32(q2 + k), a3_f32x4 = vld1q_dup_f32(q3 + k);
        VS_NEON_TILE_STEP(0);
    }
#undef VS_NEON_TILE_STEP

    for (size_t i = 0; i < mr; ++i) {
        float* row = c + i * ldc;
        for (size_t j = 0; j < 4; ++j) {
            float32x4_t v = acc[i][j];
            if (accumulate) v = vaddq_f32(vld1q_f32(row + 4 * j), v);
            vst1q_f32(row + 4 * j, v);
        }
    }
}

}  // namespace distance
}  // namespace vecstore
