#include "index/ivf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/crc32c.h"
#include "common/macros.h"
#include "common/thread_pool.h"
#include "index/image.h"
#include "index/kmeans.h"
#include "search/rows.h"
#include "search/topk.h"

namespace vecstore {
namespace index {

using distance::Metric;
using search::MatrixView;
using search::TopK;
using search::rows::allowed;
using search::rows::row_ptr;

namespace {

constexpr char kMagic[8] = {'V', 'S', 'I', 'V', 'F', '\0', '\0', '\1'};
constexpr uint16_t kMajor = 2, kMinor = 0;
constexpr size_t kTrainRowsPerList = 256;
constexpr size_t kPqTrainRows = 65536;
constexpr size_t kEncodeChunk = 16384;
constexpr size_t kMaxRows = size_t{1} << 40;

using image::align64;
using image::get;
using image::put;


size_t code_size_for(IvfKind kind, size_t dim, size_t pq_m) {
    switch (kind) {
        case IvfKind::kSq8: return dim;
        case IvfKind::kPq: return pq_m;
        default: return dim * sizeof(float);
    }
}

// The coarse quantiser's metric (see ivf.h).
Metric coarse_metric(Metric m) { return m; }

void normalize(float* x, size_t dim) {
    double s = 0;
    for (size_t d = 0; d < dim; ++d) s += static_cast<double>(x[d]) * x[d];
    if (s > 0) {
        const float inv = static_cast<float>(1.0 / std::sqrt(s));
        for (size_t d = 0; d < dim; ++d) x[d] *= inv;
    }
}

}  // namespace

struct IvfIndex::Layout {
    size_t centroids = 0, offsets = 0, ids = 0, codes = 0, params = 0, params_count = 0, total = 0;
};

IvfIndex::Layout IvfIndex::layout_for(IvfKind kind, size_t dim, size_t nlist, size_t pq_m,
                                      size_t rows) {
    Layout l;
    l.centroids = kIvfHeaderBytes;
    l.offsets = align64(l.centroids + nlist * dim * sizeof(float));
    l.ids = align64(l.offsets + (nlist + 1) * sizeof(uint64_t));
    l.codes = align64(l.ids + rows * sizeof(int64_t));
    l.params = align64(l.codes + rows * code_size_for(kind, dim, pq_m));
    l.params_count = kind == IvfKind::kSq8 ? 2 * dim : kind == IvfKind::kPq ? kPqCodewords * dim : 0;
    l.total = l.params + l.params_count * sizeof(float) + sizeof(uint32_t);
    return l;
}

void IvfIndex::bind_sections(const uint8_t* data) {
    const Layout l = layout_for(kind_, dim_, nlist_, pq_m_, rows_);
    bytes_ = data;
    size_ = l.total;
    centroids_ = reinterpret_cast<const float*>(data + l.centroids);
    offsets_ = reinterpret_cast<const uint64_t*>(data + l.offsets);
    ids_ = reinterpret_cast<const int64_t*>(data + l.ids);
    codes_ = data + l.codes;
    params_ = reinterpret_cast<const float*>(data + l.params);
}

void IvfIndex::precompute_pq_table(int threads) {
    pq_table_.clear();
    pq_books_t_.clear();
    if (kind_ != IvfKind::kPq) return;
    const size_t m = pq_m_, dsub = dim_ / m;
    pq_books_t_.resize(dim_ * kPqCodewords);
    for (size_t j = 0; j < m; ++j) {
        for (size_t w = 0; w < kPqCodewords; ++w) {
            for (size_t d = 0; d < dsub; ++d) {
                pq_books_t_[(j * dsub + d) * kPqCodewords + w] =
                    params_[(j * kPqCodewords + w) * dsub + d];
            }
        }
    }
    if (metric_ != Metric::kL2) return;
    pq_table_.resize(nlist_ * m * kPqCodewords);
    ThreadPool::instance().parallel_for(nlist_, threads, [&](size_t l) {
        const float* c = centroids_ + l * dim_;
        for (size_t j = 0; j < m; ++j) {
            const float* cj = c + j * dsub;
            float* t = pq_table_.data() + (l * m + j) * kPqCodewords;
            for (size_t w = 0; w < kPqCodewords; ++w) {
                const float* cw = params_ + (j * kPqCodewords + w) * dsub;
                float s = 0;
                for (size_t d = 0; d < dsub; ++d) s += cw[d] * cw[d] + 2.0f * cj[d] * cw[d];
                t[w] = s;
            }
        }
    });
}

// ---- build -------------------------------------------------------------------------------------

Status IvfIndex::build(const MatrixView& base, const IvfBuildParams& p,
                       std::unique_ptr<IvfIndex>* out) {
    if (base.dtype != distance::DType::kFloat32 || base.dim == 0 || base.dim > 65536) {
        return Status::InvalidArgument("IVF needs float32 vectors with 1 to 65536 dimensions");
    }
    if (p.metric != Metric::kL2 && p.metric != Metric::kIP && p.metric != Metric::kCosine) {
        return Status::InvalidArgument("IVF supports the L2, IP and COSINE metrics");
    }
    const size_t n = base.rows, dim = base.dim;
    if (n == 0 || n > kMaxRows) return Status::InvalidArgument("IVF needs 1 to 2^40 rows");
    if (p.nlist == 0 || p.nlist > kIvfMaxNlist) {
        return Status::InvalidArgument("nlist must be between 1 and 65536");
    }
    if (p.nlist > n) {
        return Status::InvalidArgument("nlist (" + std::to_string(p.nlist) +
                                       ") exceeds the number of rows (" + std::to_string(n) +
                                       "); use nlist <= rows");
    }
    if (p.nbits != 8) return Status::InvalidArgument("only nbits = 8 is supported");
    const bool pq = p.kind == IvfKind::kPq;
    if (pq) {
        if (p.pq_m == 0 || dim % p.pq_m != 0) {
            return Status::InvalidArgument("m must divide dim");
        }
        if (n < kPqCodewords) {
            return Status::InvalidArgument("IVF_PQ with nbits=8 needs at least 256 rows");
        }
    }
    std::unique_ptr<IvfIndex> ix(new IvfIndex());
    IvfIndex& s = *ix;
    s.base_ = base;
    s.kind_ = p.kind;
    s.metric_ = p.metric;
    s.dim_ = dim;
    s.rows_ = n;
    s.nlist_ = p.nlist;
    s.pq_m_ = pq ? p.pq_m : 0;
    s.code_size_ = code_size_for(p.kind, dim, s.pq_m_);
    const bool cosine = p.metric == Metric::kCosine;
    const Layout lay = layout_for(s.kind_, dim, s.nlist_, s.pq_m_, n);
    s.owned_.assign(lay.total, 0);
    uint8_t* buf = s.owned_.data();
    float* cent = reinterpret_cast<float*>(buf + lay.centroids);
    uint64_t* offsets = reinterpret_cast<uint64_t*>(buf + lay.offsets);
    int64_t* ids = reinterpret_cast<int64_t*>(buf + lay.ids);
    uint8_t* codes = buf + lay.codes;
    float* params = reinterpret_cast<float*>(buf + lay.params);

    // Training sample (unit rows for COSINE), coarse k-means.
    const std::vector<size_t> sample = sample_rows(n, kTrainRowsPerList * s.nlist_, p.seed);
    const size_t ns = sample.size();
    std::vector<float> train(ns * dim);
    for (size_t i = 0; i < ns; ++i) {
        std::memcpy(&train[i * dim], row_ptr(base, sample[i]), dim * sizeof(float));
        if (cosine) normalize(&train[i * dim], dim);
    }
    const MatrixView tv{train.data(), ns, dim, dim * sizeof(float), distance::DType::kFloat32};
    {
        KMeansResult km;
        VS_RETURN_IF_ERROR(kmeans(tv, s.nlist_, p.niter, p.seed, p.threads, &km, false));
        std::memcpy(cent, km.centroids.data(), km.centroids.size() * sizeof(float));
        if (cosine) {
            for (size_t l = 0; l < s.nlist_; ++l) normalize(cent + l * dim, dim);
        }
    }
    const Metric cm = coarse_metric(p.metric);

    // Inverted lists: every row to its closest centroid, grouped by list in row order.
    std::vector<int64_t> assign(n);
    {
        std::vector<float> dist(n);
        VS_RETURN_IF_ERROR(
            nearest_centroid(base, cent, s.nlist_, cm, p.threads, assign.data(), dist.data()));
    }
    for (size_t i = 0; i < n; ++i) ++offsets[static_cast<size_t>(assign[i]) + 1];
    for (size_t l = 0; l < s.nlist_; ++l) offsets[l + 1] += offsets[l];
    {
        std::vector<uint64_t> fill(offsets, offsets + s.nlist_);
        for (size_t i = 0; i < n; ++i) ids[fill[static_cast<size_t>(assign[i])]++] = i;
    }
    // list_of[pos]: the list holding position pos.
    std::vector<uint32_t> list_of(n);
    for (size_t l = 0; l < s.nlist_; ++l) {
        for (size_t pos = offsets[l]; pos < offsets[l + 1]; ++pos) list_of[pos] = l;
    }
    // The vector a list entry encodes (unit row for COSINE).
    auto load_row = [&](size_t pos, float* dst) {
        std::memcpy(dst, row_ptr(base, static_cast<size_t>(ids[pos])), dim * sizeof(float));
        if (cosine) normalize(dst, dim);
    };
    const size_t chunks = (n + kEncodeChunk - 1) / kEncodeChunk;

    if (s.kind_ == IvfKind::kFlat) {
        // The rows themselves, in list order: a probe streams one contiguous block per list
        // instead of gathering rows scattered over the caller's matrix (DRAM-latency-bound).
        ThreadPool::instance().parallel_for(chunks, p.threads, [&](size_t c) {
            for (size_t pos = c * kEncodeChunk; pos < std::min(n, (c + 1) * kEncodeChunk); ++pos) {
                std::memcpy(codes + pos * s.code_size_,
                            row_ptr(base, static_cast<size_t>(ids[pos])), dim * sizeof(float));
            }
        });
    } else if (s.kind_ == IvfKind::kSq8) {
        float* vmin = params;
        float* step = params + dim;
        for (size_t d = 0; d < dim; ++d) {
            float lo = std::numeric_limits<float>::infinity(), hi = -lo;
            for (size_t i = 0; i < ns; ++i) {
                lo = std::min(lo, train[i * dim + d]);
                hi = std::max(hi, train[i * dim + d]);
            }
            vmin[d] = lo;
            step[d] = (hi - lo) / 255.0f;
        }
        ThreadPool::instance().parallel_for(chunks, p.threads, [&](size_t c) {
            std::vector<float> x(dim);
            for (size_t pos = c * kEncodeChunk; pos < std::min(n, (c + 1) * kEncodeChunk); ++pos) {
                load_row(pos, x.data());
                uint8_t* code = codes + pos * dim;
                for (size_t d = 0; d < dim; ++d) {
                    float v = step[d] > 0 ? (x[d] - vmin[d]) / step[d] : 0.0f;
                    v = std::floor(v);
                    code[d] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        });
    } else if (pq) {
        const size_t m = s.pq_m_, dsub = dim / m;
        // Residuals of (a sub-sample of) the training rows against their coarse centroids. The
        // training rows are base rows, so their lists are known from `assign` (for COSINE the
        // best cosine of the raw row is that of the unit row).
        const std::vector<size_t> pick = sample_rows(ns, kPqTrainRows, p.seed + 1);
        const size_t nt = pick.size();
        std::vector<float> resid(nt * dim);
        for (size_t i = 0; i < nt; ++i) {
            std::memcpy(&resid[i * dim], &train[pick[i] * dim], dim * sizeof(float));
            const float* c = cent + static_cast<size_t>(assign[sample[pick[i]]]) * dim;
            for (size_t d = 0; d < dim; ++d) resid[i * dim + d] -= c[d];
        }
        for (size_t j = 0; j < m; ++j) {
            const MatrixView sub{resid.data() + j * dsub, nt, dsub, dim * sizeof(float),
                                 distance::DType::kFloat32};
            KMeansResult km;
            VS_RETURN_IF_ERROR(
                kmeans(sub, kPqCodewords, p.niter, p.seed + 2 + j, p.threads, &km, false));
            std::memcpy(params + j * kPqCodewords * dsub, km.centroids.data(),
                        km.centroids.size() * sizeof(float));
        }
        // Encode every list entry's residual: sub-space by sub-space, nearest codeword.
        std::vector<float> r(kEncodeChunk * dim), dist(kEncodeChunk);
        std::vector<int64_t> code_ids(kEncodeChunk);
        for (size_t c = 0; c < chunks; ++c) {
            const size_t p0 = c * kEncodeChunk, cnt = std::min(kEncodeChunk, n - p0);
            for (size_t i = 0; i < cnt; ++i) {
                float* x = &r[i * dim];
                load_row(p0 + i, x);
                const float* ce = cent + static_cast<size_t>(list_of[p0 + i]) * dim;
                for (size_t d = 0; d < dim; ++d) x[d] -= ce[d];
            }
            for (size_t j = 0; j < m; ++j) {
                const MatrixView sub{r.data() + j * dsub, cnt, dsub, dim * sizeof(float),
                                     distance::DType::kFloat32};
                VS_RETURN_IF_ERROR(nearest_l2(sub, params + j * kPqCodewords * dsub, kPqCodewords,
                                              p.threads, code_ids.data(), dist.data()));
                for (size_t i = 0; i < cnt; ++i) {
                    codes[(p0 + i) * m + j] = static_cast<uint8_t>(code_ids[i]);
                }
            }
        }
    }

    // Header and checksums.
    std::memcpy(buf, kMagic, sizeof(kMagic));
    put<uint16_t>(buf, 8, kMajor);
    put<uint16_t>(buf, 10, kMinor);
    put<uint32_t>(buf, 12, static_cast<uint32_t>(s.kind_));
    put<uint32_t>(buf, 16, static_cast<uint32_t>(s.metric_));
    put<uint32_t>(buf, 20, static_cast<uint32_t>(dim));
    put<uint32_t>(buf, 24, static_cast<uint32_t>(s.nlist_));
    put<uint32_t>(buf, 28, static_cast<uint32_t>(s.pq_m_));
    put<uint32_t>(buf, 32, 8u);
    put<uint32_t>(buf, 36, static_cast<uint32_t>(s.code_size_));
    put<uint64_t>(buf, 40, n);
    put<uint64_t>(buf, 48, lay.total);
    put<uint32_t>(buf, 56, crc32c::value(buf, 56));
    put<uint32_t>(buf, lay.total - 4,
                  crc32c::value(buf + kIvfHeaderBytes, lay.total - 4 - kIvfHeaderBytes));
    s.bind_sections(buf);
    s.precompute_pq_table(p.threads);
    *out = std::move(ix);
    return Status::OK();
}

// ---- load --------------------------------------------------------------------------------------

Status IvfIndex::load(const uint8_t* data, size_t size, const MatrixView& base,
                      std::unique_ptr<IvfIndex>* out) {
    auto corrupt = [](const std::string& why) {
        return Status::Corruption("IVF index buffer is corrupt: " + why);
    };
    if (size < kIvfHeaderBytes + 4) {
        return corrupt("truncated (" + std::to_string(size) + " bytes; the header alone needs " +
                       std::to_string(kIvfHeaderBytes + 4) + ")");
    }
    if (std::memcmp(data, kMagic, sizeof(kMagic)) != 0) return corrupt("bad magic (not an IVF index)");
    const uint16_t major = get<uint16_t>(data, 8);
    if (major != kMajor) {
        return corrupt("format version " + std::to_string(major) + " is not supported (this build "
                       "reads version " + std::to_string(kMajor) + ")");
    }
    if (get<uint32_t>(data, 56) != crc32c::value(data, 56)) return corrupt("header checksum mismatch");
    if (get<uint32_t>(data, 60) != 0) return corrupt("reserved header field is not zero");
    const uint32_t kind = get<uint32_t>(data, 12), metric = get<uint32_t>(data, 16);
    const size_t dim = get<uint32_t>(data, 20), nlist = get<uint32_t>(data, 24);
    const size_t pq_m = get<uint32_t>(data, 28), nbits = get<uint32_t>(data, 32);
    const size_t code_size = get<uint32_t>(data, 36);
    const uint64_t rows = get<uint64_t>(data, 40), total = get<uint64_t>(data, 48);
    if (kind > 2 || metric > 2) return corrupt("unknown kind or metric");
    const IvfKind k = static_cast<IvfKind>(kind);
    if (dim == 0 || dim > 65536 || nlist == 0 || nlist > kIvfMaxNlist || nbits != 8 ||
        rows == 0 || rows > kMaxRows) {
        return corrupt("header field out of range");
    }
    if ((k == IvfKind::kPq) != (pq_m != 0) || (pq_m != 0 && dim % pq_m != 0) ||
        code_size != code_size_for(k, dim, pq_m)) {
        return corrupt("inconsistent code parameters");
    }
    const Layout lay = layout_for(k, dim, nlist, pq_m, rows);
    if (total != lay.total) return corrupt("size field does not match the header's shape");
    if (size < total) {
        return corrupt("truncated (" + std::to_string(size) + " of " + std::to_string(total) +
                       " bytes)");
    }
    if (size > total) return corrupt(std::to_string(size - total) + " trailing bytes");
    if (get<uint32_t>(data, total - 4) !=
        crc32c::value(data + kIvfHeaderBytes, total - 4 - kIvfHeaderBytes)) {
        return corrupt("payload checksum mismatch");
    }
    if (base.dtype != distance::DType::kFloat32 || base.rows != rows || base.dim != dim) {
        return Status::InvalidArgument(
            "the base matrix does not match the index: the index was built on " +
            std::to_string(rows) + " x " + std::to_string(dim) + " float32 rows, got " +
            std::to_string(base.rows) + " x " + std::to_string(base.dim));
    }
    std::unique_ptr<IvfIndex> ix(new IvfIndex());
    IvfIndex& s = *ix;
    s.base_ = base;
    s.kind_ = k;
    s.metric_ = static_cast<Metric>(metric);
    s.dim_ = dim;
    s.rows_ = rows;
    s.nlist_ = nlist;
    s.pq_m_ = pq_m;
    s.code_size_ = code_size;
    if (reinterpret_cast<uintptr_t>(data) % 8 != 0) {
        s.owned_.assign(data, data + size);  // misaligned for the float/u64 sections: copy
        data = s.owned_.data();
    }
    s.bind_sections(data);
    if (s.offsets_[0] != 0 || s.offsets_[nlist] != rows) return corrupt("list offsets do not span the rows");
    for (size_t l = 0; l < nlist; ++l) {
        if (s.offsets_[l + 1] < s.offsets_[l]) return corrupt("list offsets decrease");
    }
    for (size_t i = 0; i < rows; ++i) {
        if (s.ids_[i] < 0 || static_cast<uint64_t>(s.ids_[i]) >= rows) {
            return corrupt("row id out of range");
        }
    }
    s.precompute_pq_table(0);
    *out = std::move(ix);
    return Status::OK();
}

// ---- search ------------------------------------------------------------------------------------

struct IvfIndex::Scratch {
    std::vector<float> q, a, b, lut, table, vals, dist;
};

void IvfIndex::search_one(const float* q_in, const int64_t* probes, const float* coarse,
                          const IvfSearchParams& p, Scratch& s, int64_t* ids_out,
                          float* vals_out) const {
    const distance::KernelTable& kt = distance::active();
    const distance::ManyFn exact = kt.many[0][static_cast<int>(metric_)];
    const bool hi = distance::higher_is_closer(metric_);
    const bool cosine = metric_ == Metric::kCosine;
    const size_t dim = dim_;
    const bool rerank = p.rerank && kind_ != IvfKind::kFlat;
    auto prefetch_row = [&](int64_t id) {
        const char* r = row_ptr(base_, static_cast<size_t>(id));
        for (size_t b = 0; b < dim * sizeof(float); b += 64) __builtin_prefetch(r + b);
    };
    const size_t keep = rerank ? std::min(rows_, p.k * std::max<size_t>(1, p.rerank_factor)) : p.k;
    TopK top(keep);
    float thr = top.threshold();

    if (kind_ == IvfKind::kFlat) {
        // Each list's rows are one contiguous block of the image: one kernel call per list (the
        // ManyFn kernels compute each row independently, so values equal knn's scan path).
        for (size_t pi = 0; pi < p.nprobe; ++pi) {
            if (probes[pi] < 0) continue;
            const size_t l = static_cast<size_t>(probes[pi]);
            const uint64_t b = offsets_[l], cnt = offsets_[l + 1] - b;
            const uint8_t* vecs = codes_ + b * code_size_;
            const int64_t* lid = ids_ + b;
            if (p.allow == nullptr) {
                s.dist.resize(cnt);
                exact(q_in, vecs, cnt, code_size_, dim, s.dist.data());
                for (uint64_t i = 0; i < cnt; ++i) {
                    const float key = hi ? -s.dist[i] : s.dist[i];
                    // <=: lists are not scanned in id order, so an equal key may still win on id.
                    if (key <= thr) {
                        top.push(key, lid[i]);
                        thr = top.threshold();
                    }
                }
            } else {
                // Filtered: rows outside the allow-set are not read at all.
                for (uint64_t i = 0; i < cnt; ++i) {
                    if (!allowed(p.allow, static_cast<size_t>(lid[i]))) continue;
                    float v;
                    exact(q_in, vecs + i * code_size_, 1, code_size_, dim, &v);
                    const float key = hi ? -v : v;
                    if (key <= thr) {
                        top.push(key, lid[i]);
                        thr = top.threshold();
                    }
                }
            }
        }
    } else {
        // The query as the codes see it: unit length for COSINE.
        s.q.assign(q_in, q_in + dim);
        if (cosine) normalize(s.q.data(), dim);
        const float* q = s.q.data();
        if (kind_ == IvfKind::kSq8) {
            // Decoded x_d = b_d + step_d * c_d with b_d = min_d + step_d / 2.
            const float* vmin = params_;
            const float* step = params_ + dim;
            s.a.resize(dim);
            float c0 = 0;
            if (metric_ == Metric::kL2) {
                for (size_t d = 0; d < dim; ++d) s.a[d] = q[d] - (vmin[d] + 0.5f * step[d]);
            } else {
                for (size_t d = 0; d < dim; ++d) {
                    c0 += q[d] * (vmin[d] + 0.5f * step[d]);
                    s.a[d] = q[d] * step[d];
                }
            }
            const float* a = s.a.data();
            for (size_t pi = 0; pi < p.nprobe; ++pi) {
                if (probes[pi] < 0) continue;
                const size_t l = static_cast<size_t>(probes[pi]);
                for (uint64_t pos = offsets_[l]; pos < offsets_[l + 1]; ++pos) {
                    const size_t id = static_cast<size_t>(ids_[pos]);
                    if (!allowed(p.allow, id)) continue;
                    const uint8_t* c = codes_ + pos * dim;
                    float v = 0;
                    if (metric_ == Metric::kL2) {
                        for (size_t d = 0; d < dim; ++d) {
                            const float t = a[d] - step[d] * static_cast<float>(c[d]);
                            v += t * t;
                        }
                    } else {
                        for (size_t d = 0; d < dim; ++d) v += a[d] * static_cast<float>(c[d]);
                        v += c0;
                    }
                    const float key = hi ? -v : v;
                    if (key <= thr) {
                        top.push(key, static_cast<int64_t>(id));
                        thr = top.threshold();
                    }
                }
            }
        } else {
            // ADC: lut[j][w] = <q_j, w_jw>; L2 adds the list's precomputed |w|^2 + 2 <c_j, w>.
            const size_t m = pq_m_, dsub = dim / m, tsize = m * kPqCodewords;
            s.lut.resize(tsize);
            // Codeword-major (pq_books_t_) so that the inner loop runs over 256 contiguous
            // lanes and vectorises; the codeword-by-codeword dot products did not.
            for (size_t j = 0; j < m; ++j) {
                float* lut = s.lut.data() + j * kPqCodewords;
                std::fill(lut, lut + kPqCodewords, 0.0f);
                for (size_t d = 0; d < dsub; ++d) {
                    const float qd = q[j * dsub + d];
                    const float* col = pq_books_t_.data() + (j * dsub + d) * kPqCodewords;
                    for (size_t w = 0; w < kPqCodewords; ++w) lut[w] += qd * col[w];
                }
            }
            const bool l2 = metric_ == Metric::kL2;
            s.table.resize(tsize);
            for (size_t pi = 0; pi < p.nprobe; ++pi) {
                if (probes[pi] < 0) continue;
                const size_t l = static_cast<size_t>(probes[pi]);
                const float* table = s.lut.data();
                if (l2) {
                    const float* pre = pq_table_.data() + l * tsize;
                    for (size_t t = 0; t < tsize; ++t) s.table[t] = pre[t] - 2.0f * s.lut[t];
                    table = s.table.data();
                }
                const float c0 = coarse[pi];
                for (uint64_t pos = offsets_[l]; pos < offsets_[l + 1]; ++pos) {
                    const size_t id = static_cast<size_t>(ids_[pos]);
                    if (!allowed(p.allow, id)) continue;
                    const uint8_t* c = codes_ + pos * m;
                    float v = c0;
                    for (size_t j = 0; j < m; ++j) v += table[j * kPqCodewords + c[j]];
                    const float key = hi ? -v : v;
                    if (key <= thr) {
                        top.push(key, static_cast<int64_t>(id));
                        thr = top.threshold();
                    }
                }
            }
        }
    }

    s.vals.resize(keep);
    std::vector<int64_t> cand(keep);
    top.sorted(s.vals.data(), cand.data());
    if (rerank) {
        TopK best(p.k);
        // All candidates' rows are requested before any is read: their misses overlap.
        for (size_t i = 0; i < keep && cand[i] >= 0; ++i) prefetch_row(cand[i]);
        for (size_t i = 0; i < keep && cand[i] >= 0; ++i) {
            float v;
            exact(q_in, row_ptr(base_, static_cast<size_t>(cand[i])), 1, base_.stride_bytes, dim,
                  &v);
            best.push(hi ? -v : v, cand[i]);
        }
        best.sorted(vals_out, ids_out);
    } else {
        std::copy(s.vals.begin(), s.vals.begin() + p.k, vals_out);
        std::copy(cand.begin(), cand.begin() + p.k, ids_out);
    }
    const float pad = hi ? -std::numeric_limits<float>::infinity()
                         : std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < p.k; ++j) {
        if (ids_out[j] < 0) {
            vals_out[j] = pad;
        } else if (hi) {
            vals_out[j] = -vals_out[j];
        }
    }
}

Status IvfIndex::search(const MatrixView& queries, const IvfSearchParams& p, int64_t* ids_out,
                        float* values_out) const {
    if (queries.dtype != distance::DType::kFloat32 || queries.dim != dim_) {
        return Status::InvalidArgument("queries must be float32 with the index's dimension (" +
                                       std::to_string(dim_) + ")");
    }
    if (p.k == 0) return Status::InvalidArgument("k must be at least 1");
    if (p.nprobe == 0 || p.nprobe > nlist_) {
        return Status::InvalidArgument("nprobe must be between 1 and nlist (" +
                                       std::to_string(nlist_) + ")");
    }
    const size_t nq = queries.rows;
    if (nq == 0) return Status::OK();
    // Coarse step: every query's nprobe closest lists, batched.
    std::vector<int64_t> probes(nq * p.nprobe);
    std::vector<float> coarse(nq * p.nprobe);
    const MatrixView cv{centroids_, nlist_, dim_, dim_ * sizeof(float), distance::DType::kFloat32};
    bool bad = false;
    VS_RETURN_IF_ERROR(search::knn(queries, cv, p.nprobe, coarse_metric(metric_), nullptr,
                                   p.threads, probes.data(), coarse.data(), &bad));
    if (bad) return Status::InvalidArgument("queries hold NaN or infinite values");
    const size_t t = static_cast<size_t>(ThreadPool::resolve_threads(p.threads));
    const size_t tasks = std::min(nq, t <= 1 ? size_t{1} : 4 * t);
    ThreadPool::instance().parallel_for(tasks, p.threads, [&](size_t task) {
        Scratch s;
        for (size_t i = nq * task / tasks; i < nq * (task + 1) / tasks; ++i) {
            search_one(reinterpret_cast<const float*>(row_ptr(queries, i)),
                       probes.data() + i * p.nprobe, coarse.data() + i * p.nprobe, p, s,
                       ids_out + i * p.k, values_out + i * p.k);
        }
    });
    return Status::OK();
}

}  // namespace index
}  // namespace vecstore
