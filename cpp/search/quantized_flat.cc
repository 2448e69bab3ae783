// QuantizedFlat: quantised scan + exact float32 re-rank. See quantized_flat.h for the contract.
//
// Exactness argument
// ------------------
// Notation (real arithmetic unless marked): x_i the float32 rows, q the query. Per metric the
// row vectors y_i and the query vector p are
//   L2      y_i = x_i - a, p = q - a (a = per-dim sample median) key_i = |q - x_i|^2
//                                                              = |p|^2 + |y_i|^2 - 2 p.y_i
//   IP      y_i = x_i,     p = q                                key_i = -p.y_i
//   COSINE  y_i = x_i/|x_i| (0 for a zero row), p = q/|q|      key_i = -p.y_i
// and a smaller key is better, as in TopK. Build stores codes c_i in [0, 255]^dim with
// y_i = lo + S c_i + e_i (S = diag(scale)), and per row R_i >= |e_i|, C_i >= |c_i - m| (m = mid),
// N_i ~ |y_i|^2. Per query, v = S p is quantised to u = round(v / t) with |u_j| <= 64 and
// W = v - t u. Then exactly
//   p.y_i = p.lo + v.c_i + p.e_i = [p.lo + W.m] + t (u.c_i) + W.(c_i - m) + p.e_i,
// and by Cauchy-Schwarz |W.(c_i - m) + p.e_i| <= |W| C_i + |p| R_i. u.c_i is the integer the scan
// kernel returns exactly. So key_i lies in [est_i - h_i, est_i + h_i] with
//   L2:      est_i = |p|^2 - 2K + N_i - 2t (u.c_i),  h_i = 2(|W| C_i + |p| R_i) + 2^-22 N_i + ...
//   IP, COS: est_i = -K - t (u.c_i),                 h_i = |W| C_i + |p| R_i + ...
// (K = p.lo + W.m). The "..." is a per-query slack that covers the double-precision rounding of
// the per-query quantities (relative 1e-9 of the magnitudes involved, far above dim * 2^-53), plus
// a per-row 2^-19 of the magnitudes in the float32 evaluation of est_i +- h_i (above its ~10
// roundings of 2^-24 each); the 2^-22 N_i covers N_i's rounding to float32. So the computed
// U_i = est_i + h_i >= key_i >= L_i = est_i - h_i hold rigorously. Per-row slacks keep an outlier
// row's large bounds from loosening every other row's.
//
// Let tau be the k-th smallest U_i over allowed rows (+inf if fewer than k are allowed). At least
// k allowed rows have key_i <= tau. The value knn returns for a row is f_i, a float32 evaluation
// of key_i by one of two paths, with eps = (dim + 8) 2^-23 (twice the classical gamma_dim bound of
// a dim-term sum, covering FMA or not, any summation order, and the final few roundings):
//   scan L2 (fewer than kGemmMinQueries queries):  |f - key| <= eps key + tau0
//   gemm L2 (|q|^2 + |x|^2 - 2 q.x):               |f - key| <= eps (|q| + |x|)^2 + tau0
//   IP, both paths:                                |f - key| <= eps |q| |x| + tau0
//                                                  (folded into R_i and the slack: for IP the
//                                                  intervals bound f itself, and E = 0 below)
//   COSINE, both paths (rows and query not tiny):  |f - key| <= 4 eps + tau0
// where tau0 = (dim + 8) 2^-140 bounds underflow. So those k rows have f <= F := tau + E (scan
// L2: tau (1 + eps) + tau0), and a row j with f_j > F is beaten, strictly, by k rows and cannot be
// in the top k by (f, row). f_j > F is guaranteed when L_j > Lthr (Lthr = F + E, or for scan L2
// (F + tau0) / (1 - eps)), so the rows with L_j <= Lthr (the candidates) contain the top k, and
// the top k of the candidates under the same f and the same tie rule is the top k overall.
// Overflow is excluded up front ((|q| + max|x|)^2 < 1e37, else the query batch goes to knn), so
// no f is non-finite; COSINE with a query or row of squared norm below 1e-30 goes to knn too.
//
// The candidates' f are computed exactly as knn computes them: with the active table's ManyFn
// kernel one row at a time (scan path; a row's value does not depend on its neighbours), or, for
// batches knn would run on its gemm path, by packing the candidates into panels and running the
// same dot_tile / norm / combine sequence as exact_search.cc's gemm_task.
#include "search/quantized_flat.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/macros.h"
#include "common/thread_pool.h"
#include "search/rows.h"
#include "search/topk.h"

