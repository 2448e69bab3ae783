#include "index/bin_ivf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
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

constexpr char kMagic[8] = {'V', 'S', 'B', 'I', 'V', 'F', '\0', '\1'};
constexpr uint16_t kMajor = 1, kMinor = 0;
constexpr size_t kHeaderBytes = 64;
constexpr size_t kTrainRowsPerList = 256;
constexpr size_t kAssignChunk = 4096;
constexpr size_t kMaxRows = size_t{1} << 40;

using image::align64;
using image::get;
using image::put;

distance::ManyFn kernel_for(Metric m) {
    return distance::active().many[static_cast<int>(distance::DType::kBinary)][static_cast<int>(m)];
}

// For each of the n rows (packed, `stride` bytes apart) its closest centroid (ties: smaller id).
void assign_rows(const uint8_t* rows, size_t n, size_t stride, const uint8_t* cent, size_t k,
                 size_t code_size, Metric metric, int threads, uint32_t* out) {
    const distance::ManyFn fn = kernel_for(metric);
    const size_t dim = code_size * 8;
    const size_t tasks = (n + kAssignChunk - 1) / kAssignChunk;
    ThreadPool::instance().parallel_for(tasks, threads, [&](size_t t) {
        std::vector<float> d(k);
        for (size_t i = t * kAssignChunk; i < std::min(n, (t + 1) * kAssignChunk); ++i) {
            fn(rows + i * stride, cent, k, code_size, dim, d.data());
            out[i] = static_cast<uint32_t>(std::min_element(d.begin(), d.end()) - d.begin());
        }
    });
}

// Binary k-means over the n packed rows of `train` (contiguous, code_size bytes each); see
// bin_ivf.h for the algorithm. Deterministic given (train, k, niter, seed, metric).
void binary_kmeans(const uint8_t* train, size_t n, size_t code_size, size_t k, int niter,
                   uint64_t seed, Metric metric, int threads, uint8_t* cent) {
    SplitMix64 rng(seed);
    {
        std::vector<size_t> perm(n);
        std::iota(perm.begin(), perm.end(), size_t{0});
        for (size_t i = 0; i < k; ++i) {
            std::swap(perm[i], perm[i + rng.below(n - i)]);
            std::memcpy(cent + i * code_size, train + perm[i] * code_size, code_size);
        }
    }
    const size_t dim = code_size * 8;
    std::vector<uint32_t> assign(n);
    std::vector<size_t> counts(k), starts(k + 1), order(n);
    for (int it = 0; it < niter; ++it) {
        assign_rows(train, n, code_size, cent, k, code_size, metric, threads, assign.data());
        std::fill(counts.begin(), counts.end(), 0);
        for (size_t i = 0; i < n; ++i) ++counts[assign[i]];
        starts[0] = 0;
        for (size_t c = 0; c < k; ++c) starts[c + 1] = starts[c] + counts[c];
        {
            std::vector<size_t> fill(starts.begin(), starts.end() - 1);
            for (size_t i = 0; i < n; ++i) order[fill[assign[i]]++] = i;
        }
        const size_t tasks = std::min<size_t>(k, 64);
        ThreadPool::instance().parallel_for(tasks, threads, [&](size_t t) {
            std::vector<uint32_t> ones(dim);
            for (size_t c = k * t / tasks; c < k * (t + 1) / tasks; ++c) {
                if (counts[c] == 0) continue;
                std::fill(ones.begin(), ones.end(), 0u);
                for (size_t j = starts[c]; j < starts[c + 1]; ++j) {
                    const uint8_t* x = train + order[j] * code_size;
                    for (size_t b = 0; b < code_size; ++b) {
                        for (size_t bit = 0; bit < 8; ++bit) ones[b * 8 + bit] += (x[b] >> bit) & 1u;
                    }
                }
                uint8_t* out = cent + c * code_size;
                for (size_t b = 0; b < code_size; ++b) {
                    uint8_t v = 0;
                    for (size_t bit = 0; bit < 8; ++bit) {
                        if (2 * static_cast<size_t>(ones[b * 8 + bit]) > counts[c]) {
                            v |= static_cast<uint8_t>(1u << bit);
                        }
                    }
                    out[b] = v;
                }
            }
        });
        // Empty clusters take a row of a cluster that keeps at least one member.
        for (size_t c = 0; c < k; ++c) {
            if (counts[c] != 0) continue;
            for (;;) {
                const size_t i = rng.below(n);
                if (counts[assign[i]] > 1) {
                    --counts[assign[i]];
                    std::memcpy(cent + c * code_size, train + i * code_size, code_size);
                    counts[c] = 1;
                    break;
                }
            }
        }
    }
}

}  // namespace

