// HnswIndex (index/hnsw.h): build, search, serialisation and validation of the graph.
#include "index/hnsw.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <utility>

#include "common/crc32c.h"
#include "common/macros.h"
#include "common/thread_pool.h"
#include "index/image.h"
#include "search/rows.h"

namespace vecstore {
namespace index {

namespace {

using distance::Metric;
using Pair = std::pair<float, uint32_t>;  // (key, id): smaller key closer, ties by smaller id

constexpr char kMagic[8] = {'V', 'S', 'H', 'N', 'S', 'W', 0, 0};
constexpr float kInf = std::numeric_limits<float>::infinity();

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

using image::align64;
using image::get;
using image::put;


// Header field offsets (see the table in hnsw.h).
enum : size_t {
    kOffMagic = 0, kOffMajor = 8, kOffMinor = 10, kOffHeaderBytes = 12, kOffTotal = 16,
    kOffRows = 24, kOffDim = 32, kOffMetric = 36, kOffM = 40, kOffM0 = 44, kOffEfc = 48,
    kOffMaxLevel = 52, kOffEntry = 56, kOffFlags = 60, kOffSeed = 64, kOffUpperSlots = 72,
    kOffSecLevels = 80, kOffSecUpperOff = 88, kOffSecLinks0 = 96, kOffSecUpper = 104,
    kOffSecNorms = 112, kOffSqType = 120, kOffCodeRowBytes = 124, kOffRefineK = 128,
    kOffSecSqParams = 136, kOffSecCodes = 144, kOffReserved = 152, kOffBodyCrc = 184,
    kOffHeaderCrc = 188,
};
constexpr uint32_t kFlagRefine = 1;

// Min-heap / max-heap helpers over Pair vectors.
struct Greater {
    bool operator()(const Pair& a, const Pair& b) const { return a > b; }
};

inline size_t popcount_allowed(search::AllowBits allow, size_t rows) {
    size_t full = rows / 8, count = 0;
    for (size_t i = 0; i < full; ++i) count += static_cast<size_t>(__builtin_popcount(allow[i]));
    for (size_t r = full * 8; r < rows; ++r) count += search::rows::allowed(allow, r) ? 1 : 0;
    return count;
}

}  // namespace

struct HnswIndex::Layout {
    uint64_t levels, upper_off, links0, upper, norms, sq_params, codes, total;
};

struct HnswIndex::Scratch {
    // Visited set: one bit per row (100k rows are 12.5 KiB, L1/L2-resident, where a uint16 epoch
    // tag per row was 200 KiB and its random reads were a fifth of search time), reset by
    // clearing only the words of the rows visited, so a search costs O(visited), not O(rows).
    std::vector<uint64_t> seen;
    std::vector<uint32_t> touched;  // rows marked since the last reset
    std::vector<Pair> cand, top, eps, sel, tmp;
    std::vector<uint32_t> nbrs;
    std::vector<float> q, qp;  // the (unit, for COSINE) query; its prepared form for the codes

    std::vector<uint32_t> fresh;  // unvisited neighbours of the node being expanded

