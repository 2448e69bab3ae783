// Distance kernels: the API every search path uses, and the per-ISA kernel declarations.
//
// Types and units
//   dim            elements per vector; for binary vectors, bits (a multiple of 8, packed
//                  little-endian bit order within each byte: bit j of byte b is dimension 8*b + j).
//   stride_bytes   distance in bytes between the starts of consecutive rows; >= the row's size.
//                  Rows need no alignment beyond their element size (all loads are unaligned).
//
// Metrics (Milvus's names and values)
//   L2       squared Euclidean distance, sum (a_i - b_i)^2        smaller is closer
//   IP       inner product, sum a_i * b_i                         larger is closer
//   COSINE   IP / (|a| |b|); 0 when either vector is all zeros     larger is closer
//   HAMMING  number of differing bits                             smaller is closer
//   JACCARD  1 - |a & b| / |a | b|; 0 when both are all zeros      smaller is closer
// float16, bfloat16 and int8 inputs are widened and accumulated in float32 (int8 in int32, exact).
// One documented exception: on CPUs with AVX512_BF16, IP over bfloat16 uses vdpbf16ps, which treats
// bfloat16 subnormals (|x| < 1.2e-38) as zero.
//
// Kernels never fail and never allocate. They read exactly n rows of dim elements and write n floats.
// Non-finite inputs give non-finite outputs (callers detect them on the output side).
//
// Naming: <op>_<dtype>_<isa>. Each ISA's kernels live in distance_<isa>.cc, compiled with that ISA's
// flags only; dispatch.cc probes the CPU once and fills the KernelTable that callers use.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vecstore {
namespace distance {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kInt8 = 3, kBinary = 4 };
enum class Metric : int { kL2 = 0, kIP = 1, kCosine = 2, kHamming = 3, kJaccard = 4 };
enum class SimdLevel : int { kSerial = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3 };

constexpr int kNumDTypes = 5;
constexpr int kNumMetrics = 5;

// True for the metrics where a larger value means closer (IP, COSINE).
inline bool higher_is_closer(Metric m) { return m == Metric::kIP || m == Metric::kCosine; }

// Bytes per element; binary vectors are handled in bytes by the caller (dim / 8).
inline size_t element_bytes(DType t) {
    switch (t) {
        case DType::kFloat32: return 4;
        case DType::kFloat16:
        case DType::kBFloat16: return 2;
        default: return 1;
    }
}

// One query against n rows: out[i] = metric(q, x + i * stride_bytes).
using ManyFn = void (*)(const void* q, const void* x, size_t n, size_t stride_bytes, size_t dim,
                        float* out);

// Widens one row of dim elements to float32: dst[k] = (float)src[k].
using ToF32Fn = void (*)(const void* src, size_t dim, float* dst);

// Register-tiled dot products for batched search (the inner kernel of a GEMM):
//   c[i * ldc + j] (+)= sum_{k < kc} q[i * ldq + k] * panel[k * nr + j]   for i < mr, j < nr
// where nr is the table's panel width and mr <= the table's max_mr. q rows are float32, panel is
// kc x nr float32 (row j of the panel is the j-th base row, k-major). With accumulate == false c is
// overwritten. The accumulation order of each (i, j) pair does not depend on mr or on where the pair
// sits in the tile, so blocking never changes a result.
using DotTileFn = void (*)(const float* q, size_t ldq, size_t mr, const float* panel, size_t kc,
                           float* c, size_t ldc, bool accumulate);

// Quantised scan (the first stage of search/quantized_flat.h): out[i] = sum_{k < dim} codes_i[k] * q[k]
// with codes_i = codes + i * stride_bytes (uint8) and q int8, exact in int32. Preconditions, which
// the AVX2 kernel relies on: dim is a multiple of 32 (callers zero-pad codes and q), and every
// |q[k]| <= 64, so that the pairwise sums of vpmaddubsw (at most 2 * 255 * 64 = 32640) never
// saturate int16 and every kernel returns the serial kernel's exact value.
using DotU8I8Fn = void (*)(const uint8_t* codes, size_t n, size_t stride_bytes, size_t dim,
                           const int8_t* q, int32_t* out);
constexpr int kDotU8I8MaxQuery = 64;