struct BinIvfIndex::Layout {
    size_t centroids = 0, offsets = 0, ids = 0, codes = 0, total = 0;
};

BinIvfIndex::Layout BinIvfIndex::layout_for(size_t code_size, size_t nlist, size_t rows) {
    Layout l;
    l.centroids = kHeaderBytes;
    l.offsets = align64(l.centroids + nlist * code_size);
    l.ids = align64(l.offsets + (nlist + 1) * sizeof(uint64_t));
    l.codes = align64(l.ids + rows * sizeof(int64_t));
    l.total = l.codes + rows * code_size + sizeof(uint32_t);
    return l;
}

void BinIvfIndex::bind_sections(const uint8_t* data) {
    const Layout l = layout_for(code_size_, nlist_, rows_);
    bytes_ = data;
    size_ = l.total;
    centroids_ = data + l.centroids;
    offsets_ = reinterpret_cast<const uint64_t*>(data + l.offsets);
    ids_ = reinterpret_cast<const int64_t*>(data + l.ids);
    codes_ = data + l.codes;
}

Status BinIvfIndex::build(const MatrixView& base, const BinIvfBuildParams& p,
                          std::unique_ptr<BinIvfIndex>* out) {
    if (base.dtype != distance::DType::kBinary || base.dim == 0 || base.dim % 8 != 0 ||
        base.dim / 8 > kBinIvfMaxBytes) {
        return Status::InvalidArgument(
            "BIN_IVF_FLAT needs binary vectors packed 8 bits per byte, 1 to 65536 bytes each");
    }
    if (p.metric != Metric::kHamming && p.metric != Metric::kJaccard) {
        return Status::InvalidArgument("BIN_IVF_FLAT supports the HAMMING and JACCARD metrics");
    }
    const size_t n = base.rows, cs = base.dim / 8;
    if (n == 0 || n > kMaxRows) return Status::InvalidArgument("BIN_IVF_FLAT needs 1 to 2^40 rows");
    if (p.nlist == 0 || p.nlist > kBinIvfMaxNlist) {
        return Status::InvalidArgument("nlist must be between 1 and 65536");
    }
    if (p.nlist > n) {
        return Status::InvalidArgument("nlist (" + std::to_string(p.nlist) +
                                       ") exceeds the number of rows (" + std::to_string(n) +
                                       "); use nlist <= rows");
    }
    std::unique_ptr<BinIvfIndex> ix(new BinIvfIndex());
    BinIvfIndex& s = *ix;
    s.metric_ = p.metric;
    s.dim_ = base.dim;
    s.code_size_ = cs;
    s.rows_ = n;
    s.nlist_ = p.nlist;
    const Layout lay = layout_for(cs, s.nlist_, n);
    s.owned_.assign(lay.total, 0);
    uint8_t* buf = s.owned_.data();
    uint8_t* cent = buf + lay.centroids;
    uint64_t* offsets = reinterpret_cast<uint64_t*>(buf + lay.offsets);
    int64_t* ids = reinterpret_cast<int64_t*>(buf + lay.ids);
    uint8_t* codes = buf + lay.codes;

    {
        const std::vector<size_t> sample = sample_rows(n, kTrainRowsPerList * s.nlist_, p.seed);
        std::vector<uint8_t> train(sample.size() * cs);
        for (size_t i = 0; i < sample.size(); ++i) {
            std::memcpy(&train[i * cs], row_ptr(base, sample[i]), cs);
        }
        binary_kmeans(train.data(), sample.size(), cs, s.nlist_, p.niter, p.seed, p.metric,
                      p.threads, cent);
    }
    std::vector<uint32_t> assign(n);
    assign_rows(static_cast<const uint8_t*>(base.data), n, base.stride_bytes, cent, s.nlist_, cs,
                p.metric, p.threads, assign.data());
    for (size_t i = 0; i < n; ++i) ++offsets[assign[i] + 1];
    for (size_t l = 0; l < s.nlist_; ++l) offsets[l + 1] += offsets[l];
    {
        std::vector<uint64_t> fill(offsets, offsets + s.nlist_);
        for (size_t i = 0; i < n; ++i) {
            const uint64_t pos = fill[assign[i]]++;
            ids[pos] = static_cast<int64_t>(i);
            std::memcpy(codes + pos * cs, row_ptr(base, i), cs);
        }
    }

    std::memcpy(buf, kMagic, sizeof(kMagic));
    put<uint16_t>(buf, 8, kMajor);
    put<uint16_t>(buf, 10, kMinor);
    put<uint32_t>(buf, 12, static_cast<uint32_t>(s.metric_));
    put<uint32_t>(buf, 16, static_cast<uint32_t>(s.dim_));
    put<uint32_t>(buf, 20, static_cast<uint32_t>(s.nlist_));
    put<uint64_t>(buf, 24, n);
    put<uint64_t>(buf, 32, lay.total);
    put<uint32_t>(buf, 56, crc32c::value(buf, 56));
    put<uint32_t>(buf, lay.total - 4,
                  crc32c::value(buf + kHeaderBytes, lay.total - 4 - kHeaderBytes));
    s.bind_sections(buf);
    *out = std::move(ix);
    return Status::OK();
}