    void new_epoch(size_t rows, size_t max_degree) {
        if (fresh.size() < max_degree) fresh.resize(max_degree);
        const size_t words = (rows + 63) / 64;
        if (seen.size() < words) {
            seen.assign(words, 0);
        } else {
            for (uint32_t id : touched) seen[id >> 6] = 0;
        }
        touched.clear();
    }
    // Marks row id; true when it was not marked yet.
    bool visit(uint32_t id) {
        uint64_t& w = seen[id >> 6];
        const uint64_t bit = uint64_t{1} << (id & 63);
        if (w & bit) return false;
        w |= bit;
        touched.push_back(id);
        return true;
    }
};

HnswIndex::~HnswIndex() = default;

HnswIndex::Layout HnswIndex::layout(size_t rows, size_t dim, size_t M, uint64_t upper_slots,
                                    bool norms, sq::SqType sq_type) {
    Layout l;
    l.levels = kHeaderBytes;
    l.upper_off = align64(l.levels + rows);
    l.links0 = align64(l.upper_off + 8 * uint64_t(rows));
    l.upper = align64(l.links0 + 4 * uint64_t(rows) * (2 * M + 1));
    uint64_t end = l.upper + 4 * upper_slots;
    l.norms = norms ? align64(end) : 0;
    if (norms) end = l.norms + 4 * uint64_t(rows);
    const bool sq8 = sq::code_type(sq_type) == sq::SqType::kSQ8;
    l.sq_params = sq8 ? align64(end) : 0;
    if (sq8) end = l.sq_params + 8 * uint64_t(dim);
    l.codes = align64(end);
    l.total = l.codes + uint64_t(rows) * sq::code_row_bytes(sq_type, dim);
    return l;
}

void HnswIndex::bind_sections(const uint8_t* image) {
    const Layout l = layout(rows_, dim_, M_, upper_slots_, metric_ == Metric::kCosine, sq_type_);
    image_ = image;
    levels_ = image + l.levels;
    upper_off_ = reinterpret_cast<const uint64_t*>(image + l.upper_off);
    links0_ = reinterpret_cast<const uint32_t*>(image + l.links0);
    upper_ = reinterpret_cast<const uint32_t*>(image + l.upper);
    inv_norm_ = l.norms ? reinterpret_cast<const float*>(image + l.norms) : nullptr;
    sq_min_ = l.sq_params ? reinterpret_cast<const float*>(image + l.sq_params) : nullptr;
    sq_scale_ = l.sq_params ? sq_min_ + dim_ : nullptr;
    codes_ = image + l.codes;
    code_row_bytes_ = sq::code_row_bytes(sq_type_, dim_);
    total_bytes_ = l.total;
}

inline float HnswIndex::key(distance::ManyFn fn, const float* q, float q_scale,
                            uint32_t id) const {
    float v;
    fn(q, row(id), 1, base_.stride_bytes, dim_, &v);
    float k;
    switch (metric_) {
        case Metric::kL2: k = v; break;
        case Metric::kIP: k = -v; break;
        default: k = -v * q_scale * inv_norm_[id]; break;
    }
    return k == k ? k : kInf;  // NaN would break the heaps' ordering
}

std::unique_ptr<HnswIndex::Scratch> HnswIndex::acquire_scratch() const {
    {
        std::lock_guard<std::mutex> g(scratch_mu_);
        if (!scratch_pool_.empty()) {
            auto s = std::move(scratch_pool_.back());
            scratch_pool_.pop_back();
            return s;
        }
    }
    return std::make_unique<Scratch>();
}

void HnswIndex::release_scratch(std::unique_ptr<Scratch> s) const {
    std::lock_guard<std::mutex> g(scratch_mu_);
    scratch_pool_.push_back(std::move(s));
}

// Candidates (s->cand) form a min-heap, results (s->top) a max-heap of at most ef allowed nodes.
// Disallowed nodes are expanded like any other but never enter s->top.
template <class Get, class Dist, class Prefetch, class PrefetchList>
void HnswIndex::layer_search(Get&& get, Dist&& dist, Prefetch&& prefetch,
                             PrefetchList&& prefetch_list, size_t ef, search::AllowBits allow,
                             Scratch* s, uint64_t* n_dist) const {
    s->new_epoch(rows_, M0_);
    auto& cand = s->cand;
    auto& top = s->top;
    cand.clear();
    top.clear();
    for (const Pair& e : s->eps) {
        if (!s->visit(e.second)) continue;
        cand.push_back(e);
        std::push_heap(cand.begin(), cand.end(), Greater());
        if (search::rows::allowed(allow, e.second)) {
            top.push_back(e);
            std::push_heap(top.begin(), top.end());
        }
    }
    uint64_t evals = 0;
    while (!cand.empty()) {
        const Pair c = cand.front();
        if (top.size() >= ef && c.first > top.front().first) break;
        std::pop_heap(cand.begin(), cand.end(), Greater());
        cand.pop_back();
        // The next candidate's list is likely expanded next: start loading it now, so that it
        // arrives while this node's neighbours are scored.
        if (!cand.empty()) prefetch_list(cand.front().second);
        const auto nb = get(c.second);
        // Collect the unvisited neighbours and prefetch their rows before computing any
        // distance: the row loads (random DRAM/L3 accesses) then overlap instead of serialising.
        uint32_t* fresh = s->fresh.data();
        uint32_t n_fresh = 0;
        for (uint32_t j = 0; j < nb.second; ++j) {
            const uint32_t id = nb.first[j];
            if (!s->visit(id)) continue;
            fresh[n_fresh++] = id;
            prefetch(id);
        }
        for (uint32_t j = 0; j < n_fresh; ++j) {
            const uint32_t id = fresh[j];
            const float d = dist(id);
            if (top.size() < ef || d < top.front().first) {
                cand.emplace_back(d, id);
                std::push_heap(cand.begin(), cand.end(), Greater());
                if (search::rows::allowed(allow, id)) {
                    top.emplace_back(d, id);
                    std::push_heap(top.begin(), top.end());
                    if (top.size() > ef) {
                        std::pop_heap(top.begin(), top.end());
                        top.pop_back();
                    }
                }
            }
        }
        evals += n_fresh;
    }
    if (n_dist) *n_dist += evals;
}

// ---- build ----------------------------------------------------------------------------------

class HnswIndex::Builder {
  public:
    explicit Builder(HnswIndex* ix)
        : ix_(*ix),
          links0_(const_cast<uint32_t*>(ix->links0_)),
          upper_(const_cast<uint32_t*>(ix->upper_)),
          locks_(new std::mutex[ix->rows_]),
          fn_(distance::active().many[0][static_cast<int>(
              ix->metric_ == Metric::kL2 ? Metric::kL2 : Metric::kIP)]) {}

    void insert(uint32_t q, Scratch* s) {
        const int level = ix_.levels_[q];
        std::unique_lock<std::mutex> glock(global_mu_);
        const int top_level = ix_.max_level_;
        const uint32_t ep = ix_.entry_;
        if (level <= top_level) glock.unlock();

        const float* qv = ix_.row(q);
        const float qs = scale(q);
        uint32_t cur = ep;
        float cur_d = ix_.key(fn_, qv, qs, cur);
        for (int l = top_level; l > level; --l) {
            bool changed = true;
            while (changed) {
                changed = false;
                const auto nb = copy_list(cur, l, s);
                for (uint32_t j = 0; j < nb.second; ++j) {
                    const float d = ix_.key(fn_, qv, qs, nb.first[j]);
                    if (d < cur_d || (d == cur_d && nb.first[j] < cur)) {
                        cur_d = d;
                        cur = nb.first[j];
                        changed = true;
                    }
                }
            }
        }
        const size_t efc = std::max(ix_.ef_construction_, ix_.M_);
        for (int l = std::min(level, top_level); l >= 0; --l) {
            s->eps.assign(1, Pair(cur_d, cur));
            ix_.layer_search([&](uint32_t id) { return copy_list(id, l, s); },
                             [&](uint32_t id) { return ix_.key(fn_, qv, qs, id); },
                             [&](uint32_t id) {
                                 const char* r = reinterpret_cast<const char*>(ix_.row(id));
                                 for (size_t b = 0; b < ix_.prefetch_bytes_; b += 64)
                                     __builtin_prefetch(r + b);
                             },
                             [](uint32_t) {}, efc, nullptr, s, nullptr);
            // Ascending (key, id), without q itself.
            std::sort_heap(s->top.begin(), s->top.end());
            s->tmp.clear();
            for (const Pair& p : s->top)
                if (p.second != q) s->tmp.push_back(p);
            if (s->tmp.empty()) continue;
            cur_d = s->tmp[0].first;
            cur = s->tmp[0].second;
            select(s->tmp, ix_.M_, &s->sel);
            {
                std::lock_guard<std::mutex> g(locks_[q]);
                uint32_t* list = mutable_list(q, l);
                list[0] = static_cast<uint32_t>(s->sel.size());
                for (size_t j = 0; j < s->sel.size(); ++j) list[1 + j] = s->sel[j].second;
            }
            // s->sel is reused by connect(): copy the chosen ids first.
            std::vector<Pair> chosen(s->sel);
            for (const Pair& p : chosen) connect(p.second, q, p.first, l, s);
        }
        if (level > top_level) {
            ix_.max_level_ = level;
            ix_.entry_ = q;
        }
    }

