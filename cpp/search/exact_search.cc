#include "search/exact_search.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "common/macros.h"
#include "common/thread_pool.h"
#include "distance/scalar.h"
#include "search/rows.h"
#include "search/topk.h"

namespace vecstore {
namespace search {

using distance::DType;
using distance::KernelTable;
using distance::Metric;

using rows::allowed;
using rows::for_each_allowed_run;
using rows::is_bad;
using rows::kGemmKc;
using rows::row_ptr;

namespace {

constexpr size_t kScanBlockRows = 1024;       // rows per scan block (per query, an L1/L2 slice)
constexpr size_t kPackBudgetBytes = 256 << 10;  // packed rows per gemm block: fits in L2
constexpr size_t kMaxGemmBlockRows = 2048;





// Receives values for query qi, rows [row0, row0 + count): vals[j] is the value of row row0 + j.
// Rows outside the allow-set may hold garbage and must be ignored.
struct KnnSink {
    TopK* heaps;       // one per query, indexed by query number
    bool hi;           // higher value is closer
    AllowBits allow;
    bool bad = false;

    void operator()(size_t qi, size_t row0, const float* vals, size_t count) {
        TopK& t = heaps[qi];
        float thr = t.threshold();
        if (allow == nullptr) {
            // Vectorisable pre-pass: most blocks hold nothing better than the current k-th.
            float best = FLT_MAX;
            bool any_bad = false;
            for (size_t j = 0; j < count; ++j) {
                const float key = hi ? -vals[j] : vals[j];
                best = std::min(best, key);
                any_bad |= is_bad(vals[j]);
            }
            bad |= any_bad;
            if (!(best < thr) && !any_bad) return;
        }
        for (size_t j = 0; j < count; ++j) {
            const size_t r = row0 + j;
            if (!allowed(allow, r)) continue;
            const float v = vals[j];
            if (is_bad(v)) {
                bad = true;
                continue;
            }
            const float key = hi ? -v : v;
            if (key < thr) {
                t.push(key, static_cast<int64_t>(r));
                thr = t.threshold();
            }
        }
    }
};

struct CdistSink {
    float* out;
    size_t ld;
    bool bad = false;

