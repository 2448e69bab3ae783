// Serial code kernels, encoders and kernel selection for HNSW's quantised codes (index/hnsw_sq.h).
#include "index/hnsw_sq.h"

#include <cmath>
#include <cstring>

#include "distance/distance.h"
#include "distance/scalar.h"

namespace vecstore {
namespace index {
namespace sq {

namespace {

inline uint16_t load_u16(const uint8_t* p, size_t i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return h;
}

inline uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

CodeKernels make_serial() {
    CodeKernels k;
    k.l2[1] = sq8_l2_serial;
    k.ip[1] = sq8_ip_serial;
    k.l2[2] = f16_l2_serial;
    k.ip[2] = f16_ip_serial;
    k.l2[3] = bf16_l2_serial;
    k.ip[3] = bf16_ip_serial;
    return k;
}

#if defined(VECSTORE_HAVE_X86_KERNELS)
CodeKernels make_avx2() {
    CodeKernels k;
    k.l2[1] = sq8_l2_avx2;
    k.ip[1] = sq8_ip_avx2;
    k.l2[2] = f16_l2_avx2;
    k.ip[2] = f16_ip_avx2;
    k.l2[3] = bf16_l2_avx2;
    k.ip[3] = bf16_ip_avx2;
    return k;
}
#endif

}  // namespace

const CodeKernels& active_kernels() {
    static const CodeKernels serial = make_serial();
#if defined(VECSTORE_HAVE_X86_KERNELS)
    // The avx2 and avx512 tables exist only on CPUs with AVX2 + FMA + F16C (dispatch.cc).
    static const CodeKernels avx2 = make_avx2();
    const distance::SimdLevel level = distance::active().level;
    if (level == distance::SimdLevel::kAvx2 || level == distance::SimdLevel::kAvx512) return avx2;
#endif
    return serial;
}

float sq8_l2_serial(const float* q, const float* scale, const uint8_t* code, size_t dim) {
    float acc = 0.0f;
    for (size_t i = 0; i < dim; ++i) {
        const float d = q[i] - scale[i] * static_cast<float>(code[i]);
        acc += d * d;
    }
    return acc;
}

float sq8_ip_serial(const float* q, const float*, const uint8_t* code, size_t dim) {
    float acc = 0.0f;
    for (size_t i = 0; i < dim; ++i) acc += q[i] * static_cast<float>(code[i]);
    return acc;
}

float f16_l2_serial(const float* q, const float*, const uint8_t* code, size_t dim) {
    float acc = 0.0f;
    for (size_t i = 0; i < dim; ++i) {
        const float d = q[i] - distance::f16_to_f32(load_u16(code, i));
        acc += d * d;
    }
    return acc;
}

float f16_ip_serial(const float* q, const float*, const uint8_t* code, size_t dim) {
    float acc = 0.0f;
    for (size_t i = 0; i < dim; ++i) acc += q[i] * distance::f16_to_f32(load_u16(code, i));
    return acc;
}

float bf16_l2_serial(const float* q, const float*, const uint8_t* code, size_t dim) {
    float acc = 0.0f;
    for (size_t i = 0; i < dim; ++i) {
        const float d = q[i] - distance::bf16_to_f32(load_u16(code, i));
        acc += d * d;
    }
    return acc;
}

float bf16_ip_serial(const float* q, const float*, const uint8_t* code, size_t dim) {
    float acc = 0.0f;
    for (size_t i = 0; i < dim; ++i) acc += q[i] * distance::bf16_to_f32(load_u16(code, i));
    return acc;
}

uint16_t f32_to_f16(float f) {
    const uint32_t x = bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t a = x & 0x7fffffffu;
    // 65520 (0x477ff000) and above would round to infinity: saturate at 65504.
    if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7bffu);
    if (a < 0x38800000u) {  // below 2^-14: a binary16 subnormal (or zero), value = m * 2^-24
        float v;
        std::memcpy(&v, &a, 4);
        const auto m = static_cast<uint32_t>(std::nearbyint(v * 16777216.0f));  // exact scaling
        return static_cast<uint16_t>(sign | m);  // m == 0x400 is the smallest normal, as encoded
    }
    // Normal: rebias the exponent (127 -> 15), round the mantissa 23 -> 10 bits to nearest even;
    // a carry out of the mantissa correctly bumps the exponent.
    uint32_t r = a - 0x38000000u;
    r += 0xfffu + ((r >> 13) & 1u);
    return static_cast<uint16_t>(sign | (r >> 13));
}

uint16_t f32_to_bf16(float f) {
    const uint32_t x = bits(f);
    const uint32_t r = x + 0x7fffu + ((x >> 16) & 1u);
    if ((r & 0x7f800000u) == 0x7f800000u)  // rounded up to infinity: saturate
        return static_cast<uint16_t>(((x >> 16) & 0x8000u) | 0x7f7fu);
    return static_cast<uint16_t>(r >> 16);
}

void encode_row(SqType t, const float* x, size_t dim, const float* min, const float* scale,
                uint8_t* code) {
    switch (code_type(t)) {
        case SqType::kSQ8:
            for (size_t i = 0; i < dim; ++i) {
                if (!(scale[i] > 0.0f)) {
                    code[i] = 0;
                    continue;
                }
                const float c = std::nearbyint((x[i] - min[i]) / scale[i]);
                code[i] = static_cast<uint8_t>(c < 0.0f ? 0.0f : (c > 255.0f ? 255.0f : c));
            }
            break;
        case SqType::kFP16:
            for (size_t i = 0; i < dim; ++i) {
                const uint16_t h = f32_to_f16(x[i]);
                std::memcpy(code + 2 * i, &h, 2);
            }
            break;
        default:
            for (size_t i = 0; i < dim; ++i) {
                const uint16_t h = f32_to_bf16(x[i]);
                std::memcpy(code + 2 * i, &h, 2);
            }
            break;
    }
}

}  // namespace sq
}  // namespace index
}  // namespace vecstore