  private:
    float scale(uint32_t id) const {
        return ix_.metric_ == Metric::kCosine ? ix_.inv_norm_[id] : 1.0f;
    }
    uint32_t* mutable_list(uint32_t id, int l) {
        return l == 0 ? links0_ + size_t(id) * (ix_.M0_ + 1)
                      : upper_ + ix_.upper_off_[id] + size_t(l - 1) * (ix_.M_ + 1);
    }
    std::pair<const uint32_t*, uint32_t> copy_list(uint32_t id, int l, Scratch* s) {
        std::lock_guard<std::mutex> g(locks_[id]);
        const uint32_t* list = mutable_list(id, l);
        s->nbrs.assign(list + 1, list + 1 + list[0]);
        return {s->nbrs.data(), list[0]};
    }

    // The HNSW heuristic: walk candidates (ascending key to the base point) and keep one unless
    // it is closer to an already kept neighbour than to the base point. Fewer than `cap`
    // candidates are all kept (small graphs stay connected, duplicates included).
    void select(const std::vector<Pair>& cands, size_t cap, std::vector<Pair>* out) const {
        out->clear();
        if (cands.size() <= cap) {
            out->assign(cands.begin(), cands.end());
            return;
        }
        for (const Pair& c : cands) {
            if (out->size() >= cap) break;
            const float* cv = ix_.row(c.second);
            const float cs = scale(c.second);
            bool good = true;
            for (const Pair& o : *out) {
                if (ix_.key(fn_, cv, cs, o.second) < c.first) {
                    good = false;
                    break;
                }
            }
            if (good) out->push_back(c);
        }
    }

    // Adds q to e's list at level l, re-pruning a full list with the heuristic.
    void connect(uint32_t e, uint32_t q, float d_eq, int l, Scratch* s) {
        std::lock_guard<std::mutex> g(locks_[e]);
        uint32_t* list = mutable_list(e, l);
        const uint32_t cap = static_cast<uint32_t>(l == 0 ? ix_.M0_ : ix_.M_);
        const uint32_t count = list[0];
        for (uint32_t j = 0; j < count; ++j)
            if (list[1 + j] == q) return;
        if (count < cap) {
            list[1 + count] = q;
            list[0] = count + 1;
            return;
        }
        const float* ev = ix_.row(e);
        const float es = scale(e);
        s->tmp.clear();
        s->tmp.emplace_back(d_eq, q);
        for (uint32_t j = 0; j < count; ++j)
            s->tmp.emplace_back(ix_.key(fn_, ev, es, list[1 + j]), list[1 + j]);
        std::sort(s->tmp.begin(), s->tmp.end());
        select(s->tmp, cap, &s->sel);
        list[0] = static_cast<uint32_t>(s->sel.size());
        for (size_t j = 0; j < s->sel.size(); ++j) list[1 + j] = s->sel[j].second;
    }

