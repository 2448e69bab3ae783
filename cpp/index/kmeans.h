// k-means (Lloyd) over float32 rows, the coarse and product quantisers' trainer.
//
// Contract
//   - Squared-L2 k-means. Initial centroids are k distinct rows picked by a seeded generator
//     (random init, as faiss's IVF training does: k-means++ is O(n k d) sequential work, too slow
//     for nlist in the thousands); then `niter` Lloyd iterations. Assignments use nearest_l2
//     (GEMM-style blocks on the active dot_tile kernel, multi-threaded).
//   - Empty clusters are re-seeded after each assignment by splitting a populated cluster picked
//     with probability proportional to its size: both halves get the centroid scaled by
//     (1 +- 1/1024) in alternating dimensions.
//   - Deterministic given (data, k, niter, seed): assignments do not depend on the thread count,
//     and the centroid update sums each cluster's rows in row order.
//
// Threads: up to `threads` (0 = all cores) from ThreadPool::instance(). No Python; callers
// release the GIL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "search/exact_search.h"

namespace vecstore {
namespace index {

// A small deterministic generator (splitmix64): the same stream on every platform and library,
// unlike std::uniform_int_distribution.
class SplitMix64 {
  public:
    explicit SplitMix64(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) (n > 0); the modulo bias is below 2^-40 for n < 2^24.
    size_t below(size_t n) { return static_cast<size_t>(next() % n); }
    double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

  private:
    uint64_t state_;
};

// Indices of min(n, max_rows) distinct rows out of n, in increasing order, picked with `seed`
// (max_rows == 0: all rows).
std::vector<size_t> sample_rows(size_t n, size_t max_rows, uint64_t seed);

// For each row of `rows` (float32, row stride a multiple of 4 bytes) the best of the k
// contiguous centroids (k x dim): L2 the smallest squared distance (vals: that distance, clamped
// at 0), IP / COSINE the largest inner product (vals: the inner product; for COSINE the caller
// passes unit centroids, so that is the largest cosine). Ties go to the smaller centroid id.
// Computed as GEMM blocks: centroids packed once into the active dot_tile kernel's panels, each
// block of rows scored against all of them, then an argmin/argmax (L2 via |c|^2 - 2 x.c).
// InvalidArgument when a value is NaN or infinite. Deterministic: no result depends on threads.
Status nearest_centroid(const search::MatrixView& rows, const float* centroids, size_t k,
                        distance::Metric metric, int threads, int64_t* ids, float* vals);

// nearest_centroid with the L2 metric (the k-means assignment step).
Status nearest_l2(const search::MatrixView& rows, const float* centroids, size_t k, int threads,
                  int64_t* ids, float* vals);

struct KMeansResult {
    std::vector<float> centroids;  // k x dim, row-major
    double inertia = 0;            // sum of squared distances at the last assignment
    size_t reseeded = 0;           // empty clusters re-seeded over all iterations
};

// Trains k centroids on the float32 rows of `data` (contiguous elements, any row stride).
// InvalidArgument unless 1 <= k <= data.rows and data is float32 with dim >= 1.
// With measure_inertia == false the final assignment pass, which only measures the inertia, is
// skipped (inertia stays 0): the index builders re-assign their rows themselves.
Status kmeans(const search::MatrixView& data, size_t k, int niter, uint64_t seed, int threads,
              KMeansResult* out, bool measure_inertia = true);

}  // namespace index
}  // namespace vecstore
