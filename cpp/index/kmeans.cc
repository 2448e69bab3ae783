#include "index/kmeans.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <numeric>

#include "common/macros.h"
#include "common/thread_pool.h"
#include "search/rows.h"

namespace vecstore {
namespace index {

using distance::Metric;

namespace {

// Rows per inner block: the dot products of kBlockRows rows with every centroid (kBlockRows * k
// floats) stay in L2 while each centroid panel (dim x nr floats) is reused by all of them.
constexpr size_t kBlockRows = 48;
constexpr size_t kTaskRows = 1024;

// argmin_j (s[j] + bias[j]) over j < k, ties to the smaller j; *best_value gets the minimum.
// Returns k when no value is below +inf (NaN or infinite inputs). Eight independent lanes (lane l
// sees j = l mod 8 in increasing order, strict <) reduced at the end: the branchy scalar loop
// cost as much as the dot products for PQ's 8-dim sub-spaces. SSE2 is x86-64's baseline.
size_t argmin_biased(const float* s, const float* bias, size_t k, float* best_value) {
    constexpr size_t kLanes = 8;
    alignas(16) float lv[kLanes];
    alignas(16) int32_t li[kLanes];
    const size_t kk = k / kLanes * kLanes;
#if defined(__SSE2__)
    const __m128 inf = _mm_set1_ps(std::numeric_limits<float>::infinity());
    __m128 v0 = inf, v1 = inf;
    __m128i i0 = _mm_setzero_si128(), i1 = _mm_setzero_si128();
    __m128i j0 = _mm_setr_epi32(0, 1, 2, 3), j1 = _mm_setr_epi32(4, 5, 6, 7);
    const __m128i step = _mm_set1_epi32(static_cast<int32_t>(kLanes));
    for (size_t j = 0; j < kk; j += kLanes) {
        const __m128 a0 = _mm_add_ps(_mm_loadu_ps(s + j), _mm_loadu_ps(bias + j));
        const __m128 a1 = _mm_add_ps(_mm_loadu_ps(s + j + 4), _mm_loadu_ps(bias + j + 4));
        const __m128 m0 = _mm_cmplt_ps(a0, v0), m1 = _mm_cmplt_ps(a1, v1);
        v0 = _mm_or_ps(_mm_and_ps(m0, a0), _mm_andnot_ps(m0, v0));
        v1 = _mm_or_ps(_mm_and_ps(m1, a1), _mm_andnot_ps(m1, v1));
        const __m128i n0 = _mm_castps_si128(m0), n1 = _mm_castps_si128(m1);
        i0 = _mm_or_si128(_mm_and_si128(n0, j0), _mm_andnot_si128(n0, i0));
        i1 = _mm_or_si128(_mm_and_si128(n1, j1), _mm_andnot_si128(n1, i1));
        j0 = _mm_add_epi32(j0, step);
        j1 = _mm_add_epi32(j1, step);
    }
    _mm_store_ps(lv, v0);
    _mm_store_ps(lv + 4, v1);
    _mm_store_si128(reinterpret_cast<__m128i*>(li), i0);
    _mm_store_si128(reinterpret_cast<__m128i*>(li + 4), i1);
#else
    for (size_t l = 0; l < kLanes; ++l) {
        lv[l] = std::numeric_limits<float>::infinity();
        li[l] = 0;
    }
    for (size_t j = 0; j < kk; j += kLanes) {
        for (size_t l = 0; l < kLanes; ++l) {
            const float v = s[j + l] + bias[j + l];
            if (v < lv[l]) {
                lv[l] = v;
                li[l] = static_cast<int32_t>(j + l);
            }
        }
    }
#endif
    float bv = std::numeric_limits<float>::infinity();
    size_t best = k;
    for (size_t l = 0; l < kLanes; ++l) {
        const size_t id = static_cast<size_t>(li[l]);
        if (lv[l] < bv || (lv[l] == bv && lv[l] < std::numeric_limits<float>::infinity() &&
                           id < best)) {
            bv = lv[l];
            best = id;
        }
    }
    for (size_t j = kk; j < k; ++j) {
        const float v = s[j] + bias[j];
        if (v < bv) {
            bv = v;
            best = j;
        }
    }
    *best_value = bv;
    return best;
}

}  // namespace

Status nearest_centroid(const search::MatrixView& rows, const float* centroids, size_t k,
                        Metric metric, int threads, int64_t* ids, float* vals) {
    const size_t n = rows.rows, dim = rows.dim;
    if (n == 0) return Status::OK();
    VS_CHECK(rows.dtype == distance::DType::kFloat32 && rows.stride_bytes % sizeof(float) == 0);
    const distance::KernelTable& kt = distance::active();
    const size_t nr = kt.nr, mr = kt.max_mr;
    const size_t panels = (k + nr - 1) / nr, width = panels * nr;
    const bool l2 = metric == Metric::kL2;
    // Centroids packed once into nr-wide, k-major panels (the DotTileFn layout), zero-padded,
    // as -2 c (L2) or -c (IP, COSINE): score_j = bias_j + x.(that) with bias_j = |c_j|^2 (L2) or
    // 0, so the best centroid is always argmin_j score_j (L2: |x - c_j|^2 = |x|^2 + score_j).
    // Padding columns get bias +inf and never win.
    const float scale = l2 ? -2.0f : -1.0f;
    std::vector<float> packed(width * dim, 0.0f), bias(width);
    for (size_t j = 0; j < width; ++j) {
        float* panel = packed.data() + (j / nr) * nr * dim;
        if (j >= k) {
            bias[j] = std::numeric_limits<float>::infinity();
            continue;
        }
        const float* c = centroids + j * dim;
        float cc = 0;
        for (size_t d = 0; d < dim; ++d) {
            panel[d * nr + (j % nr)] = scale * c[d];
            cc += c[d] * c[d];
        }
        bias[j] = l2 ? cc : 0.0f;
    }
    const size_t ldq = rows.stride_bytes / sizeof(float);
    const size_t tasks = (n + kTaskRows - 1) / kTaskRows;
    std::atomic<bool> bad{false};
    ThreadPool::instance().parallel_for(tasks, threads, [&](size_t t) {
        std::vector<float> scores(kBlockRows * width);
        const size_t t1 = std::min(n, (t + 1) * kTaskRows);
        for (size_t b0 = t * kTaskRows; b0 < t1; b0 += kBlockRows) {
            const size_t nb = std::min(kBlockRows, t1 - b0);
            const float* xb = reinterpret_cast<const float*>(search::rows::row_ptr(rows, b0));
            for (size_t p = 0; p < panels; ++p) {
                for (size_t g = 0; g < nb; g += mr) {
                    const size_t m = std::min(mr, nb - g);
                    for (size_t kc0 = 0; kc0 < dim; kc0 += search::rows::kGemmKc) {
                        const size_t kc = std::min(search::rows::kGemmKc, dim - kc0);
                        kt.dot_tile(xb + g * ldq + kc0, ldq, m,
                                    packed.data() + p * nr * dim + kc0 * nr, kc,
                                    scores.data() + g * width + p * nr, width, kc0 > 0);
                    }
                }
            }
            for (size_t i = 0; i < nb; ++i) {
                float bv;
                size_t best = argmin_biased(scores.data() + i * width, bias.data(), k, &bv);
                float v;
                if (best >= k) {
                    // Every score NaN or +inf: a non-finite input.
                    best = 0;
                    v = std::numeric_limits<float>::quiet_NaN();
                } else if (l2) {
                    const float* x = xb + i * ldq;
                    float xx = 0;
                    for (size_t d = 0; d < dim; ++d) xx += x[d] * x[d];
                    v = xx + bv;
                    v = v < 0.0f ? 0.0f : v;  // cancellation can dip below zero
                } else {
                    v = -bv;
                }
                if (!std::isfinite(v)) bad.store(true, std::memory_order_relaxed);
                ids[b0 + i] = static_cast<int64_t>(best);
                vals[b0 + i] = v;
            }
        }
    });
    if (bad.load()) return Status::InvalidArgument("vectors hold NaN or infinite values");
    return Status::OK();
}

Status nearest_l2(const search::MatrixView& rows, const float* centroids, size_t k, int threads,
                  int64_t* ids, float* vals) {
    return nearest_centroid(rows, centroids, k, Metric::kL2, threads, ids, vals);
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
              KMeansResult* out, bool measure_inertia) {
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
        if (it == niter && !measure_inertia) break;
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