    HnswIndex& ix_;
    uint32_t* links0_;
    uint32_t* upper_;
    std::unique_ptr<std::mutex[]> locks_;
    std::mutex global_mu_;
    distance::ManyFn fn_;
};

// Trains the SQ8 parameters (per-dimension min / max over the rows to encode) and writes every
// row's codes. COSINE encodes the unit rows (hnsw_sq.h), so it needs inv_norm_ first.
void HnswIndex::encode(int threads) {
    uint8_t* codes = const_cast<uint8_t*>(codes_);  // build() owns the image it is filling
    const size_t block = 1024, blocks = (rows_ + block - 1) / block;
    const bool cosine = metric_ == Metric::kCosine;
    // Row r as encoded: the row itself, or its unit form in `tmp`.
    auto encoded_row = [&](size_t r, std::vector<float>* tmp) -> const float* {
        const float* x = row(static_cast<uint32_t>(r));
        if (!cosine) return x;
        tmp->resize(dim_);
        for (size_t i = 0; i < dim_; ++i) (*tmp)[i] = x[i] * inv_norm_[r];
        return tmp->data();
    };
    if (sq_min_ != nullptr) {
        // Per-block extremes, then a reduction: min / max do not depend on the order.
        std::vector<float> lo(blocks * dim_, kInf), hi(blocks * dim_, -kInf);
        ThreadPool::instance().parallel_for(blocks, threads, [&](size_t b) {
            std::vector<float> tmp;
            float* blo = lo.data() + b * dim_;
            float* bhi = hi.data() + b * dim_;
            for (size_t r = b * block; r < std::min(rows_, (b + 1) * block); ++r) {
                const float* x = encoded_row(r, &tmp);
                for (size_t i = 0; i < dim_; ++i) {
                    blo[i] = std::min(blo[i], x[i]);
                    bhi[i] = std::max(bhi[i], x[i]);
                }
            }
        });
        float* mn = const_cast<float*>(sq_min_);
        float* sc = const_cast<float*>(sq_scale_);
        for (size_t i = 0; i < dim_; ++i) {
            float a = kInf, z = -kInf;
            for (size_t b = 0; b < blocks; ++b) {
                a = std::min(a, lo[b * dim_ + i]);
                z = std::max(z, hi[b * dim_ + i]);
            }
            mn[i] = a;
            sc[i] = z > a ? (z - a) / 255.0f : 0.0f;
        }
    }
    ThreadPool::instance().parallel_for(blocks, threads, [&](size_t b) {
        std::vector<float> tmp;
        for (size_t r = b * block; r < std::min(rows_, (b + 1) * block); ++r)
            sq::encode_row(sq_type_, encoded_row(r, &tmp), dim_, sq_min_, sq_scale_,
                           codes + r * code_row_bytes_);
    });
}

Status HnswIndex::build(const search::MatrixView& base, const HnswParams& p, int threads,
                        std::unique_ptr<HnswIndex>* out) {
    if (base.dtype != distance::DType::kFloat32)
        return Status::InvalidArgument("HNSW needs float32 vectors");
    if (p.metric != Metric::kL2 && p.metric != Metric::kIP && p.metric != Metric::kCosine)
        return Status::InvalidArgument("HNSW supports the L2, IP and COSINE metrics");
    if (base.rows == 0 || base.rows > kMaxRows)
        return Status::InvalidArgument("HNSW needs between 1 and 4294967294 rows");
    if (base.dim == 0 || base.dim > 0xFFFFFFFFu)
        return Status::InvalidArgument("HNSW needs a dimension of at least 1");
    if (base.stride_bytes < base.dim * sizeof(float))
        return Status::InvalidArgument("row stride is smaller than a row");
    if (p.M < kMinM || p.M > kMaxM)
        return Status::InvalidArgument("M must be between 2 and 2048");
    if (p.ef_construction == 0 || p.ef_construction > 0xFFFFFFFFu)
        return Status::InvalidArgument("ef_construction must be at least 1");
    if (static_cast<uint32_t>(p.sq_type) >= sq::kNumSqTypes)
        return Status::InvalidArgument("sq_type must be one of SQ8, FP16, BF16");
    if (p.sq_type == sq::SqType::kNone && p.refine)
        return Status::InvalidArgument("refine applies to HNSW_SQ (an sq_type) only");
    if (!(p.refine_k >= 1.0 && p.refine_k <= kMaxRefineK))
        return Status::InvalidArgument("refine_k must be between 1 and 1e6");
    if (!p.refine && p.refine_k != 1.0)
        return Status::InvalidArgument("refine_k applies only with refine=True");
    if (sq::code_row_bytes(p.sq_type, base.dim) > 0xFFFFFFFFu)
        return Status::InvalidArgument("the dimension is too large for HNSW's code rows");

    std::unique_ptr<HnswIndex> ix(new HnswIndex());
    ix->base_ = base;
    ix->metric_ = p.metric;
    ix->rows_ = base.rows;
    ix->dim_ = base.dim;
    ix->prefetch_bytes_ = std::min<size_t>(256, base.dim * sizeof(float));
    ix->M_ = p.M;
    ix->M0_ = 2 * p.M;
    ix->ef_construction_ = p.ef_construction;
    ix->seed_ = p.seed;
    ix->sq_type_ = p.sq_type;
    ix->refine_ = p.refine;
    ix->refine_k_ = p.refine_k;

    // Levels from a hash of (seed, row): P(level >= l) = M^-l.
    const double ml = 1.0 / std::log(static_cast<double>(p.M));
    std::vector<uint8_t> levels(base.rows);
    uint64_t upper_slots = 0;
    for (size_t r = 0; r < base.rows; ++r) {
        const uint64_t h = splitmix64(p.seed ^ splitmix64(r));
        const double u = static_cast<double>((h >> 11) + 1) * 0x1p-53;  // (0, 1]
        const double lv = std::floor(-std::log(u) * ml);
        levels[r] = static_cast<uint8_t>(std::min<double>(lv, kMaxLevel));
        upper_slots += uint64_t(levels[r]) * (p.M + 1);
    }
    ix->upper_slots_ = upper_slots;
    const Layout l = layout(base.rows, base.dim, p.M, upper_slots, p.metric == Metric::kCosine,
                            p.sq_type);
    ix->owned_.assign((l.total + 7) / 8, 0);
    uint8_t* img = reinterpret_cast<uint8_t*>(ix->owned_.data());
    std::memcpy(img + l.levels, levels.data(), base.rows);
    uint64_t* uoff = reinterpret_cast<uint64_t*>(img + l.upper_off);
    uint64_t acc = 0;
    for (size_t r = 0; r < base.rows; ++r) {
        uoff[r] = acc;
        acc += uint64_t(levels[r]) * (p.M + 1);
    }
    ix->bind_sections(img);
    if (p.metric == Metric::kCosine) {
        float* inv = reinterpret_cast<float*>(img + l.norms);
        const distance::ManyFn ip = distance::active().many[0][static_cast<int>(Metric::kIP)];
        ThreadPool::instance().parallel_for((base.rows + 1023) / 1024, threads, [&](size_t t) {
            const size_t end = std::min(base.rows, (t + 1) * 1024);
            for (size_t r = t * 1024; r < end; ++r) {
                const float* x = ix->row(static_cast<uint32_t>(r));
                float sq;
                ip(x, x, 1, base.stride_bytes, base.dim, &sq);
                inv[r] = sq > 0 ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(sq)))
                                : 0.0f;
            }
        });
    }

    ix->encode(threads);

    ix->entry_ = 0;
    ix->max_level_ = levels[0];
    Builder builder(ix.get());
    if (base.rows > 1) {
        // Small blocks keep the early, tiny graph from being built by many threads at once
        // while still spreading the work.
        const size_t n = base.rows - 1;
        const size_t block = 16;
        ThreadPool::instance().parallel_for((n + block - 1) / block, threads, [&](size_t t) {
            if (p.cancel != nullptr && p.cancel->load(std::memory_order_relaxed)) return;
            auto s = ix->acquire_scratch();
            const size_t end = std::min(n, (t + 1) * block);
            for (size_t i = t * block; i < end; ++i) builder.insert(static_cast<uint32_t>(i + 1), s.get());
            ix->release_scratch(std::move(s));
        });
    }

    if (p.cancel != nullptr && p.cancel->load()) return Status::Cancelled("HNSW build cancelled");

