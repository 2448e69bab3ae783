// QuantizedFlat: exact k-NN over an immutable float32 matrix, two stages per query.
//
//   1. scan a compact uint8 copy of the rows (one byte per element, built once) with an integer
//      kernel (distance::DotU8I8Fn), and turn each row's integer dot product into a rigorous
//      interval [lo_i, hi_i] that contains the row's true key (the squared L2 distance, or minus
//      the IP / COSINE similarity);
//   2. tau = the k-th smallest hi_i over allowed rows; every allowed row whose lo_i could still
//      beat tau once float32 rounding of the final kernel is accounted for is a candidate, and the
//      candidates are re-ranked with exactly the float32 arithmetic `knn` (exact_search.h) uses.
//
// Results equal search::knn on the float32 matrix bit for bit: the same ids, the same float32
// values, the same (value, row) tie order, the same padding, the same nonfinite flag. Where the
// bounds cannot be made rigorous or would not prune (non-finite rows, values large enough to
// overflow float32, a zero COSINE query, candidate sets over a quarter of the rows) and for large
// batches (kDelegateMinQueries queries or more, where knn's batched path is faster) the call is
// answered by search::knn itself. The exactness argument is spelled out in quantized_flat.cc.
//
// Ownership and thread-safety: the QuantizedFlat keeps a view of the float32 matrix, which the
// caller owns (e.g. a memory-mapped sealed segment) and must keep alive and unchanged for the
// object's lifetime. Codes and per-row bounds are owned by the object (about rows * (dim + 12)
// bytes). After build() the object is immutable: search() may run from several threads at once.
// No call touches Python; callers release the GIL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "distance/distance.h"
#include "search/exact_search.h"

namespace vecstore {
namespace search {

// What a search() call did, for tests and benchmarks.
struct QuantizedSearchStats {
    uint64_t two_stage_queries = 0;  // queries answered by scan + re-rank
    uint64_t exact_queries = 0;      // queries handed to search::knn
    uint64_t candidates = 0;         // rows re-ranked in float32, summed over two-stage queries
};

class QuantizedFlat {
  public:
    // Batches of at least this many queries go to search::knn (its batched path is cheaper there).
    static constexpr size_t kDelegateMinQueries = 32;
    static constexpr size_t kMaxDim = 65536;

    // Quantises `base` (float32, 1 <= dim <= kMaxDim, at least one row) for `metric` (L2, IP or
    // COSINE). O(rows * dim), on up to `threads` threads (0 = all cores). InvalidArgument for any
    // other dtype or metric. Non-finite rows are accepted (knn reports them when it reads them):
    // such an object answers every query through search::knn.
    static Status build(const MatrixView& base, distance::Metric metric, int threads,
                        std::unique_ptr<QuantizedFlat>* out);

    // Same contract and outputs as search::knn(queries, base, k, metric, allow, threads, ...):
    // queries are float32 with base's dim, 1 <= k <= rows, allow as in exact_search.h.
    // `stats` may be null.
    Status search(const MatrixView& queries, size_t k, AllowBits allow, int threads,
                  int64_t* ids_out, float* values_out, bool* nonfinite,
                  QuantizedSearchStats* stats) const;

    size_t rows() const { return base_.rows; }
    size_t dim() const { return base_.dim; }
    distance::Metric metric() const { return metric_; }
    // Bytes owned by the object (codes and per-row, per-dimension data).
    size_t memory_bytes() const;

  private:
    QuantizedFlat() = default;

    struct QueryPlan;
    bool plan_query(const float* q, QueryPlan* plan) const;
    // Two-stage search of one query. Returns false (writing nothing) when it hands the query back
    // to the caller for search::knn (a candidate set too large to pay off in scan mode).
    bool search_one(const float* q, const QueryPlan& plan, size_t k, AllowBits allow, int threads,
                    bool gemm_values, int64_t* ids, float* vals, uint64_t* candidates) const;
    float lower_threshold(const QueryPlan& plan, double tau, bool gemm_values) const;

    MatrixView base_;
    distance::Metric metric_ = distance::Metric::kL2;
    size_t dim_pad_ = 0;         // dim rounded up to a multiple of 32 (DotU8I8Fn's step)
    bool exact_only_ = false;    // non-finite rows, or (COSINE) rows too small to bound
    std::vector<uint8_t> codes_;  // rows x dim_pad_, zero-padded
    // Per dimension: the row vectors y_i (L2: x_i - center; IP: x_i; COSINE: x_i / |x_i|) are
    // approximated by lo + scale * c_i (c_i the codes); mid is a typical code (centres c_i).
    std::vector<double> center_, lo_, scale_;
    std::vector<int> mid_;
    // Per row (float32, rounded so that each is a true upper bound unless noted):
    std::vector<float> sqnorm_;    // |y_i|^2 rounded to nearest (L2 only; error bounded in .cc)
    std::vector<float> resid_;     // R_i >= |y_i - (lo + scale * c_i)|
    std::vector<float> code_dev_;  // C_i >= |c_i - mid|
    // Maxima over rows and norms of per-dimension vectors, for the rounding slack.
    double sqnorm_max_ = 0, resid_max_ = 0, code_dev_max_ = 0, code_norm_max_ = 0;
    double row_norm_max_ = 0;  // >= max_i |x_i| (the float32 rows)
    double lo_norm_ = 0, mid_norm_ = 0;
};

}  // namespace search
}  // namespace vecstore
