#include "index/kmeans.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>

#include "common/macros.h"
#include "common/thread_pool.h"
#include "search/rows.h"

namespace vecstore {
namespace index {

using distance::Metric;

namespace {

// Rows assigned per knn call: bounds the per-query heaps knn allocates.
constexpr size_t kAssignChunk = 65536;

}  // namespace

Status nearest_l2(const search::MatrixView& rows, const float* centroids, size_t k, int threads,
                  int64_t* ids, float* vals) {
    const size_t n = rows.rows, dim = rows.dim;
    if (dim > kSmallDim) {
        const search::MatrixView cv{centroids, k, dim, dim * sizeof(float),
                                    distance::DType::kFloat32};
        for (size_t r0 = 0; r0 < n; r0 += kAssignChunk) {
            search::MatrixView part = rows;
            part.data = search::rows::row_ptr(rows, r0);
            part.rows = std::min(kAssignChunk, n - r0);
            bool bad = false;
            VS_RETURN_IF_ERROR(
                search::knn(part, cv, 1, Metric::kL2, nullptr, threads, ids + r0, vals + r0, &bad));
            if (bad) return Status::InvalidArgument("vectors hold NaN or infinite values");
        }
        return Status::OK();
    }
    // Centroids transposed (dim x k) so that the inner loop runs over k contiguous lanes:
    // d(x, c) = |x|^2 + (|c|^2 - 2 x.c), the bracket computed for all c at once.
    std::vector<float> ct(dim * k), cn(k, 0.0f);
    for (size_t c = 0; c < k; ++c) {
        for (size_t d = 0; d < dim; ++d) {
            const float v = centroids[c * dim + d];
            ct[d * k + c] = -2.0f * v;
            cn[c] += v * v;
        }
    }
    const size_t tasks = std::min<size_t>((n + 1023) / 1024, 64);
    std::atomic<bool> bad{false};
    ThreadPool::instance().parallel_for(tasks, threads, [&](size_t t) {
        std::vector<float> acc(k);
        for (size_t i = n * t / tasks; i < n * (t + 1) / tasks; ++i) {
            const float* x = reinterpret_cast<const float*>(search::rows::row_ptr(rows, i));
            std::copy(cn.begin(), cn.end(), acc.begin());
            float xx = 0;
            for (size_t d = 0; d < dim; ++d) {
                const float xd = x[d];
                xx += xd * xd;
                const float* col = &ct[d * k];
                for (size_t c = 0; c < k; ++c) acc[c] += xd * col[c];
            }
            size_t best = 0;
            for (size_t c = 1; c < k; ++c) {
                if (acc[c] < acc[best]) best = c;
            }
            const float v = xx + acc[best];
            if (!std::isfinite(v)) bad.store(true, std::memory_order_relaxed);
            ids[i] = static_cast<int64_t>(best);
            vals[i] = v < 0.0f ? 0.0f : v;
        }
    });
    if (bad.load()) return Status::InvalidArgument("vectors hold NaN or infinite values");
    return Status::OK();
}

std::vector<size_t> sample_rows(size_t n, size_t max_rows, uint64_t seed) {
    std::vector<size_t> out;
    if (max_rows == 0 || max_rows >= n) {
        out.resize(n);
        std::iota(out.begin(), out.end(), size_t{0});
        return out;
    }
    // Partial Fisher-Yates over an index permutation.
    std::vector<size_t> perm(n);
    std::iota(perm.begin(), perm.end(), size_t{0});
    SplitMix64 rng(seed ^ 0x5a3c1e0f00000001ull);
    for (size_t i = 0; i < max_rows; ++i) std::swap(perm[i], perm[i + rng.below(n - i)]);
    out.assign(perm.begin(), perm.begin() + max_rows);
    std::sort(out.begin(), out.end());
    return out;
}

Status kmeans(const search::MatrixView& data, size_t k, int niter, uint64_t seed, int threads,
              KMeansResult* out) {
    if (data.dtype != distance::DType::kFloat32 || data.dim == 0) {
        return Status::InvalidArgument("k-means needs float32 rows with at least one dimension");
    }
    const size_t n = data.rows, dim = data.dim;
    if (k == 0 || k > n) {
        return Status::InvalidArgument("k-means needs 1 <= k <= rows (k=" + std::to_string(k) +
                                       ", rows=" + std::to_string(n) + ")");
    }
    SplitMix64 rng(seed);
    std::vector<float>& cent = out->centroids;
    cent.assign(k * dim, 0.0f);
    {
        // k distinct rows: a partial Fisher-Yates over row indices.
        std::vector<size_t> perm(n);
        std::iota(perm.begin(), perm.end(), size_t{0});
        for (size_t i = 0; i < k; ++i) {
            std::swap(perm[i], perm[i + rng.below(n - i)]);
            std::memcpy(&cent[i * dim], search::rows::row_ptr(data, perm[i]), dim * sizeof(float));
        }
    }
    out->inertia = 0;
    out->reseeded = 0;
    std::vector<int64_t> assign(n);
    std::vector<float> dist(n);
    std::vector<size_t> counts(k), order(n), starts(k + 1);
    for (int it = 0; it <= niter; ++it) {
        VS_RETURN_IF_ERROR(nearest_l2(data, cent.data(), k, threads, assign.data(), dist.data()));
        double inertia = 0;
        for (size_t i = 0; i < n; ++i) inertia += dist[i];
        out->inertia = inertia;
        if (it == niter) break;  // the last pass only measures

        // Rows grouped by cluster (counting sort, stable: row order within a cluster).
        std::fill(counts.begin(), counts.end(), 0);
        for (size_t i = 0; i < n; ++i) ++counts[static_cast<size_t>(assign[i])];
        starts[0] = 0;
        for (size_t c = 0; c < k; ++c) starts[c + 1] = starts[c] + counts[c];
        {
            std::vector<size_t> fill(starts.begin(), starts.end() - 1);
            for (size_t i = 0; i < n; ++i) order[fill[static_cast<size_t>(assign[i])]++] = i;
        }
        const size_t tasks = std::min<size_t>(k, 64);
        ThreadPool::instance().parallel_for(tasks, threads, [&](size_t t) {
            std::vector<double> acc(dim);
            for (size_t c = k * t / tasks; c < k * (t + 1) / tasks; ++c) {
                if (counts[c] == 0) continue;
                std::fill(acc.begin(), acc.end(), 0.0);
                for (size_t j = starts[c]; j < starts[c + 1]; ++j) {
                    const float* x =
                        reinterpret_cast<const float*>(search::rows::row_ptr(data, order[j]));
                    for (size_t d = 0; d < dim; ++d) acc[d] += x[d];
                }
                const double inv = 1.0 / static_cast<double>(counts[c]);
                for (size_t d = 0; d < dim; ++d) cent[c * dim + d] = static_cast<float>(acc[d] * inv);
            }
        });
        // Re-seed empty clusters by splitting a populated one (picked proportionally to size).
        for (size_t c = 0; c < k; ++c) {
            if (counts[c] != 0) continue;
            size_t j = 0;
            for (;;) {
                const double p = rng.unit() * static_cast<double>(n);
                double cum = 0;
                for (j = 0; j < k; ++j) {
                    cum += static_cast<double>(counts[j]);
                    if (p < cum) break;
                }
                if (j < k && counts[j] > 1) break;
            }
            constexpr float kEps = 1.0f / 1024;
            for (size_t d = 0; d < dim; ++d) {
                const float v = cent[j * dim + d];
                const float s = (d % 2 == 0) ? kEps : -kEps;
                cent[c * dim + d] = v * (1 + s);
                cent[j * dim + d] = v * (1 - s);
            }
            counts[c] = counts[j] / 2;
            counts[j] -= counts[c];
            ++out->reseeded;
        }
    }
    return Status::OK();
}

}  // namespace index
}  // namespace vecstore