    // Header.
    std::memcpy(img + kOffMagic, kMagic, 8);
    put<uint16_t>(img, kOffMajor, kMajor);
    put<uint16_t>(img, kOffMinor, kMinor);
    put<uint32_t>(img, kOffHeaderBytes, kHeaderBytes);
    put<uint64_t>(img, kOffTotal, l.total);
    put<uint64_t>(img, kOffRows, base.rows);
    put<uint32_t>(img, kOffDim, static_cast<uint32_t>(base.dim));
    put<uint32_t>(img, kOffMetric, static_cast<uint32_t>(p.metric));
    put<uint32_t>(img, kOffM, static_cast<uint32_t>(p.M));
    put<uint32_t>(img, kOffM0, static_cast<uint32_t>(2 * p.M));
    put<uint32_t>(img, kOffEfc, static_cast<uint32_t>(p.ef_construction));
    put<uint32_t>(img, kOffMaxLevel, static_cast<uint32_t>(ix->max_level_));
    put<uint32_t>(img, kOffEntry, ix->entry_);
    put<uint32_t>(img, kOffFlags, p.refine ? kFlagRefine : 0);
    put<uint64_t>(img, kOffSeed, p.seed);
    put<uint64_t>(img, kOffUpperSlots, upper_slots);
    put<uint64_t>(img, kOffSecLevels, l.levels);
    put<uint64_t>(img, kOffSecUpperOff, l.upper_off);
    put<uint64_t>(img, kOffSecLinks0, l.links0);
    put<uint64_t>(img, kOffSecUpper, l.upper);
    put<uint64_t>(img, kOffSecNorms, l.norms);
    put<uint32_t>(img, kOffSqType, static_cast<uint32_t>(p.sq_type));
    put<uint32_t>(img, kOffCodeRowBytes, static_cast<uint32_t>(ix->code_row_bytes_));
    put<double>(img, kOffRefineK, p.refine_k);
    put<uint64_t>(img, kOffSecSqParams, l.sq_params);
    put<uint64_t>(img, kOffSecCodes, l.codes);
    put<uint32_t>(img, kOffBodyCrc, crc32c::value(img + kHeaderBytes, l.total - kHeaderBytes));
    put<uint32_t>(img, kOffHeaderCrc, crc32c::value(img, kOffHeaderCrc));
    *out = std::move(ix);
    return Status::OK();
}

// ---- serialisation ---------------------------------------------------------------------------

void HnswIndex::serialize(void* dst) const { std::memcpy(dst, image_, total_bytes_); }

Status HnswIndex::load(const void* data, size_t size, const search::MatrixView& base,
                       std::unique_ptr<HnswIndex>* out) {
    const auto* p = static_cast<const uint8_t*>(data);
    auto corrupt = [](const std::string& m) { return Status::Corruption("HNSW index: " + m); };
    if (data == nullptr || size < kHeaderBytes)
        return corrupt("truncated: " + std::to_string(size) + " bytes, the header alone is " +
                       std::to_string(kHeaderBytes));
    if (std::memcmp(p, kMagic, 8) != 0) return corrupt("bad magic (not an HNSW index image)");
    const uint16_t major = get<uint16_t>(p, kOffMajor);
    if (major != kMajor)
        return corrupt("format version " + std::to_string(major) + " is not supported (this "
                       "build reads version " + std::to_string(kMajor) + ")");
    if (get<uint32_t>(p, kOffHeaderCrc) != crc32c::value(p, kOffHeaderCrc))
        return corrupt("header checksum mismatch");
    if (get<uint32_t>(p, kOffHeaderBytes) != kHeaderBytes) return corrupt("bad header size");
    const uint64_t total = get<uint64_t>(p, kOffTotal);
    if (total != size)
        return corrupt("size mismatch: the header says " + std::to_string(total) +
                       " bytes, the buffer has " + std::to_string(size) +
                       " (truncated or padded)");
    const uint64_t rows = get<uint64_t>(p, kOffRows);
    const uint32_t dim = get<uint32_t>(p, kOffDim);
    const uint32_t metric = get<uint32_t>(p, kOffMetric);
    const uint32_t M = get<uint32_t>(p, kOffM);
    const uint32_t M0 = get<uint32_t>(p, kOffM0);
    const uint32_t max_level = get<uint32_t>(p, kOffMaxLevel);
    const uint32_t entry = get<uint32_t>(p, kOffEntry);
    const uint64_t upper_slots = get<uint64_t>(p, kOffUpperSlots);
    if (rows == 0 || rows > kMaxRows) return corrupt("bad row count");
    if (dim == 0) return corrupt("bad dimension");
    if (metric > static_cast<uint32_t>(Metric::kCosine)) return corrupt("bad metric");
    if (M < kMinM || M > kMaxM || M0 != 2 * M) return corrupt("bad M / M0");
    if (get<uint32_t>(p, kOffEfc) == 0) return corrupt("bad ef_construction");
    if (max_level > kMaxLevel || entry >= rows) return corrupt("bad entry point or max level");
    const uint32_t flags = get<uint32_t>(p, kOffFlags);
    if ((flags & ~kFlagRefine) != 0) return corrupt("unknown flags");
    if (upper_slots > rows * uint64_t(max_level) * (M + 1)) return corrupt("bad upper slot count");
    const uint32_t sq_type = get<uint32_t>(p, kOffSqType);
    if (sq_type >= sq::kNumSqTypes) return corrupt("bad sq_type");
    const auto sqt = static_cast<sq::SqType>(sq_type);
    const bool refine = (flags & kFlagRefine) != 0;
    const double refine_k = get<double>(p, kOffRefineK);
    if ((refine && sqt == sq::SqType::kNone) || !(refine_k >= 1.0 && refine_k <= kMaxRefineK) ||
        (!refine && refine_k != 1.0))
        return corrupt("bad refine / refine_k");
    for (size_t off = kOffReserved; off < kOffBodyCrc; ++off)
        if (p[off] != 0) return corrupt("reserved header bytes are not zero");
    if (uint64_t(dim) * 2 > 0xFFFFFFFFull ||
        get<uint32_t>(p, kOffCodeRowBytes) != sq::code_row_bytes(sqt, dim) ||
        sq::code_row_bytes(sqt, dim) > size / rows)  // also keeps the layout's sums from wrapping
        return corrupt("bad code row size");
    const bool cosine = metric == static_cast<uint32_t>(Metric::kCosine);
    const Layout l = layout(rows, dim, M, upper_slots, cosine, sqt);
    if (l.total != total || get<uint64_t>(p, kOffSecLevels) != l.levels ||
        get<uint64_t>(p, kOffSecUpperOff) != l.upper_off ||
        get<uint64_t>(p, kOffSecLinks0) != l.links0 || get<uint64_t>(p, kOffSecUpper) != l.upper ||
        get<uint64_t>(p, kOffSecNorms) != l.norms ||
        get<uint64_t>(p, kOffSecSqParams) != l.sq_params ||
        get<uint64_t>(p, kOffSecCodes) != l.codes)
        return corrupt("section offsets disagree with the header's sizes");
    if (get<uint32_t>(p, kOffBodyCrc) != crc32c::value(p + kHeaderBytes, size - kHeaderBytes))
        return corrupt("body checksum mismatch");

    if (base.dtype != distance::DType::kFloat32 || base.rows != rows || base.dim != dim)
        return Status::InvalidArgument(
            "the index was built over " + std::to_string(rows) + " x " + std::to_string(dim) +
            " float32 vectors; pass the same matrix (got " + std::to_string(base.rows) + " x " +
            std::to_string(base.dim) + ")");
    if (base.stride_bytes < size_t(dim) * sizeof(float))
        return Status::InvalidArgument("row stride is smaller than a row");

    std::unique_ptr<HnswIndex> ix(new HnswIndex());
    ix->base_ = base;
    ix->metric_ = static_cast<Metric>(metric);
    ix->rows_ = rows;
    ix->dim_ = dim;
    ix->prefetch_bytes_ = std::min<size_t>(256, size_t(dim) * sizeof(float));
    ix->M_ = M;
    ix->M0_ = M0;
    ix->ef_construction_ = get<uint32_t>(p, kOffEfc);
    ix->seed_ = get<uint64_t>(p, kOffSeed);
    ix->upper_slots_ = upper_slots;
    ix->max_level_ = static_cast<int>(max_level);
    ix->entry_ = entry;
    ix->sq_type_ = sqt;
    ix->refine_ = refine;
    ix->refine_k_ = refine_k;
    const uint8_t* img = p;
    if (reinterpret_cast<uintptr_t>(p) % 8 != 0) {  // in place needs aligned uint64/uint32 reads
        ix->owned_.resize((size + 7) / 8);
        std::memcpy(ix->owned_.data(), p, size);
        img = reinterpret_cast<const uint8_t*>(ix->owned_.data());
    }
    ix->bind_sections(img);
    VS_RETURN_IF_ERROR(ix->validate_graph());
    *out = std::move(ix);
    return Status::OK();
}