    void operator()(size_t qi, size_t row0, const float* vals, size_t count) {
        float* dst = out + qi * ld + row0;
        bool any_bad = false;
        for (size_t j = 0; j < count; ++j) {
            dst[j] = vals[j];
            any_bad |= is_bad(vals[j]);
        }
        bad |= any_bad;
    }
};

// ---- scan path ---------------------------------------------------------------------------------

template <class Sink>
void scan_task(const KernelTable& kt, const MatrixView& q, const MatrixView& x, Metric metric,
               size_t q0, size_t q1, size_t r0, size_t r1, AllowBits allow, Sink& sink) {
    const distance::ManyFn fn = kt.many[static_cast<int>(q.dtype)][static_cast<int>(metric)];
    VS_CHECK(fn != nullptr);
    std::vector<float> buf(kScanBlockRows);
    for (size_t b0 = r0; b0 < r1; b0 += kScanBlockRows) {
        const size_t b1 = std::min(r1, b0 + kScanBlockRows);
        // Row block outer, queries inner: the block stays in cache across the queries of the task.
        for (size_t qi = q0; qi < q1; ++qi) {
            const char* qp = row_ptr(q, qi);
            for_each_allowed_run(allow, b0, b1, [&](size_t s, size_t e) {
                fn(qp, row_ptr(x, s), e - s, x.stride_bytes, x.dim, buf.data() + (s - b0));
            });
            sink(qi, b0, buf.data(), b1 - b0);
        }
    }
}

// ---- gemm path ---------------------------------------------------------------------------------

struct GemmContext {
    const KernelTable* kt;
    Metric metric;
    size_t dim;
    const float* qf;      // queries widened to float32, row-major, ld = dim
    const float* qnorm;   // |q|^2 per query
    size_t block_rows;    // rows packed per block (multiple of nr)
};

// Widens rows [r0, r0 + n) of x into nr-wide panels, k-major inside each panel (see DotTileFn),
// zero-padding to a multiple of nr; writes |x_r|^2 into norms.
void pack_rows(const KernelTable& kt, const MatrixView& x, size_t r0, size_t n, float* packed,
               float* norms, float* tmp) {
    const size_t nr = kt.nr, dim = x.dim;
    const distance::ToF32Fn widen = kt.to_f32[static_cast<int>(x.dtype)];
    const distance::ManyFn self_ip = kt.many[0][static_cast<int>(Metric::kIP)];
    const size_t padded = (n + nr - 1) / nr * nr;
    for (size_t r = 0; r < padded; ++r) {
        float* panel = packed + (r / nr) * nr * dim;
        const size_t j = r % nr;
        if (r >= n) {
            for (size_t k = 0; k < dim; ++k) panel[k * nr + j] = 0.0f;
            norms[r] = 0.0f;
            continue;
        }
        widen(row_ptr(x, r0 + r), dim, tmp);
        self_ip(tmp, tmp, 1, 0, dim, &norms[r]);
        for (size_t k = 0; k < dim; ++k) panel[k * nr + j] = tmp[k];
    }
}

// 1/sqrt(n) for a squared norm, 0 for a zero vector; non-finite norms stay non-finite-producing.
inline float inv_norm(float n) {
    if (n > 0.0f && n <= FLT_MAX) return 1.0f / std::sqrt(n);
    return n == 0.0f ? 0.0f : n;  // inf or NaN: keep it, so the product is not a clean number
}

template <class Sink>
void gemm_task(const GemmContext& ctx, const MatrixView& x, size_t q0, size_t q1, size_t r0,
               size_t r1, Sink& sink) {
    const KernelTable& kt = *ctx.kt;
    const size_t dim = ctx.dim, nr = kt.nr, mr = kt.max_mr, nb_max = ctx.block_rows;
    std::vector<float> packed(nb_max * dim), xnorm(nb_max), tmp(dim);
    std::vector<float> tile(mr * nb_max), vals(nb_max), xinv(nb_max);
    for (size_t b0 = r0; b0 < r1; b0 += nb_max) {
        const size_t nb = std::min(nb_max, r1 - b0);
        const size_t panels = (nb + nr - 1) / nr;
        pack_rows(kt, x, b0, nb, packed.data(), xnorm.data(), tmp.data());
        if (ctx.metric == Metric::kCosine) {
            for (size_t j = 0; j < nb; ++j) xinv[j] = inv_norm(xnorm[j]);
        }
        for (size_t g = q0; g < q1; g += mr) {
            const size_t m = std::min(mr, q1 - g);
            const float* qg = ctx.qf + g * dim;
            for (size_t kc0 = 0; kc0 < dim; kc0 += kGemmKc) {
                const size_t kc = std::min(kGemmKc, dim - kc0);
                for (size_t p = 0; p < panels; ++p) {
                    kt.dot_tile(qg + kc0, dim, m, packed.data() + p * nr * dim + kc0 * nr, kc,
                                tile.data() + p * nr, panels * nr, kc0 > 0);
                }
            }
            for (size_t i = 0; i < m; ++i) {
                const float* dots = tile.data() + i * panels * nr;
                const float qn = ctx.qnorm[g + i];
                switch (ctx.metric) {
                    case Metric::kL2:
                        for (size_t j = 0; j < nb; ++j) {
                            const float v = qn + xnorm[j] - 2.0f * dots[j];
                            vals[j] = v < 0.0f ? 0.0f : v;  // cancellation can dip below zero
                        }
                        break;
                    case Metric::kIP:
                        std::memcpy(vals.data(), dots, nb * sizeof(float));
                        break;
                    default: {
                        // dot * (1/|q|) * (1/|x|) with the reciprocals computed once per block:
                        // a division and two square roots per pair made COSINE twice as slow
                        // as L2. A zero norm gives 0 (as cosine_from); NaN/inf still propagate.
                        const float iq = inv_norm(qn);
                        for (size_t j = 0; j < nb; ++j) vals[j] = dots[j] * iq * xinv[j];
                        break;
                    }
                }
                sink(g + i, b0, vals.data(), nb);
            }
        }
    }
}

bool gemm_applies(const MatrixView& q, Metric metric) {
    return q.rows >= kGemmMinQueries && q.dtype != DType::kBinary &&
           (metric == Metric::kL2 || metric == Metric::kIP || metric == Metric::kCosine);
}

// Queries widened to float32 once per call, with their squared norms.
struct WideQueries {
    std::vector<float> data, norms;
};

WideQueries widen_queries(const KernelTable& kt, const MatrixView& q) {
    WideQueries w;
    w.data.resize(q.rows * q.dim);
    w.norms.resize(q.rows);
    const distance::ToF32Fn widen = kt.to_f32[static_cast<int>(q.dtype)];
    const distance::ManyFn self_ip = kt.many[0][static_cast<int>(Metric::kIP)];
    for (size_t i = 0; i < q.rows; ++i) {
        float* dst = w.data.data() + i * q.dim;
        widen(row_ptr(q, i), q.dim, dst);
        self_ip(dst, dst, 1, 0, q.dim, &w.norms[i]);
    }
    return w;
}

// How a call is cut into tasks: q_chunks x r_chunks, each a rectangle of queries x rows.
struct Plan {
    size_t q_chunks = 1, r_chunks = 1;
};

Plan make_plan(size_t nq, size_t nrows, int threads, size_t q_unit) {
    Plan p;
    const size_t t = static_cast<size_t>(ThreadPool::resolve_threads(threads));
    if (t <= 1) return p;
    // Two tasks per thread even out a noisy machine. Many queries: split the queries, so each
    // task keeps its queries' top-k lists to itself (no merge); every task packs the base once,
    // which measured faster than sharing row ranges (bench/RESULTS.md). Few queries: split the
    // rows and merge the per-range top-k lists.
    const size_t want = 2 * t;
    if (nq >= want * 4 * q_unit) {
        p.q_chunks = want;
    } else {
        p.r_chunks = std::max<size_t>(1, std::min(want, nrows / 4096));
    }
    return p;
}

inline size_t chunk_begin(size_t total, size_t chunks, size_t i, size_t align) {
    const size_t units = (total + align - 1) / align;
    return std::min(total, (units * i / chunks) * align);
}

// Everything a call decides once: the kernel table, the path, the task plan, widened queries.
struct Execution {
    const KernelTable* kt = nullptr;
    bool gemm = false;
    Plan plan;
    size_t q_align = 1;
    WideQueries wq;
    GemmContext ctx{};