namespace vecstore {
namespace search {

using distance::KernelTable;
using distance::Metric;

using rows::allowed;
using rows::for_each_allowed_run;
using rows::is_bad;
using rows::kGemmKc;
using rows::row_ptr;

namespace {

constexpr size_t kSampleRows = 4096;      // rows sampled for the per-dimension code ranges
constexpr double kClipQuantile = 0.001;   // values beyond these sample quantiles are clipped
constexpr size_t kBlockRows = 512;        // rows per scan block (dots and bounds stay in L1)
constexpr size_t kParallelMinRows = 32768;
constexpr float kEvalSlack = 1.0f / (1 << 19);  // see the bound loop in search_one



// eps and tau0 of the exactness argument: relative and underflow bounds of the float32 kernels.
inline double final_eps(size_t dim) { return static_cast<double>(dim + 8) * std::ldexp(1.0, -23); }
inline double final_tau0(size_t dim) {
    return static_cast<double>(dim + 8) * std::ldexp(1.0, -140);
}


// The smallest float32 >= v (v finite and below FLT_MAX, or +inf).
inline float round_up_f32(double v) {
    float f = static_cast<float>(v);
    if (static_cast<double>(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
    return f;
}

inline double norm_of(const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e * e;
    return std::sqrt(s);
}


inline size_t chunk_begin(size_t total, size_t chunks, size_t i) {
    return std::min(total, (total * i / chunks + 63) / 64 * 64);
}

size_t row_chunks(size_t rows, int threads) {
    const size_t t = static_cast<size_t>(ThreadPool::resolve_threads(threads));
    if (t <= 1 || rows < kParallelMinRows) return 1;
    return 2 * t;  // two per thread even out a noisy machine
}

// 1/sqrt(n) for a squared norm, 0 for a zero vector (exact_search.cc's inv_norm).
inline float inv_norm(float n) {
    if (n > 0.0f && n <= FLT_MAX) return 1.0f / std::sqrt(n);
    return n == 0.0f ? 0.0f : n;
}

}  // namespace

// Everything one query needs for the scan, in float32 for the vectorised bound loop.
struct QuantizedFlat::QueryPlan {
    std::vector<int8_t> u;  // dim_pad_ query codes, |u| <= 64
    float c0 = 0, abs_c0 = 0, beta = 0;  // est_i = c0 + [N_i] + beta * dot_i
    float p_code = 0, p_resid = 0, p0 = 0;  // h_i = p_code C_i + p_resid R_i + p0 [+ nu N_i]
    double qnorm = 0;             // |q| (float32 query), for the final-rounding slack
};

// ---- build -------------------------------------------------------------------------------------

Status QuantizedFlat::build(const MatrixView& base, Metric metric, int threads,
                            std::unique_ptr<QuantizedFlat>* out) {
    if (base.dtype != distance::DType::kFloat32) {
        return Status::InvalidArgument("QuantizedFlat needs a float32 matrix");
    }
    if (metric != Metric::kL2 && metric != Metric::kIP && metric != Metric::kCosine) {
        return Status::InvalidArgument("QuantizedFlat supports the L2, IP and COSINE metrics");
    }
    if (base.rows == 0) return Status::InvalidArgument("QuantizedFlat needs at least one row");
    if (base.dim == 0 || base.dim > kMaxDim) {
        return Status::InvalidArgument("QuantizedFlat needs 1 <= dim <= " +
                                       std::to_string(kMaxDim));
    }
    std::unique_ptr<QuantizedFlat> qf(new QuantizedFlat());
    QuantizedFlat& s = *qf;
    const size_t n = base.rows, dim = base.dim;
    s.base_ = base;
    s.metric_ = metric;
    s.dim_pad_ = (dim + 31) / 32 * 32;
    const bool cosine = metric == Metric::kCosine;

    // Pass A: finiteness and row norms.
    const size_t chunks = row_chunks(n, threads);
    struct ChunkA {
        double max_norm = 0;
        bool bad = false, tiny = false;
    };
    std::vector<ChunkA> ca(chunks);
    ThreadPool::instance().parallel_for(chunks, threads, [&](size_t c) {
        ChunkA& a = ca[c];
        for (size_t r = chunk_begin(n, chunks, c); r < chunk_begin(n, chunks, c + 1); ++r) {
            const float* x = reinterpret_cast<const float*>(row_ptr(base, r));
            double nn = 0;
            for (size_t j = 0; j < dim; ++j) nn += static_cast<double>(x[j]) * x[j];
            if (!std::isfinite(nn)) {  // NaN/inf entries (squares of finite floats fit a double)
                a.bad = true;
                continue;
            }
            const double norm = std::sqrt(nn);
            a.max_norm = std::max(a.max_norm, norm);
            if (cosine && nn > 0 && nn < 1e-30) a.tiny = true;
        }
    });
    for (const ChunkA& a : ca) {
        s.exact_only_ |= a.bad || a.tiny;
        s.row_norm_max_ = std::max(s.row_norm_max_, a.max_norm);
    }
    s.row_norm_max_ = s.row_norm_max_ * (1 + 1e-9) + 1e-30;
    if (s.exact_only_) {
        *out = std::move(qf);
        return Status::OK();
    }
    s.center_.assign(dim, 0.0);  // zero while sampling; L2 then centres on the sample median
    // y_j of row r, in double.
    auto row_y = [&](size_t r, double* y) {
        const float* x = reinterpret_cast<const float*>(row_ptr(base, r));
        if (cosine) {
            double nn = 0;
            for (size_t j = 0; j < dim; ++j) nn += static_cast<double>(x[j]) * x[j];
            const double inv = nn > 0 ? 1.0 / std::sqrt(nn) : 0.0;
            for (size_t j = 0; j < dim; ++j) y[j] = x[j] * inv;
        } else {
            for (size_t j = 0; j < dim; ++j) y[j] = x[j] - s.center_[j];
        }
    };

    // Code ranges from a strided sample: per dimension the [0.1%, 99.9%] quantiles, so that a few
    // outliers cost their own rows a larger residual instead of coarsening every row's codes.
    const size_t m = std::min(n, kSampleRows);
    std::vector<double> sample(m * dim), y(dim), col(m);
    for (size_t i = 0; i < m; ++i) row_y(i * n / m, sample.data() + i * dim);
    s.lo_.resize(dim);
    s.scale_.resize(dim);
    s.mid_.resize(dim);
    // The median, not the mean, centres L2 (and picks mid): a few huge outliers would drag a mean
    // far from every other row and inflate |p| in every bound.
    const size_t qlo = static_cast<size_t>(std::floor(kClipQuantile * static_cast<double>(m - 1)));
    const size_t qhi = m - 1 - qlo;
    for (size_t j = 0; j < dim; ++j) {
        for (size_t i = 0; i < m; ++i) col[i] = sample[i * dim + j];
        std::nth_element(col.begin(), col.begin() + m / 2, col.end());
        const double median = col[m / 2];
        std::nth_element(col.begin(), col.begin() + qlo, col.end());
        const double lo = col[qlo];
        std::nth_element(col.begin(), col.begin() + qhi, col.end());
        const double hi = col[qhi];
        const double centre = metric == Metric::kL2 ? median : 0.0;
        s.center_[j] = centre;
        s.lo_[j] = lo - centre;
        s.scale_[j] = hi > lo ? (hi - lo) / 255.0 : 1.0;
        s.mid_[j] = static_cast<int>(
            std::min(255.0, std::max(0.0, std::nearbyint((median - lo) / s.scale_[j]))));
    }
    s.lo_norm_ = norm_of(s.lo_);
    double mid2 = 0;
    for (int v : s.mid_) mid2 += static_cast<double>(v) * v;
    s.mid_norm_ = std::sqrt(mid2);

    // Pass B: codes and per-row bounds.
    s.codes_.assign(n * s.dim_pad_, 0);
    s.resid_.resize(n);
    s.code_dev_.resize(n);
    if (metric == Metric::kL2) s.sqnorm_.resize(n);
    struct ChunkB {
        double sqnorm = 0, resid = 0, code_dev = 0, code_norm = 0;
    };
    std::vector<ChunkB> cb(chunks);
    std::vector<double> row_norm(n);
    ThreadPool::instance().parallel_for(chunks, threads, [&](size_t c) {
        ChunkB& b = cb[c];
        std::vector<double> yr(dim);
        for (size_t r = chunk_begin(n, chunks, c); r < chunk_begin(n, chunks, c + 1); ++r) {
            row_y(r, yr.data());
            row_norm[r] = 0;
            if (metric == Metric::kIP) {
                const float* x = reinterpret_cast<const float*>(row_ptr(base, r));
                double nn = 0;
                for (size_t j = 0; j < dim; ++j) nn += static_cast<double>(x[j]) * x[j];
                row_norm[r] = std::sqrt(nn) * (1 + 1e-9);
            }
            uint8_t* code = s.codes_.data() + r * s.dim_pad_;
            double e2 = 0, y2 = 0, yh2 = 0;
            int64_t dev2 = 0, c2 = 0;
            for (size_t j = 0; j < dim; ++j) {
                const double t = std::nearbyint((yr[j] - s.lo_[j]) / s.scale_[j]);
                const int cj = static_cast<int>(std::min(255.0, std::max(0.0, t)));
                code[j] = static_cast<uint8_t>(cj);
                const double yh = s.lo_[j] + s.scale_[j] * cj;
                const double e = yr[j] - yh;
                e2 += e * e;
                y2 += yr[j] * yr[j];
                yh2 += yh * yh;
                dev2 += static_cast<int64_t>(cj - s.mid_[j]) * (cj - s.mid_[j]);
                c2 += static_cast<int64_t>(cj) * cj;
            }
            // Each e_j is within 2^-52 (|y_j| + |yh_j|) of the real residual (the rounding of
            // yh and of the subtraction; y_j itself is within dim * 2^-53 |y| for COSINE), and
            // the norm is within (dim + 2) 2^-53 relative: 1e-10 covers both up to kMaxDim.
            const double resid = std::sqrt(e2) * (1 + 1e-10) +
                                 1e-10 * (std::sqrt(y2) + std::sqrt(yh2)) + 1e-300;
            // IP: the float32 rounding of the final value, |f - q.x| <= eps |q| |x_i| + tau0, is
            // folded in here (|p| = |q|), so that U_i and L_i bound f itself and an outlier's
            // large |x_i| costs only its own row (tau0 goes into the per-query slack).
            const double ip_round = metric == Metric::kIP ? final_eps(dim) * row_norm[r] : 0.0;
            s.resid_[r] = round_up_f32(resid + ip_round);
            s.code_dev_[r] = round_up_f32(std::sqrt(static_cast<double>(dev2)) * (1 + 1e-12));
            if (metric == Metric::kL2) s.sqnorm_[r] = static_cast<float>(y2);
            b.sqnorm = std::max(b.sqnorm, y2);
            b.resid = std::max(b.resid, static_cast<double>(s.resid_[r]));
            b.code_dev = std::max(b.code_dev, static_cast<double>(s.code_dev_[r]));
            b.code_norm = std::max(b.code_norm, std::sqrt(static_cast<double>(c2)));
        }
    });
    for (const ChunkB& b : cb) {
        s.sqnorm_max_ = std::max(s.sqnorm_max_, b.sqnorm * (1 + 1e-6));
        s.resid_max_ = std::max(s.resid_max_, b.resid);
        s.code_dev_max_ = std::max(s.code_dev_max_, b.code_dev);
        s.code_norm_max_ = std::max(s.code_norm_max_, b.code_norm * (1 + 1e-12));
    }
    *out = std::move(qf);
    return Status::OK();
}

size_t QuantizedFlat::memory_bytes() const {
    return codes_.size() + (sqnorm_.size() + resid_.size() + code_dev_.size()) * sizeof(float) +
           (center_.size() + lo_.size() + scale_.size()) * sizeof(double) +
           mid_.size() * sizeof(int) + sizeof(*this);
}

// ---- search ------------------------------------------------------------------------------------

// Fills plan for query q; false when this query must go to knn (see the argument at the top).
bool QuantizedFlat::plan_query(const float* q, QueryPlan* plan) const {
    const size_t dim = base_.dim;
    double qq = 0;
    for (size_t j = 0; j < dim; ++j) qq += static_cast<double>(q[j]) * q[j];
    if (!std::isfinite(qq)) return false;
    const double qnorm = std::sqrt(qq);
    const double reach = qnorm + row_norm_max_;
    if (!(reach * reach < 1e37)) return false;
    if (metric_ == Metric::kCosine && !(qq >= 1e-30)) return false;
    plan->qnorm = qnorm * (1 + 1e-9);

    std::vector<double> p(dim), v(dim);
    const double inv = metric_ == Metric::kCosine ? 1.0 / qnorm : 1.0;
    double vmax = 0;
    for (size_t j = 0; j < dim; ++j) {
        p[j] = metric_ == Metric::kCosine ? q[j] * inv : q[j] - center_[j];
        v[j] = p[j] * scale_[j];
        vmax = std::max(vmax, std::fabs(v[j]));
    }
    const double t = vmax > 0 ? vmax / distance::kDotU8I8MaxQuery : 1.0;
    plan->u.assign(dim_pad_, 0);
    double k_const = 0, w2 = 0, u2 = 0;
    for (size_t j = 0; j < dim; ++j) {
        const double uj = std::max<double>(
            -distance::kDotU8I8MaxQuery,
            std::min<double>(distance::kDotU8I8MaxQuery, std::nearbyint(v[j] / t)));
        plan->u[j] = static_cast<int8_t>(uj);
        const double w = v[j] - t * uj;
        k_const += p[j] * lo_[j] + w * mid_[j];
        w2 += w * w;
        u2 += uj * uj;
    }
    const double pp = norm_of(p) * norm_of(p);
    const double pn = std::sqrt(pp) * (1 + 1e-9), wn = std::sqrt(w2) * (1 + 1e-9);
    const double vn = norm_of(v) * (1 + 1e-9);
    const bool l2 = metric_ == Metric::kL2;
    // Double-rounding slack: 1e-9 of every magnitude the per-query quantities are built from
    // (including W's own rounding, which is relative to |v|, not |W|).
    // Row-dependent roundings (N_i, R_i) are bounded per row, at build and by nu in the scan.
    double eta = 1e-9 * (pn * lo_norm_ + (vn + wn) * (code_norm_max_ + mid_norm_) +
                         (l2 ? pn * pn : 0.0));
    const double dot_max = std::sqrt(u2) * code_norm_max_;
    double c0, beta, p_code, p_resid;
    if (l2) {
        c0 = pp - 2 * k_const;
        beta = -2 * t;
        p_code = 2 * wn;
        p_resid = 2 * pn;
        eta *= 2;
    } else {
        c0 = -k_const;
        beta = -t;
        p_code = wn;
        p_resid = pn;
    }
    // Every float32 intermediate of the scan's bound loop stays below g: no overflow.
    const double g = std::fabs(c0) + (l2 ? 2 * sqnorm_max_ : 0.0) + std::fabs(beta) * dot_max +
                     p_code * code_dev_max_ + p_resid * resid_max_ + eta;
    if (!(g < 1e30)) return false;
    plan->c0 = static_cast<float>(c0);
    plan->abs_c0 = std::fabs(plan->c0);
    plan->beta = static_cast<float>(beta);
    plan->p_code = round_up_f32(p_code);
    plan->p_resid = round_up_f32(p_resid);
    plan->p0 = round_up_f32(eta + (metric_ == Metric::kIP ? final_tau0(dim) : 0.0) + 1e-37);
    return true;
}

// The candidate threshold Lthr on the lower bounds for a given tau (see the argument at the top of
// the file). Non-decreasing in tau, so a threshold from any tau' >= tau keeps a superset.
float QuantizedFlat::lower_threshold(const QueryPlan& plan, double tau, bool gemm_values) const {
    if (std::isinf(tau)) return std::numeric_limits<float>::infinity();
    const double eps = final_eps(base_.dim), tau0 = final_tau0(base_.dim);
    double lthr;
    if (metric_ == Metric::kIP) {
        lthr = tau;  // IP's U_i and L_i already bound the float32 value (see build)
    } else if (metric_ == Metric::kL2 && !gemm_values) {
        lthr = (tau * (1 + eps) + 2 * tau0) / (1 - eps);
    } else if (metric_ == Metric::kL2) {
        lthr = tau + 2 * (eps * (plan.qnorm + row_norm_max_) * (plan.qnorm + row_norm_max_) + tau0);
    } else {
        lthr = tau + 2 * (4 * eps + tau0);
    }
    return round_up_f32(lthr + 1e-12 * std::fabs(lthr));
}

bool QuantizedFlat::search_one(const float* q, const QueryPlan& plan, size_t k, AllowBits allow,
                               int threads, bool gemm_values, int64_t* ids, float* vals,
                               uint64_t* candidates) const {
    const KernelTable& kt = distance::active();
    const size_t n = base_.rows, dim = base_.dim;
    const bool l2 = metric_ == Metric::kL2;
    const float nu = l2 ? std::ldexp(1.0f, -22) : 0.0f;
    const float n_hi = 1.0f + nu, n_lo = 1.0f - nu;

    // Stage 1: integer scan and bounds; per chunk a top-k of the upper bounds, and the rows whose
    // lower bound passes the threshold of the chunk's running tau (which only decreases and stays
    // >= the final tau, so the rows kept are a superset of the final candidates).
    struct Chunk {
        std::vector<int64_t> rows;
        std::vector<float> lower;
    };
    const size_t chunks = row_chunks(n, threads);
    std::vector<TopK> heaps(chunks, TopK(k));
    std::vector<Chunk> kept(chunks);
    ThreadPool::instance().parallel_for(chunks, threads, [&](size_t c) {
        TopK& heap = heaps[c];
        Chunk& out = kept[c];
        float thr = heap.threshold();
        int32_t dots[kBlockRows];
        float upper[kBlockRows], lower[kBlockRows];
        const size_t r0 = chunk_begin(n, chunks, c), r1 = chunk_begin(n, chunks, c + 1);
        for (size_t b0 = r0; b0 < r1; b0 += kBlockRows) {
            const size_t nb = std::min(kBlockRows, r1 - b0);
            if (allow != nullptr) std::fill(dots, dots + nb, 0);
            bool any = false;
            for_each_allowed_run(allow, b0, b0 + nb, [&](size_t s, size_t e) {
                kt.dot_u8i8(codes_.data() + s * dim_pad_, e - s, dim_pad_, dim_pad_,
                            plan.u.data(), dots + (s - b0));
                any = true;
            });
            if (!any) continue;
            const float* cd = code_dev_.data() + b0;
            const float* rs = resid_.data() + b0;
            // The float32 evaluation itself: about ten roundings of 2^-24, each of a value below
            // mag = 2|c0| + |base| + N_i (1 + nu) + h (which also bounds the rounding of c0 and
            // beta to float32), so widening by kEvalSlack * mag (32x that) keeps the bounds true.
            if (l2) {
                const float* sq = sqnorm_.data() + b0;
                for (size_t j = 0; j < nb; ++j) {
                    const float base = plan.c0 + plan.beta * static_cast<float>(dots[j]);
                    const float h = plan.p_code * cd[j] + plan.p_resid * rs[j] + plan.p0;
                    const float n_up = sq[j] * n_hi;
                    const float h_all =
                        h + kEvalSlack * (2.0f * plan.abs_c0 + std::fabs(base) + n_up + h);
                    upper[j] = (base + n_up) + h_all;
                    lower[j] = (base + sq[j] * n_lo) - h_all;
                }
            } else {
                for (size_t j = 0; j < nb; ++j) {
                    const float base = plan.c0 + plan.beta * static_cast<float>(dots[j]);
                    const float h = plan.p_code * cd[j] + plan.p_resid * rs[j] + plan.p0;
                    const float h_all = h + kEvalSlack * (2.0f * plan.abs_c0 + std::fabs(base) + h);
                    upper[j] = base + h_all;
                    lower[j] = base - h_all;
                }
            }
            for (size_t j = 0; j < nb; ++j) {
                if (upper[j] < thr && allowed(allow, b0 + j)) {
                    heap.push(upper[j], static_cast<int64_t>(b0 + j));
                    thr = heap.threshold();
                }
            }
            const float lthr = lower_threshold(plan, thr, gemm_values);
            for (size_t j = 0; j < nb; ++j) {
                if (lower[j] <= lthr && allowed(allow, b0 + j)) {
                    out.rows.push_back(static_cast<int64_t>(b0 + j));
                    out.lower.push_back(lower[j]);
                }
            }
        }
    });
    for (size_t c = 1; c < chunks; ++c) heaps[0].merge(heaps[c]);
    // tau: the k-th smallest upper bound, +inf when fewer than k rows are allowed.
    const float lthr = lower_threshold(plan, heaps[0].threshold(), gemm_values);
    std::vector<int64_t> cand;
    for (const Chunk& ch : kept) {
        for (size_t i = 0; i < ch.rows.size(); ++i) {
            if (ch.lower[i] <= lthr) cand.push_back(ch.rows[i]);
        }
    }
    // Scan mode: re-ranking a large share of the rows one by one costs more than the plain scan.
    if (!gemm_values && cand.size() > n / 4) return false;
    *candidates += cand.size();

    // Stage 2: the candidates' exact float32 values, computed as knn computes them.
    const bool hi = distance::higher_is_closer(metric_);
    const size_t nc = cand.size();
    std::vector<float> f(nc);
    if (!gemm_values) {
        const distance::ManyFn fn = kt.many[0][static_cast<int>(metric_)];
        for (size_t i = 0; i < nc; ++i) {
            fn(q, row_ptr(base_, static_cast<size_t>(cand[i])), 1, base_.stride_bytes, dim, &f[i]);
        }
    } else {
        // Mirrors exact_search.cc: pack_rows (rows widened and packed nr-wide, k-major, norms by
        // the IP kernel), dot_tile over kGemmKc chunks, then the metric's combine step.
        const size_t nr = kt.nr, panels = (nc + nr - 1) / nr;
        const distance::ManyFn self_ip = kt.many[0][static_cast<int>(Metric::kIP)];
        std::vector<float> packed(panels * nr * dim, 0.0f), xnorm(panels * nr, 0.0f);
        std::vector<float> tile(panels * nr), qf(q, q + dim);
        for (size_t i = 0; i < nc; ++i) {
            const float* x = reinterpret_cast<const float*>(row_ptr(base_, cand[i]));
            self_ip(x, x, 1, 0, dim, &xnorm[i]);
            float* panel = packed.data() + (i / nr) * nr * dim;
            for (size_t kk = 0; kk < dim; ++kk) panel[kk * nr + i % nr] = x[kk];
        }
        float qn;
        self_ip(qf.data(), qf.data(), 1, 0, dim, &qn);
        for (size_t kc0 = 0; kc0 < dim; kc0 += kGemmKc) {
            const size_t kc = std::min(kGemmKc, dim - kc0);
            for (size_t p = 0; p < panels; ++p) {
                kt.dot_tile(qf.data() + kc0, dim, 1, packed.data() + p * nr * dim + kc0 * nr, kc,
                            tile.data() + p * nr, panels * nr, kc0 > 0);
            }
        }
        const float iq = inv_norm(qn);
        for (size_t i = 0; i < nc; ++i) {
            const float dot = tile[i];
            switch (metric_) {
                case Metric::kL2: {
                    const float v = qn + xnorm[i] - 2.0f * dot;
                    f[i] = v < 0.0f ? 0.0f : v;
                    break;
                }
                case Metric::kIP: f[i] = dot; break;
                default: f[i] = dot * iq * inv_norm(xnorm[i]); break;
            }
        }
    }
    TopK top(k);
    for (size_t i = 0; i < nc; ++i) {
        if (is_bad(f[i])) return false;  // excluded by plan_query; knn reports it if it happens
        top.push(hi ? -f[i] : f[i], cand[i]);
    }
    top.sorted(vals, ids);
    const float pad = hi ? -std::numeric_limits<float>::infinity()
                         : std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < k; ++j) {
        if (ids[j] < 0) {
            vals[j] = pad;
        } else if (hi) {
            vals[j] = -vals[j];
        }
    }
    return true;
}

Status QuantizedFlat::search(const MatrixView& queries, size_t k, AllowBits allow, int threads,
                             int64_t* ids_out, float* values_out, bool* nonfinite,
                             QuantizedSearchStats* stats) const {
    if (k == 0 || k > base_.rows) {
        return Status::InvalidArgument("k must be between 1 and the number of base rows");
    }
    if (queries.dtype != distance::DType::kFloat32 || queries.dim != base_.dim) {
        return Status::InvalidArgument("queries must be float32 with the base's dimension");
    }
    QuantizedSearchStats st;
    const size_t nq = queries.rows;
    *nonfinite = false;
    auto all_exact = [&]() {
        if (stats != nullptr) stats->exact_queries += nq;
        return knn(queries, base_, k, metric_, allow, threads, ids_out, values_out, nonfinite);
    };
    if (nq == 0) return Status::OK();
    if (exact_only_ || nq >= kDelegateMinQueries) return all_exact();
    // knn computes a batch of kGemmMinQueries or more on its gemm path, whose float32 values
    // differ from the scan path's in the last bits: re-rank the way knn would for this batch.
    const bool gemm_values = nq >= kGemmMinQueries;
    std::vector<QueryPlan> plans(nq);
    for (size_t i = 0; i < nq; ++i) {
        if (!plan_query(reinterpret_cast<const float*>(row_ptr(queries, i)), &plans[i])) {
            return all_exact();
        }
    }
    for (size_t i = 0; i < nq; ++i) {
        const float* q = reinterpret_cast<const float*>(row_ptr(queries, i));
        int64_t* ids = ids_out + i * k;
        float* vals = values_out + i * k;
        if (search_one(q, plans[i], k, allow, threads, gemm_values, ids, vals, &st.candidates)) {
            ++st.two_stage_queries;
            continue;
        }
        if (gemm_values) return all_exact();  // one query's values must come from the batch path
        ++st.exact_queries;
        const MatrixView one{q, 1, base_.dim, base_.stride_bytes, distance::DType::kFloat32};
        bool bad = false;
        VS_RETURN_IF_ERROR(knn(one, base_, k, metric_, allow, threads, ids, vals, &bad));
        *nonfinite |= bad;
    }
    if (stats != nullptr) {
        stats->two_stage_queries += st.two_stage_queries;
        stats->exact_queries += st.exact_queries;
        stats->candidates += st.candidates;
    }
    return Status::OK();
}

}  // namespace search
}  // namespace vecstore