Status HnswIndex::validate_graph() const {
    auto corrupt = [](const std::string& m) { return Status::Corruption("HNSW index: " + m); };
    if (levels_[entry_] != max_level_) return corrupt("the entry point is not on the top level");
    uint64_t acc = 0;
    for (size_t r = 0; r < rows_; ++r) {
        if (levels_[r] > max_level_)
            return corrupt("row " + std::to_string(r) + " is above the top level");
        if (upper_off_[r] != acc)
            return corrupt("upper-level offset of row " + std::to_string(r) + " is wrong");
        acc += uint64_t(levels_[r]) * (M_ + 1);
    }
    if (acc != upper_slots_) return corrupt("upper-level slots do not add up");
    if (sq_min_ != nullptr) {
        for (size_t i = 0; i < dim_; ++i) {
            if (!std::isfinite(sq_min_[i]) || !std::isfinite(sq_scale_[i]) || sq_scale_[i] < 0)
                return corrupt("SQ8 parameters of dimension " + std::to_string(i) +
                               " are not finite or have a negative scale");
        }
    }
    // Search walks level lv only through nodes listed on level lv, so each listed node must
    // exist there too (its run is then in bounds).
    auto check_list = [&](const uint32_t* list, size_t cap, size_t r, int lv) -> Status {
        if (list[0] > cap)
            return corrupt("row " + std::to_string(r) + " has " + std::to_string(list[0]) +
                           " neighbours, more than " + std::to_string(cap));
        for (uint32_t j = 0; j < list[0]; ++j) {
            const uint32_t id = list[1 + j];
            if (id >= rows_)
                return corrupt("row " + std::to_string(r) + " links to row " +
                               std::to_string(id) + " of " + std::to_string(rows_));
            if (levels_[id] < lv)
                return corrupt("row " + std::to_string(r) + " links on level " +
                               std::to_string(lv) + " to row " + std::to_string(id) +
                               ", which is not on that level");
        }
        return Status::OK();
    };
    for (size_t r = 0; r < rows_; ++r) {
        VS_RETURN_IF_ERROR(check_list(list0(static_cast<uint32_t>(r)), M0_, r, 0));
        for (int lv = 1; lv <= levels_[r]; ++lv)
            VS_RETURN_IF_ERROR(check_list(list_upper(static_cast<uint32_t>(r), lv), M_, r, lv));
    }
    return Status::OK();
}

// ---- search ----------------------------------------------------------------------------------