    Execution(const MatrixView& q, const MatrixView& x, Metric metric, int threads)
        : kt(&distance::active()), gemm(gemm_applies(q, metric)) {
        plan = make_plan(q.rows, x.rows, threads, gemm ? kt->max_mr : 1);
        if (gemm) {
            q_align = kt->max_mr;
            wq = widen_queries(*kt, q);
            const size_t by_budget = kPackBudgetBytes / (x.dim * sizeof(float)) / kt->nr * kt->nr;
            ctx = GemmContext{kt, metric, x.dim, wq.data.data(), wq.norms.data(),
                              std::min(kMaxGemmBlockRows, std::max(kt->nr, by_budget))};
        }
    }

    size_t tasks() const { return plan.q_chunks * plan.r_chunks; }
    size_t row_chunk(size_t task) const { return task % plan.r_chunks; }

    // Runs one task into sink. The scan path honours the allow-set while computing (excluded runs
    // are never read); the gemm path computes whole blocks and the sink filters.
    template <class Sink>
    void run_task(size_t task, const MatrixView& q, const MatrixView& x, Metric metric,
                  AllowBits allow, Sink& sink) const {
        const size_t qc = task / plan.r_chunks, rc = task % plan.r_chunks;
        const size_t q0 = chunk_begin(q.rows, plan.q_chunks, qc, q_align);
        const size_t q1 = chunk_begin(q.rows, plan.q_chunks, qc + 1, q_align);
        const size_t r0 = chunk_begin(x.rows, plan.r_chunks, rc, 64);
        const size_t r1 = chunk_begin(x.rows, plan.r_chunks, rc + 1, 64);
        if (q0 >= q1 || r0 >= r1) return;
        if (gemm) {
            gemm_task(ctx, x, q0, q1, r0, r1, sink);
        } else {
            scan_task(*kt, q, x, metric, q0, q1, r0, r1, allow, sink);
        }
    }
};

}  // namespace

Status cdist(const MatrixView& a, const MatrixView& b, Metric metric, int threads, float* out,
             bool* nonfinite) {
    const Execution ex(a, b, metric, threads);
    std::atomic<bool> bad{false};
    ThreadPool::instance().parallel_for(ex.tasks(), threads, [&](size_t task) {
        CdistSink sink{out, b.rows};
        ex.run_task(task, a, b, metric, nullptr, sink);
        if (sink.bad) bad.store(true, std::memory_order_relaxed);
    });
    *nonfinite = bad.load();
    return Status::OK();
}

Status knn(const MatrixView& q, const MatrixView& x, size_t k, Metric metric, AllowBits allow,
           int threads, int64_t* ids_out, float* values_out, bool* nonfinite) {
    if (k == 0) return Status::InvalidArgument("k must be at least 1");
    const bool hi = distance::higher_is_closer(metric);
    const Execution ex(q, x, metric, threads);

    // One heap per (row chunk, query): tasks of one row chunk own disjoint queries.
    std::vector<std::vector<TopK>> heaps(ex.plan.r_chunks);
    for (auto& h : heaps) h.assign(q.rows, TopK(k));
    std::atomic<bool> bad{false};
    ThreadPool::instance().parallel_for(ex.tasks(), threads, [&](size_t task) {
        KnnSink sink{heaps[ex.row_chunk(task)].data(), hi, allow};
        ex.run_task(task, q, x, metric, allow, sink);
        if (sink.bad) bad.store(true, std::memory_order_relaxed);
    });

    const float pad = hi ? -std::numeric_limits<float>::infinity()
                         : std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < q.rows; ++i) {
        TopK& t = heaps[0][i];
        for (size_t c = 1; c < heaps.size(); ++c) t.merge(heaps[c][i]);
        float* vals = values_out + i * k;
        int64_t* ids = ids_out + i * k;
        t.sorted(vals, ids);
        for (size_t j = 0; j < k; ++j) {
            if (ids[j] < 0) {
                vals[j] = pad;
            } else if (hi) {
                vals[j] = -vals[j];  // keys are negated similarities
            }
        }
    }
    *nonfinite = bad.load();
    return Status::OK();
}

}  // namespace search
}  // namespace vecstore