Status BinIvfIndex::load(const uint8_t* data, size_t size, std::unique_ptr<BinIvfIndex>* out) {
    auto corrupt = [](const std::string& why) {
        return Status::Corruption("BIN_IVF_FLAT index buffer is corrupt: " + why);
    };
    if (size < kHeaderBytes + 4) {
        return corrupt("truncated (" + std::to_string(size) + " bytes; the header alone needs " +
                       std::to_string(kHeaderBytes + 4) + ")");
    }
    if (std::memcmp(data, kMagic, sizeof(kMagic)) != 0) {
        return corrupt("bad magic (not a BIN_IVF_FLAT index)");
    }
    const uint16_t major = get<uint16_t>(data, 8);
    if (major != kMajor) {
        return corrupt("format version " + std::to_string(major) + " is not supported (this build "
                       "reads version " + std::to_string(kMajor) + ")");
    }
    if (get<uint32_t>(data, 56) != crc32c::value(data, 56)) return corrupt("header checksum mismatch");
    for (size_t off = 40; off < 56; ++off) {
        if (data[off] != 0) return corrupt("reserved header field is not zero");
    }
    if (get<uint32_t>(data, 60) != 0) return corrupt("reserved header field is not zero");
    const uint32_t metric = get<uint32_t>(data, 12);
    const size_t dim = get<uint32_t>(data, 16), nlist = get<uint32_t>(data, 20);
    const uint64_t rows = get<uint64_t>(data, 24), total = get<uint64_t>(data, 32);
    if (metric != static_cast<uint32_t>(Metric::kHamming) &&
        metric != static_cast<uint32_t>(Metric::kJaccard)) {
        return corrupt("unknown metric");
    }
    if (dim == 0 || dim % 8 != 0 || dim / 8 > kBinIvfMaxBytes || nlist == 0 ||
        nlist > kBinIvfMaxNlist || rows == 0 || rows > kMaxRows || nlist > rows) {
        return corrupt("header field out of range");
    }
    const Layout lay = layout_for(dim / 8, nlist, rows);
    if (total != lay.total) return corrupt("size field does not match the header's shape");
    if (size < total) {
        return corrupt("truncated (" + std::to_string(size) + " of " + std::to_string(total) +
                       " bytes)");
    }
    if (size > total) return corrupt(std::to_string(size - total) + " trailing bytes");
    if (get<uint32_t>(data, total - 4) !=
        crc32c::value(data + kHeaderBytes, total - 4 - kHeaderBytes)) {
        return corrupt("payload checksum mismatch");
    }
    std::unique_ptr<BinIvfIndex> ix(new BinIvfIndex());
    BinIvfIndex& s = *ix;
    s.metric_ = static_cast<Metric>(metric);
    s.dim_ = dim;
    s.code_size_ = dim / 8;
    s.rows_ = rows;
    s.nlist_ = nlist;
    if (reinterpret_cast<uintptr_t>(data) % 8 != 0) {
        s.owned_.assign(data, data + size);  // misaligned for the u64 sections: copy
        data = s.owned_.data();
    }
    s.bind_sections(data);
    if (s.offsets_[0] != 0 || s.offsets_[nlist] != rows) {
        return corrupt("list offsets do not span the rows");
    }
    for (size_t l = 0; l < nlist; ++l) {
        if (s.offsets_[l + 1] < s.offsets_[l]) return corrupt("list offsets decrease");
    }
    for (size_t i = 0; i < rows; ++i) {
        if (s.ids_[i] < 0 || static_cast<uint64_t>(s.ids_[i]) >= rows) {
            return corrupt("row id out of range");
        }
    }
    *out = std::move(ix);
    return Status::OK();
}