void HnswIndex::search_one(sq::CodeFn fn, const float* q_in, size_t k, size_t ef,
                           size_t rerank, search::AllowBits allow, Scratch* s, int64_t* ids,
                           float* vals, uint64_t* n_dist) const {
    const float* q = q_in;
    if (metric_ == Metric::kCosine) {
        double sq = 0;
        for (size_t i = 0; i < dim_; ++i) sq += double(q_in[i]) * q_in[i];
        const float inv = sq > 0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 0.0f;
        s->q.resize(dim_);
        for (size_t i = 0; i < dim_; ++i) s->q[i] = q_in[i] * inv;
        q = s->q.data();
    }
    // The query in the codes' terms (hnsw_sq.h): SQ8 L2 subtracts the minimum, SQ8 IP folds the
    // scale in and keeps sum q_i * min_i aside; FP16 / BF16 use the query as it is.
    const bool l2 = metric_ == Metric::kL2;
    const float* qp = q;
    float bias = 0.0f;
    if (sq_min_ != nullptr) {
        s->qp.resize(dim_);
        double b = 0;
        for (size_t i = 0; i < dim_; ++i) {
            if (l2) {
                s->qp[i] = q[i] - sq_min_[i];
            } else {
                s->qp[i] = q[i] * sq_scale_[i];
                b += double(q[i]) * sq_min_[i];
            }
        }
        bias = static_cast<float>(b);
        qp = s->qp.data();
    }
    const float* scale = sq_scale_;
    const size_t pitch = code_row_bytes_;
    auto dist = [&](uint32_t id) {
        const float v = fn(qp, scale, codes_ + size_t(id) * pitch, dim_);
        const float key = l2 ? v : -(v + bias);
        return key == key ? key : kInf;  // NaN would break the heaps' ordering
    };
    auto prefetch = [&](uint32_t id) {
        const char* r = reinterpret_cast<const char*>(codes_ + size_t(id) * pitch);
        for (size_t b = 0; b < pitch && b < 512; b += 64) __builtin_prefetch(r + b);
    };

    uint32_t cur = entry_;
    float cur_d = dist(cur);
    uint64_t evals = 1;
    for (int l = max_level_; l > 0; --l) {
        bool changed = true;
        while (changed) {
            changed = false;
            const uint32_t* list = list_upper(cur, l);
            const uint32_t count = list[0];
            for (uint32_t j = 0; j < count; ++j) prefetch(list[1 + j]);
            for (uint32_t j = 0; j < count; ++j) {
                const uint32_t id = list[1 + j];
                const float d = dist(id);
                ++evals;
                if (d < cur_d || (d == cur_d && id < cur)) {
                    cur_d = d;
                    cur = id;
                    changed = true;
                }
            }
        }
    }
    s->eps.assign(1, Pair(cur_d, cur));
    layer_search(
        [&](uint32_t id) {
            const uint32_t* list = list0(id);
            return std::pair<const uint32_t*, uint32_t>(list + 1, list[0]);
        },
        dist, prefetch,
        [&](uint32_t id) {
            const char* list = reinterpret_cast<const char*>(list0(id));
            for (size_t b = 0; b < (M0_ + 1) * 4; b += 64) __builtin_prefetch(list + b);
        },
        std::max({ef, k, rerank}), allow, s, &evals);
    if (n_dist) *n_dist += evals;

    std::sort_heap(s->top.begin(), s->top.end());
    const float pad = l2 ? kInf : -kInf;
    size_t found;
    if (rerank > 0) {
        // Exact float32 values of the best `rerank` candidates, reordered by them.
        const size_t n = std::min(rerank, s->top.size());
        const distance::ManyFn exact = distance::active().many[0][static_cast<int>(metric_)];
        for (size_t j = 0; j < n; ++j) {
            const char* r = reinterpret_cast<const char*>(row(s->top[j].second));
            for (size_t b = 0; b < prefetch_bytes_; b += 64) __builtin_prefetch(r + b);
        }
        s->tmp.clear();
        for (size_t j = 0; j < n; ++j) {
            float v;
            exact(q_in, row(s->top[j].second), 1, base_.stride_bytes, dim_, &v);
            const float key = l2 ? v : -v;
            s->tmp.emplace_back(key == key ? key : kInf, s->top[j].second);
        }
        std::sort(s->tmp.begin(), s->tmp.end());
        found = std::min(k, n);
        for (size_t j = 0; j < found; ++j) {
            ids[j] = s->tmp[j].second;
            vals[j] = l2 ? s->tmp[j].first : -s->tmp[j].first;
        }
    } else {
        found = std::min(k, s->top.size());
        for (size_t j = 0; j < found; ++j) {
            ids[j] = s->top[j].second;
            vals[j] = l2 ? s->top[j].first : -s->top[j].first;
        }
    }
    for (size_t j = found; j < k; ++j) {
        ids[j] = -1;
        vals[j] = pad;
    }
}

// The allowed rows are gathered into a compact matrix first: search::knn over the full base would
// walk the whole allow bitset for every block of every query, which at 0.1% allowed of 100k rows
// cost more than the distances. Row order is kept, so knn's tie order (smaller id first) and its
// values carry over unchanged.
Status HnswIndex::exact_allowed(const search::MatrixView& queries, size_t k,
                                search::AllowBits allow, size_t allowed, int threads,
                                int64_t* ids_out, float* values_out) const {
    const size_t m = queries.rows;
    const float pad = metric_ == Metric::kL2 ? kInf : -kInf;
    if (allowed == 0) {
        std::fill(ids_out, ids_out + m * k, int64_t(-1));
        std::fill(values_out, values_out + m * k, pad);
        return Status::OK();
    }
    if (m == 1) return exact_allowed_one(queries.data, k, allow, ids_out, values_out);
    std::vector<uint32_t> rows;
    rows.reserve(allowed);
    search::rows::for_each_allowed_run(allow, 0, rows_, [&](size_t b, size_t e) {
        for (size_t r = b; r < e; ++r) rows.push_back(static_cast<uint32_t>(r));
    });
    std::vector<float> compact(rows.size() * dim_);
    for (size_t i = 0; i < rows.size(); ++i)
        std::memcpy(compact.data() + i * dim_, row(rows[i]), dim_ * sizeof(float));
    search::MatrixView cv;
    cv.data = compact.data();
    cv.rows = rows.size();
    cv.dim = dim_;
    cv.stride_bytes = dim_ * sizeof(float);
    const size_t kk = std::min(k, rows.size());
    std::vector<int64_t> ids(m * kk);
    std::vector<float> vals(m * kk);
    bool nonfinite = false;
    VS_RETURN_IF_ERROR(search::knn(queries, cv, kk, metric_, nullptr, threads, ids.data(),
                                   vals.data(), &nonfinite));
    for (size_t i = 0; i < m; ++i) {
        for (size_t j = 0; j < k; ++j) {
            const bool hit = j < kk && ids[i * kk + j] >= 0;
            ids_out[i * k + j] = hit ? int64_t(rows[size_t(ids[i * kk + j])]) : -1;
            values_out[i * k + j] = hit ? vals[i * kk + j] : pad;
        }
    }
    return Status::OK();
}

