// Scalar helpers shared by every kernel file: float16/bfloat16 <-> float32 by bit manipulation
// (exact, IEEE round-to-nearest-even on narrowing), popcount, and the final-value formulas that
// every ISA must apply identically (cosine, Jaccard). Header-only, no STL: ISA files include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vecstore {
namespace distance {
// Internal linkage on purpose: each ISA file compiles these with its own flags, and a shared
// (inline, external) definition could let the linker hand AVX2 code to a baseline caller.
namespace {

inline float bits_to_f32(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline uint32_t f32_to_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// IEEE 754 binary16 -> binary32, exact for every input including subnormals, inf and NaN.
inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));  // inf / NaN
    if (exp == 0) {
        if (mant == 0) return bits_to_f32(sign);
        // Subnormal: value = mant * 2^-24, exactly representable in float32.
        float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline float bf16_to_f32(uint16_t b) { return bits_to_f32(static_cast<uint32_t>(b) << 16); }

inline float load_f16(const void* p, size_t i) {
    uint16_t h;
    std::memcpy(&h, static_cast<const char*>(p) + 2 * i, 2);
    return f16_to_f32(h);
}

inline float load_bf16(const void* p, size_t i) {
    uint16_t h;
    std::memcpy(&h, static_cast<const char*>(p) + 2 * i, 2);
    return bf16_to_f32(h);
}

inline float load_f32(const void* p, size_t i) {
    float f;
    std::memcpy(&f, static_cast<const char*>(p) + 4 * i, 4);
    return f;
}

inline uint64_t load_u64(const void* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

inline int popcount64(uint64_t v) { return __builtin_popcountll(v); }

// Cosine from the dot product and the two squared norms. Zero vectors have similarity 0 by
// definition (Milvus returns 0 there too rather than NaN).
inline float cosine_from(float dot, float qq, float xx) {
    if (qq <= 0.0f || xx <= 0.0f) {
        // A non-finite dot must stay non-finite so that NaN/inf inputs are still detected.
        return (dot == dot && dot - dot == 0.0f) ? 0.0f : dot;
    }
    return dot / (__builtin_sqrtf(qq) * __builtin_sqrtf(xx));
}

// Jaccard distance from the intersection and union bit counts; two empty sets are identical.
inline float jaccard_from(uint64_t inter, uint64_t uni) {
    if (uni == 0) return 0.0f;
    return 1.0f - static_cast<float>(static_cast<double>(inter) / static_cast<double>(uni));
}

}  // namespace
}  // namespace distance
}  // namespace vecstore