struct KernelTable {
    SimdLevel level = SimdLevel::kSerial;
    ManyFn many[kNumDTypes][kNumMetrics] = {};  // nullptr where the pair is not a valid combination
    ToF32Fn to_f32[kNumDTypes] = {};            // nullptr for binary
    DotTileFn dot_tile = nullptr;
    DotU8I8Fn dot_u8i8 = nullptr;
    size_t max_mr = 0;  // rows of q per dot_tile call
    size_t nr = 0;      // panel width
    const char* features = "";  // extra kernels in use, e.g. "avx512_vnni,avx512_bf16"
};

// The table in use. Thread-safe; set_level() swaps it atomically.
const KernelTable& active();

// The table for a given level; nullptr when the CPU (or this build) lacks it.
const KernelTable* table_for(SimdLevel level);

// Best level this CPU and build support.
SimdLevel best_level();

// Switches the active table. Returns false (and changes nothing) if the level is unavailable.
bool set_level(SimdLevel level);

const char* level_name(SimdLevel level);
bool parse_level(const char* name, SimdLevel* out);

// ---- per-ISA kernels ----------------------------------------------------------------------------
#define VS_DECLARE_ISA_KERNELS(isa)                                                                 \
    void l2sq_f32_##isa(const void*, const void*, size_t, size_t, size_t, float*);                 \
    void ip_f32_##isa(const void*, const void*, size_t, size_t, size_t, float*);                   \
    void cos_f32_##isa(const void*, const void*, size_t, size_t, size_t, float*);                  \
    void l2sq_f16_##isa(const void*, const void*, size_t, size_t, size_t, float*);                 \
    void ip_f16_##isa(const void*, const void*, size_t, size_t, size_t, float*);                   \
    void cos_f16_##isa(const void*, const void*, size_t, size_t, size_t, float*);                  \
    void l2sq_bf16_##isa(const void*, const void*, size_t, size_t, size_t, float*);                \
    void ip_bf16_##isa(const void*, const void*, size_t, size_t, size_t, float*);                  \
    void cos_bf16_##isa(const void*, const void*, size_t, size_t, size_t, float*);                 \
    void l2sq_i8_##isa(const void*, const void*, size_t, size_t, size_t, float*);                  \
    void ip_i8_##isa(const void*, const void*, size_t, size_t, size_t, float*);                    \
    void cos_i8_##isa(const void*, const void*, size_t, size_t, size_t, float*);                   \
    void hamming_b1_##isa(const void*, const void*, size_t, size_t, size_t, float*);               \
    void jaccard_b1_##isa(const void*, const void*, size_t, size_t, size_t, float*);               \
    void to_f32_f16_##isa(const void*, size_t, float*);                                            \
    void to_f32_bf16_##isa(const void*, size_t, float*);                                           \
    void to_f32_i8_##isa(const void*, size_t, float*);                                             \
    void dot_tile_f32_##isa(const float*, size_t, size_t, const float*, size_t, float*, size_t,    \
                            bool);

VS_DECLARE_ISA_KERNELS(serial)
VS_DECLARE_ISA_KERNELS(avx2)
VS_DECLARE_ISA_KERNELS(avx512)
VS_DECLARE_ISA_KERNELS(neon)
#undef VS_DECLARE_ISA_KERNELS

// Quantised scan kernels (DotU8I8Fn). The AVX2 one also serves the avx512 table; NEON uses serial
// until a NEON kernel can be tested on hardware.
void dot_u8i8_serial(const uint8_t*, size_t, size_t, size_t, const int8_t*, int32_t*);
void dot_u8i8_avx2(const uint8_t*, size_t, size_t, size_t, const int8_t*, int32_t*);

// AVX-512 extensions, used on top of the avx512 table when the CPU has them.
void ip_i8_avx512vnni(const void*, const void*, size_t, size_t, size_t, float*);
void l2sq_i8_avx512vnni(const void*, const void*, size_t, size_t, size_t, float*);
void cos_i8_avx512vnni(const void*, const void*, size_t, size_t, size_t, float*);
void ip_bf16_avx512bf16(const void*, const void*, size_t, size_t, size_t, float*);
void hamming_b1_avx512popcnt(const void*, const void*, size_t, size_t, size_t, float*);
void jaccard_b1_avx512popcnt(const void*, const void*, size_t, size_t, size_t, float*);

// Panel geometry of each ISA's dot_tile kernel.
constexpr size_t kSerialMr = 4, kSerialNr = 8;
constexpr size_t kAvx2Mr = 6, kAvx2Nr = 16;
constexpr size_t kAvx512Mr = 6, kAvx512Nr = 32;
constexpr size_t kNeonMr = 4, kNeonNr = 16;
constexpr size_t kMaxMr = 8;

}  // namespace distance
}  // namespace vecstore