// One query: each allowed run is scored in place (no gathered copy, which for one query cost as
// much as the distances), keeping the k best (key, row) pairs in a max-heap: equal values keep
// the smaller row, as knn does.
Status HnswIndex::exact_allowed_one(const void* query, size_t k, search::AllowBits allow,
                                    int64_t* ids_out, float* values_out) const {
    const bool l2 = metric_ == Metric::kL2;
    const float pad = l2 ? kInf : -kInf;
    const float* q = static_cast<const float*>(query);
    const distance::ManyFn exact = distance::active().many[0][static_cast<int>(metric_)];
    std::vector<uint32_t> rows;
    search::rows::for_each_allowed_run(allow, 0, rows_, [&](size_t b, size_t e) {
        for (size_t r = b; r < e; ++r) rows.push_back(static_cast<uint32_t>(r));
    });
    // Allowed rows are scattered: scoring them one by one waits on memory for every row, so the
    // rows kAhead places ahead are fetched while the current one is scored.
    constexpr size_t kAhead = 8;
    auto fetch = [&](size_t i) {
        const char* r = reinterpret_cast<const char*>(row(rows[i]));
        for (size_t off = 0; off < prefetch_bytes_; off += 64) __builtin_prefetch(r + off);
    };
    for (size_t i = 0; i < std::min(kAhead, rows.size()); ++i) fetch(i);
    std::vector<std::pair<float, uint32_t>> heap;
    heap.reserve(k + 1);
    for (size_t i = 0; i < rows.size(); ++i) {
        if (i + kAhead < rows.size()) fetch(i + kAhead);
        float v;
        exact(q, row(rows[i]), 1, base_.stride_bytes, dim_, &v);
        const float key = l2 ? v : -v;
        const std::pair<float, uint32_t> item(key == key ? key : kInf, rows[i]);
        if (heap.size() < k) {
            heap.push_back(item);
            std::push_heap(heap.begin(), heap.end());
        } else if (item < heap.front()) {
            std::pop_heap(heap.begin(), heap.end());
            heap.back() = item;
            std::push_heap(heap.begin(), heap.end());
        }
    }
    std::sort_heap(heap.begin(), heap.end());
    for (size_t j = 0; j < k; ++j) {
        const bool hit = j < heap.size();
        ids_out[j] = hit ? int64_t(heap[j].second) : -1;
        values_out[j] = hit ? (l2 ? heap[j].first : -heap[j].first) : pad;
    }
    return Status::OK();
}

Status HnswIndex::search(const search::MatrixView& queries, size_t k, size_t ef,
                         search::AllowBits allow, int threads, int64_t* ids_out,
                         float* values_out, HnswSearchStats* stats, double refine_k) const {
    if (queries.dtype != distance::DType::kFloat32 || queries.dim != dim_)
        return Status::InvalidArgument("queries must be float32 with the index's dimension");
    if (k == 0) return Status::InvalidArgument("k must be at least 1");
    if (refine_k != 0.0) {
        if (!refine_)
            return Status::InvalidArgument(
                "refine_k applies to HNSW_SQ indexes built with refine=True");
        if (!(refine_k >= 1.0 && refine_k <= kMaxRefineK))
            return Status::InvalidArgument("refine_k must be between 1 and 1e6");
    } else {
        refine_k = refine_k_;
    }
    const size_t m = queries.rows;
    if (m == 0) return Status::OK();
    ef = std::max(ef, k);
    for (size_t i = 0; i < m; ++i) {
        const float* q = reinterpret_cast<const float*>(static_cast<const char*>(queries.data) +
                                                        i * queries.stride_bytes);
        float acc = 0.0f;  // x * 0 is 0 for finite x, NaN for NaN and +-inf
        for (size_t j = 0; j < dim_; ++j) acc += q[j] * 0.0f;
        if (acc != 0.0f)
            return Status::InvalidArgument(
                "queries row " + std::to_string(i) +
                " contains NaN or infinity; vecstore rejects non-finite vectors: drop or repair "
                "them (e.g. np.nan_to_num)");
    }

    if (allow != nullptr) {
        const size_t allowed = popcount_allowed(allow, rows_);
        // Traversal cost ~ the ef / s candidates it must expand to collect ef allowed results,
        // each with up to M0 neighbours; scan cost ~ one row per allowed row.
        const double s = static_cast<double>(allowed) / static_cast<double>(rows_);
        const double graph_cost =
            allowed == 0 ? 0.0 : kFilterExactFactor * double(ef) / s * double(M0_);
        if (allowed <= ef || double(allowed) <= graph_cost) {
            if (stats) stats->exact_queries += m;
            return exact_allowed(queries, k, allow, allowed, threads, ids_out, values_out);
        }
    }

    const sq::CodeKernels& kernels = sq::active_kernels();
    const auto ct = static_cast<uint32_t>(sq::code_type(sq_type_));
    const sq::CodeFn fn = metric_ == Metric::kL2 ? kernels.l2[ct] : kernels.ip[ct];
    // Plain HNSW re-ranks the whole candidate list; HNSW_SQ with refine its best refine_k * k.
    size_t rerank = 0;
    if (sq_type_ == sq::SqType::kNone)
        rerank = ef;
    else if (refine_)
        rerank = static_cast<size_t>(
            std::min(std::ceil(refine_k * static_cast<double>(k)), static_cast<double>(rows_)));
    std::atomic<uint64_t> total_evals{0};
    auto run = [&](size_t begin, size_t end) {
        auto s = acquire_scratch();
        uint64_t evals = 0;
        for (size_t i = begin; i < end; ++i) {
            const float* q = reinterpret_cast<const float*>(
                static_cast<const char*>(queries.data) + i * queries.stride_bytes);
            search_one(fn, q, k, ef, rerank, allow, s.get(), ids_out + i * k, values_out + i * k,
                       &evals);
        }
        total_evals += evals;
        release_scratch(std::move(s));
    };
    // One query is searched on the calling thread (the search itself is sequential).
    const int t = m == 1 ? 1 : ThreadPool::resolve_threads(threads);
    if (t <= 1) {
        run(0, m);
    } else {
        const size_t block = std::max<size_t>(1, std::min<size_t>(16, m / (size_t(t) * 8)));
        ThreadPool::instance().parallel_for((m + block - 1) / block, t, [&](size_t b) {
            run(b * block, std::min(m, (b + 1) * block));
        });
    }
    if (stats) {
        stats->graph_queries += m;
        stats->distances += total_evals.load();
    }
    return Status::OK();
}

}  // namespace index
}  // namespace vecstore
