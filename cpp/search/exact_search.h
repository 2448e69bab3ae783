// Exact (brute-force) search: distance matrices and k-nearest-neighbours over a matrix of rows.
//
// Two execution paths, chosen per call:
//   scan  one query at a time against blocks of rows with the ManyFn kernels. Memory-bound; used for
//         few queries, for binary vectors, and wherever the batched path does not apply.
//   gemm  (float32/float16/bfloat16/int8 with L2, IP, COSINE and at least kGemmMinQueries queries)
//         rows are widened to float32 and packed into panels once per block, and a register-tiled
//         kernel computes query x row dot products; L2 and COSINE come from the dots and the norms
//         (|q|^2 + |x|^2 - 2 q.x, clamped at 0). Compute-bound: each packed block is reused by every
//         query while it sits in L2.
// Both paths give values within float32 rounding of the exact metric; within one path a (query, row)
// value never depends on blocking or thread count.
//
// Threads: many queries are split into query chunks; few queries into row ranges (each with its own
// top-k lists, merged at the end). Tasks run on ThreadPool::instance() with at most `threads`
// threads (0 = all cores). No call touches Python; callers release the GIL.
//
// Inputs are not validated here beyond internal invariants: the Python layer checks dtypes, shapes,
// strides, k and the allow-set size first, and the glue re-checks shapes (cpp/python/bind_search.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "distance/distance.h"

namespace vecstore {
namespace search {

// A read-only row-major matrix: row r starts at data + r * stride_bytes. `dim` counts elements
// (bits for binary). The memory belongs to the caller and must outlive the call.
struct MatrixView {
    const void* data = nullptr;
    size_t rows = 0;
    size_t dim = 0;
    size_t stride_bytes = 0;
    distance::DType dtype = distance::DType::kFloat32;
};

// Packed allow-set: row r may be returned iff bit (r % 8) of bits[r / 8] is set; nullptr = all rows.
// It must hold at least ceil(rows / 8) bytes.
using AllowBits = const uint8_t*;

constexpr size_t kGemmMinQueries = 8;

// out[i * b.rows + j] = metric(a_i, b_j), in Milvus's units (see distance.h).
// *nonfinite is set when a value is NaN or infinite (an input held NaN/inf, or overflowed float32).
Status cdist(const MatrixView& a, const MatrixView& b, distance::Metric metric, int threads,
             float* out, bool* nonfinite);

// For each query the k closest allowed rows, best first: ids_out[i * k + j], values_out[i * k + j]
// (values in Milvus's units, so IP/COSINE descend and the others ascend). Ties: smaller row id first.
// When fewer than k rows are allowed the tail holds id -1 and value +inf (L2, HAMMING, JACCARD) or
// -inf (IP, COSINE). *nonfinite is set when a value for an allowed row was NaN or infinite; rows
// outside the allow-set may not be read at all.
Status knn(const MatrixView& queries, const MatrixView& base, size_t k, distance::Metric metric,
           AllowBits allow, int threads, int64_t* ids_out, float* values_out, bool* nonfinite);

}  // namespace search
}  // namespace vecstore