void BinIvfIndex::search_one(const uint8_t* q, const BinIvfSearchParams& p,
                             std::vector<float>& dist, std::vector<int64_t>& order,
                             int64_t* ids_out, float* vals_out) const {
    const distance::ManyFn fn = kernel_for(metric_);
    const size_t cs = code_size_;
    // Probes: the nprobe closest centroids, ties to the smaller list id.
    dist.resize(std::max<size_t>(dist.size(), nlist_));
    fn(q, centroids_, nlist_, cs, dim_, dist.data());
    order.resize(nlist_);
    std::iota(order.begin(), order.end(), int64_t{0});
    const float* cd = dist.data();
    std::partial_sort(order.begin(), order.begin() + p.nprobe, order.end(),
                      [cd](int64_t a, int64_t b) { return cd[a] < cd[b] || (cd[a] == cd[b] && a < b); });
    TopK top(p.k);
    float thr = top.threshold();
    for (size_t pi = 0; pi < p.nprobe; ++pi) {
        const size_t l = static_cast<size_t>(order[pi]);
        const uint64_t b = offsets_[l], cnt = offsets_[l + 1] - b;
        const uint8_t* codes = codes_ + b * cs;
        const int64_t* lid = ids_ + b;
        if (p.allow == nullptr) {
            if (dist.size() < cnt) dist.resize(cnt);
            fn(q, codes, cnt, cs, dim_, dist.data());
            for (uint64_t i = 0; i < cnt; ++i) {
                // <=: lists are not scanned in id order, so an equal value may still win on id.
                if (dist[i] <= thr) {
                    top.push(dist[i], lid[i]);
                    thr = top.threshold();
                }
            }
        } else {
            for (uint64_t i = 0; i < cnt; ++i) {
                if (!allowed(p.allow, static_cast<size_t>(lid[i]))) continue;
                float v;
                fn(q, codes + i * cs, 1, cs, dim_, &v);
                if (v <= thr) {
                    top.push(v, lid[i]);
                    thr = top.threshold();
                }
            }
        }
    }
    top.sorted(vals_out, ids_out);
    for (size_t j = 0; j < p.k; ++j) {
        if (ids_out[j] < 0) vals_out[j] = std::numeric_limits<float>::infinity();
    }
}

Status BinIvfIndex::search(const MatrixView& queries, const BinIvfSearchParams& p,
                           int64_t* ids_out, float* values_out) const {
    if (queries.dtype != distance::DType::kBinary || queries.dim != dim_) {
        return Status::InvalidArgument("queries must be binary with the index's dimension (" +
                                       std::to_string(dim_) + " bits)");
    }
    if (p.k == 0) return Status::InvalidArgument("k must be at least 1");
    if (p.nprobe == 0 || p.nprobe > nlist_) {
        return Status::InvalidArgument("nprobe must be between 1 and nlist (" +
                                       std::to_string(nlist_) + ")");
    }
    const size_t nq = queries.rows;
    if (nq == 0) return Status::OK();
    const size_t t = static_cast<size_t>(ThreadPool::resolve_threads(p.threads));
    const size_t tasks = std::min(nq, t <= 1 ? size_t{1} : 4 * t);
    ThreadPool::instance().parallel_for(tasks, p.threads, [&](size_t task) {
        std::vector<float> dist;
        std::vector<int64_t> order;
        for (size_t i = nq * task / tasks; i < nq * (task + 1) / tasks; ++i) {
            search_one(reinterpret_cast<const uint8_t*>(row_ptr(queries, i)), p, dist, order,
                       ids_out + i * p.k, values_out + i * p.k);
        }
    });
    return Status::OK();
}

}  // namespace index
}  // namespace vecstore
