// Serial reference kernels: plain loops, always built, the baseline every SIMD level is tested
// against. Built without ISA flags, so they run on any CPU of the target architecture.
#include "distance/distance.h"
#include "distance/scalar.h"

namespace vecstore {
namespace distance {
namespace {

template <float (*Load)(const void*, size_t)>
void l2_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        float sum = 0.0f;
        for (size_t k = 0; k < dim; ++k) {
            const float d = Load(q, k) - Load(row, k);
            sum += d * d;
        }
        out[i] = sum;
    }
}

template <float (*Load)(const void*, size_t)>
void ip_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        float sum = 0.0f;
        for (size_t k = 0; k < dim; ++k) sum += Load(q, k) * Load(row, k);
        out[i] = sum;
    }
}

template <float (*Load)(const void*, size_t)>
void cos_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    float qq = 0.0f;
    for (size_t k = 0; k < dim; ++k) qq += Load(q, k) * Load(q, k);
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        float dot = 0.0f, xx = 0.0f;
        for (size_t k = 0; k < dim; ++k) {
            const float b = Load(row, k);
            dot += Load(q, k) * b;
            xx += b * b;
        }
        out[i] = cosine_from(dot, qq, xx);
    }
}

// int8 is exact in int32 up to Milvus's largest dimension (32768 * 255^2 < 2^31).
void i8_many(Metric m, const void* q, const void* x, size_t n, size_t stride, size_t dim,
             float* out) {
    const int8_t* a = static_cast<const int8_t*>(q);
    int32_t qq = 0;
    for (size_t k = 0; k < dim; ++k) qq += a[k] * a[k];
    const char* row = static_cast<const char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        const int8_t* b = reinterpret_cast<const int8_t*>(row);
        int32_t dot = 0, xx = 0, l2 = 0;
        for (size_t k = 0; k < dim; ++k) {
            const int32_t d = a[k] - b[k];
            l2 += d * d;
            dot += a[k] * b[k];
            xx += b[k] * b[k];
        }
        if (m == Metric::kL2) {
            out[i] = static_cast<float>(l2);
        } else if (m == Metric::kIP) {
            out[i] = static_cast<float>(dot);
        } else {
            out[i] = cosine_from(static_cast<float>(dot), static_cast<float>(qq),
                                 static_cast<float>(xx));
        }
    }
}

template <bool kJaccard>
void bits_many(const void* q, const void* x, size_t n, size_t stride, size_t dim, float* out) {
    const size_t bytes = dim / 8;
    const unsigned char* a = static_cast<const unsigned char*>(q);
    const unsigned char* row = static_cast<const unsigned char*>(x);
    for (size_t i = 0; i < n; ++i, row += stride) {
        uint64_t diff = 0, inter = 0, uni = 0;
        for (size_t k = 0; k < bytes; ++k) {
            diff += __builtin_popcount(a[k] ^ row[k]);
            inter += __builtin_popcount(a[k] & row[k]);
            uni += __builtin_popcount(a[k] | row[k]);
        }
        out[i] = kJaccard ? jaccard_from(inter, uni) : static_cast<float>(diff);
    }
}

}  // namespace

void l2sq_f32_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<load_f32>(q, x, n, s, d, o); }
void ip_f32_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<load_f32>(q, x, n, s, d, o); }
void cos_f32_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<load_f32>(q, x, n, s, d, o); }
void l2sq_f16_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<load_f16>(q, x, n, s, d, o); }
void ip_f16_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<load_f16>(q, x, n, s, d, o); }
void cos_f16_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<load_f16>(q, x, n, s, d, o); }
void l2sq_bf16_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { l2_many<load_bf16>(q, x, n, s, d, o); }
void ip_bf16_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { ip_many<load_bf16>(q, x, n, s, d, o); }
void cos_bf16_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { cos_many<load_bf16>(q, x, n, s, d, o); }
void l2sq_i8_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many(Metric::kL2, q, x, n, s, d, o); }
void ip_i8_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many(Metric::kIP, q, x, n, s, d, o); }
void cos_i8_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { i8_many(Metric::kCosine, q, x, n, s, d, o); }
void hamming_b1_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_many<false>(q, x, n, s, d, o); }
void jaccard_b1_serial(const void* q, const void* x, size_t n, size_t s, size_t d, float* o) { bits_many<true>(q, x, n, s, d, o); }

void to_f32_f16_serial(const void* src, size_t dim, float* dst) {
    for (size_t k = 0; k < dim; ++k) dst[k] = load_f16(src, k);
}
void to_f32_bf16_serial(const void* src, size_t dim, float* dst) {
    for (size_t k = 0; k < dim; ++k) dst[k] = load_bf16(src, k);
}
void to_f32_i8_serial(const void* src, size_t dim, float* dst) {
    const int8_t* s = static_cast<const int8_t*>(src);
    for (size_t k = 0; k < dim; ++k) dst[k] = static_cast<float>(s[k]);
}

void dot_tile_f32_serial(const float* q, size_t ldq, size_t mr, const float* panel, size_t kc,
                         float* c, size_t ldc, bool accumulate) {
    constexpr size_t nr = kSerialNr;
    for (size_t i = 0; i < mr; ++i) {
        float acc[nr];
        for (size_t j = 0; j < nr; ++j) acc[j] = 0.0f;
        for (size_t k = 0; k < kc; ++k) {
            const float a = q[i * ldq + k];
            for (size_t j = 0; j < nr; ++j) acc[j] += a * panel[k * nr + j];
        }
        for (size_t j = 0; j < nr; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[j] : acc[j];
    }
}

void dot_u8i8_serial(const uint8_t* codes, size_t n, size_t stride, size_t dim, const int8_t* q,
                     int32_t* out) {
    for (size_t i = 0; i < n; ++i, codes += stride) {
        int32_t sum = 0;
        for (size_t k = 0; k < dim; ++k) sum += static_cast<int32_t>(codes[k]) * q[k];
        out[i] = sum;
    }
}

}  // namespace distance
}  // namespace vecstore
