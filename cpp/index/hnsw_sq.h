// Quantised vector codes for HNSW traversal (index/hnsw.h): the code formats, their distance
// kernels (serial reference + AVX2) and the encoders.
//
// Code formats (one row of codes per base row, rows `code_row_bytes` apart, see hnsw.h):
//   SQ8   uint8 per dimension: x_i ~ min_i + scale_i * c_i, with min_i / scale_i = the per-dimension
//         minimum / (max - min) / 255 over the encoded rows (scale 0 for a constant dimension).
//   FP16  IEEE binary16 per dimension, round-to-nearest-even, saturating at +-65504.
//   BF16  bfloat16 per dimension, round-to-nearest-even, saturating at +-3.39e38.
// For COSINE the encoded rows are the unit-length rows (x / |x|; an all-zero row stays zero), so
// that an inner product with a unit query is the cosine without a per-row norm lookup.
//
// Kernels compare a prepared float32 query with one code row. `q` is prepared per query so that
// the kernels need no per-row constant:
//   l2  SQ8: sum_i (q_i - scale_i * c_i)^2 with q_i = query_i - min_i   (= |query - decoded|^2)
//       FP16/BF16: sum_i (q_i - h_i)^2 with q = query
//   ip  SQ8: sum_i q_i * c_i with q_i = query_i * scale_i (add sum_i query_i * min_i for the IP)
//       FP16/BF16: sum_i q_i * h_i
// `scale` is read by the SQ8 l2 kernel only. Kernels never fail or allocate; codes and q need no
// alignment. The AVX2 kernels match the serial ones up to float rounding.
//
// This header includes only <cstddef>/<cstdint> and declares no templates: the AVX2 file
// (hnsw_sq_avx2.cc, compiled with -mavx2 -mfma -mf16c) includes it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vecstore {
namespace index {
namespace sq {

// Stored in the image (hnsw.h); 0 is plain HNSW (SQ8 traversal codes, exact re-rank).
enum class SqType : uint32_t { kNone = 0, kSQ8 = 1, kFP16 = 2, kBF16 = 3 };
constexpr uint32_t kNumSqTypes = 4;

using CodeFn = float (*)(const float* q, const float* scale, const uint8_t* code, size_t dim);

struct CodeKernels {
    CodeFn l2[kNumSqTypes] = {};  // indexed by SqType; [kNone] unused
    CodeFn ip[kNumSqTypes] = {};
};

// The kernels for the active SIMD level (distance::active()): AVX2 ones on avx2/avx512 tables,
// serial ones otherwise (VECSTORE_SIMD=serial included).
const CodeKernels& active_kernels();

// Bytes of one element's code; the code type used for traversal (kNone traverses with SQ8).
inline size_t element_bytes(SqType t) { return t == SqType::kFP16 || t == SqType::kBF16 ? 2 : 1; }
inline SqType code_type(SqType t) { return t == SqType::kNone ? SqType::kSQ8 : t; }
// Row pitch of the code section: whole cache lines, so a row's codes span as few lines as its
// size allows and prefetching a row fetches nothing of its neighbours.
inline size_t code_row_bytes(SqType t, size_t dim) {
    return (element_bytes(code_type(t)) * dim + 63) / 64 * 64;
}

float sq8_l2_serial(const float*, const float*, const uint8_t*, size_t);
float sq8_ip_serial(const float*, const float*, const uint8_t*, size_t);
float f16_l2_serial(const float*, const float*, const uint8_t*, size_t);
float f16_ip_serial(const float*, const float*, const uint8_t*, size_t);
float bf16_l2_serial(const float*, const float*, const uint8_t*, size_t);
float bf16_ip_serial(const float*, const float*, const uint8_t*, size_t);
float sq8_l2_avx2(const float*, const float*, const uint8_t*, size_t);
float sq8_ip_avx2(const float*, const float*, const uint8_t*, size_t);
float f16_l2_avx2(const float*, const float*, const uint8_t*, size_t);
float f16_ip_avx2(const float*, const float*, const uint8_t*, size_t);
float bf16_l2_avx2(const float*, const float*, const uint8_t*, size_t);
float bf16_ip_avx2(const float*, const float*, const uint8_t*, size_t);

// Narrowing with round-to-nearest-even, saturating at the largest finite value (inputs finite).
uint16_t f32_to_f16(float f);
uint16_t f32_to_bf16(float f);

// Encodes row `x` (dim floats, already unit length for COSINE) into `code` (code_row_bytes;
// the padding is left as is). min / scale: SQ8's parameters (ignored for FP16/BF16).
void encode_row(SqType t, const float* x, size_t dim, const float* min, const float* scale,
                uint8_t* code);

}  // namespace sq
}  // namespace index
}  // namespace vecstore
