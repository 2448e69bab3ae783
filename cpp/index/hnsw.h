// HnswIndex: a hierarchical navigable small-world graph over an immutable float32 matrix.
//
// The index holds the graph and a quantised copy of the vectors (codes, index/hnsw_sq.h); the
// float32 vectors stay in the caller's matrix (e.g. a sealed segment's memory-mapped rows), which
// must outlive the object and must not change. Distances come from the dispatched SIMD kernels
// (distance::active(), sq::active_kernels()), so they follow VECSTORE_SIMD / set_simd_level.
//
// Kinds (Milvus's index types):
//   HNSW      (sq_type kNone) search walks the graph with SQ8 codes (1 byte per dimension: a
//             quarter of the float32 row's cache lines per distance), then re-ranks all
//             max(ef, k) candidates with exact float32 distances: reported values are exact.
//   HNSW_SQ   (sq_type SQ8, FP16 or BF16) the walk uses codes of that type. refine = false:
//             values are computed from the codes (the query stays float32). refine = true: the
//             best ceil(refine_k * k) candidates (the candidate list grows to at least that) are
//             re-ranked with exact float32 distances.
// The graph itself is always built from the float32 rows.
//
// Metrics and values (Milvus's units, as search::knn): L2 = squared distance (ascending), IP =
// inner product (descending), COSINE = cosine similarity (descending; 0 for an all-zero vector).
// Internally every metric becomes a key where smaller is closer: L2 -> l2sq, IP -> -ip,
// COSINE -> -ip(q / |q|, x) / |x| with 1 / |x| precomputed per row at build and stored in the
// index. Returned COSINE values are recomputed with the cosine kernel, so they are the kernel's.
//
// Graph
//   Every row is a node; its level L >= 0 comes from a hash of (seed, row), so levels do not depend
//   on insertion order or threads. Level 0 keeps up to M0 = 2M neighbours, levels 1..L up to M.
//   Neighbour lists are fixed-size slot runs [count, id_0 .. id_{cap-1}] of uint32: level 0 is one
//   contiguous array (rows x (M0 + 1)); the upper levels of all nodes are one array too, node r's
//   run starting at upper_offset[r] (a prefix sum over levels). Neighbours are chosen with the
//   HNSW heuristic (a candidate is kept unless it is closer to an already kept neighbour than to
//   the new node); full lists are re-pruned with the same heuristic.
//
// Build: node 0 is the first entry point; the others are inserted in parallel on the core's
// thread pool (threads = 0: all cores). One mutex per node guards its neighbour lists (readers
// copy a list under the lock); a global mutex guards the entry point and is held for the whole
// insertion of a node that raises the top level. With threads = 1 the graph is a deterministic
// function of (rows, parameters, seed); with more threads the order of insertions, and so the
// graph, varies from run to run (recall does not, measurably).
//
// Search: greedy descent through the upper levels, then a best-first search of level 0 with a
// candidate list of ef, both on code distances, then the re-rank described above. With an allow bitset (search::AllowBits) disallowed nodes are traversed
// but never enter the result list. If the estimated cost of the traversal at the allowed fraction
// exceeds the cost of scanning the allowed rows (allowed_rows < kFilterExactFactor * ef / s * M0,
// s = allowed fraction) the whole call is answered by an exact scan of the allowed rows instead
// (one query: scored in place with prefetch; several: search::knn over a compact copy, keeping
// their order); its values are exact float32 ones for every kind. The factor (0.5) was measured
// at 100k x 128: a graph step costs ~2x an exact row, and a filtered walk visits ~0.3 * ef / s *
// M0 nodes; at 10% allowed the walk takes ~0.15 ms where the scan took ~2 ms.
// Results: ids (row numbers) best first, ties by smaller id; slots without a hit
// hold id -1 and +inf (L2) / -inf (IP, COSINE).
//
// Serialised image (all integers little-endian; the in-memory layout of a built index is the same
// bytes, so a loaded index reads the caller's buffer in place, e.g. a memory-mapped file):
//
//   offset  size  field
//   0       8     magic "VSHNSW\0\0"
//   8       2     major version (2; readers refuse other majors; 1 had no codes)
//   10      2     minor version (0; readers accept any minor of their major)
//   12      4     header bytes (192)
//   16      8     total bytes of the image
//   24      8     rows
//   32      4     dim
//   36      4     metric (0 L2, 1 IP, 2 COSINE)
//   40      4     M
//   44      4     M0 (= 2M)
//   48      4     ef_construction
//   52      4     max level
//   56      4     entry point (a row number whose level is the max level)
//   60      4     flags: bit 0 = refine (HNSW_SQ only); other bits 0
//   64      8     seed
//   72      8     upper slots (uint32 slots of the upper-level array)
//   80      8     offset of levels        uint8[rows]
//   88      8     offset of upper offsets uint64[rows]  (slot index of node r's level-1 run)
//   96      8     offset of level 0       uint32[rows * (M0 + 1)]
//   104     8     offset of upper links   uint32[upper slots]; node r level l at upper_offset[r] +
//                                         (l - 1) * (M + 1)
//   112     8     offset of inverse norms float32[rows] (COSINE only, else 0)
//   120     4     sq_type (0 plain HNSW, 1 SQ8, 2 FP16, 3 BF16)
//   124     4     code row bytes (sq::code_row_bytes(sq_type, dim))
//   128     8     refine_k, float64 (>= 1; exactly 1 unless refine)
//   136     8     offset of SQ8 parameters float32[2 * dim]: min, then scale (0 for FP16/BF16)
//   144     8     offset of codes         uint8[rows * code row bytes]
//   152     32    reserved (0)
//   184     4     CRC32C of bytes [192, total)
//   188     4     CRC32C of bytes [0, 188)
// Sections start at multiples of 64 bytes, in the order above; gaps are zero. load() recomputes
// every size and offset from the header, checks both checksums, then checks every level, run
// offset, count and neighbour id and the SQ8 parameters (finite, scale >= 0), and returns
// Corruption naming the first problem; a buffer that loads can never make a search read out of
// bounds. Any code byte is a valid code.
//
// Thread-safety: after build()/load() the object is immutable except for an internal pool of
// scratch buffers (mutex-guarded); search() may run from several threads at once. No call touches
// Python; callers release the GIL.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "distance/distance.h"
#include "index/hnsw_sq.h"
#include "search/exact_search.h"

namespace vecstore {
namespace index {

struct HnswParams {
    size_t M = 16;
    size_t ef_construction = 200;
    distance::Metric metric = distance::Metric::kL2;
    uint64_t seed = 0;
    sq::SqType sq_type = sq::SqType::kNone;  // kNone: plain HNSW
    bool refine = false;                     // HNSW_SQ only
    double refine_k = 1.0;                   // >= 1; != 1 only with refine
    // Polled between insertion blocks: once true, build() stops and returns Cancelled (a data
    // node shutting down does not wait for a build that would be thrown away).
    const std::atomic<bool>* cancel = nullptr;
};

// What a search() call did, for tests and benchmarks.
struct HnswSearchStats {
    uint64_t graph_queries = 0;  // queries answered by graph traversal
    uint64_t exact_queries = 0;  // queries answered by an exact scan of the allowed rows
    uint64_t distances = 0;      // distance evaluations of graph traversals
};

class HnswIndex {
  public:
    static constexpr size_t kMinM = 2, kMaxM = 2048;
    static constexpr size_t kMaxRows = 0xFFFFFFFEu;  // ids are uint32
    static constexpr int kMaxLevel = 63;
    static constexpr size_t kHeaderBytes = 192;
    static constexpr uint16_t kMajor = 2, kMinor = 0;
    static constexpr double kMaxRefineK = 1e6;
    // Relative cost of one traversal distance evaluation (random access, heap work) against one
    // row of an exact scan, in the filtered-search cost estimate.
    static constexpr double kFilterExactFactor = 0.5;

    // Builds the graph over `base` (float32, 1 <= rows <= kMaxRows, dim >= 1) for L2, IP or
    // COSINE; M in [kMinM, kMaxM], ef_construction >= 1 (values below M act as M); refine and
    // refine_k != 1 only with an sq_type, refine_k in [1, kMaxRefineK] and != 1 only with refine.
    // InvalidArgument otherwise.
    static Status build(const search::MatrixView& base, const HnswParams& params, int threads,
                        std::unique_ptr<HnswIndex>* out);

    // Opens a serialised image [data, data + size) over `base` (the matrix the index was built
    // from). The image is read in place when `data` is 8-byte aligned (it must then outlive the
    // object and not change), else copied. Corruption for a damaged or inconsistent image,
    // InvalidArgument when base's shape differs from the image's.
    static Status load(const void* data, size_t size, const search::MatrixView& base,
                       std::unique_ptr<HnswIndex>* out);

    // The image's size, and the image itself into dst (exactly serialized_bytes() bytes).
    size_t serialized_bytes() const { return total_bytes_; }
    void serialize(void* dst) const;

    // k results per query into ids_out / values_out (queries x k), searching with a candidate
    // list of max(ef, k) (refine: and of ceil(refine_k * k)). queries: float32 with the index's
    // dim. k >= 1 (k > rows pads). `allow` as in exact_search.h (nullptr: all rows).
    // refine_k: 0 for the index's own, else a value in [1, kMaxRefineK] for this call (refine
    // indexes only; InvalidArgument otherwise). `stats` may be null.
    Status search(const search::MatrixView& queries, size_t k, size_t ef, search::AllowBits allow,
                  int threads, int64_t* ids_out, float* values_out, HnswSearchStats* stats,
                  double refine_k = 0.0) const;

    size_t rows() const { return rows_; }
    size_t dim() const { return dim_; }
    size_t M() const { return M_; }
    size_t ef_construction() const { return ef_construction_; }
    distance::Metric metric() const { return metric_; }
    int max_level() const { return max_level_; }
    uint64_t seed() const { return seed_; }
    sq::SqType sq_type() const { return sq_type_; }
    bool refine() const { return refine_; }
    double refine_k() const { return refine_k_; }

    ~HnswIndex();

  private:
    HnswIndex() = default;
    struct Scratch;
    struct Layout;
    class Builder;
    friend class Builder;

    static Layout layout(size_t rows, size_t dim, size_t M, uint64_t upper_slots, bool norms,
                         sq::SqType sq_type);
    void bind_sections(const uint8_t* image);
    Status validate_graph() const;

    std::unique_ptr<Scratch> acquire_scratch() const;
    void release_scratch(std::unique_ptr<Scratch> s) const;

    // Smaller is closer; q is a query in key space (COSINE: already unit length, q_scale 1; during
    // build a raw row with q_scale = its inverse norm).
    float key(distance::ManyFn fn, const float* q, float q_scale, uint32_t id) const;
    const uint32_t* list0(uint32_t id) const { return links0_ + size_t(id) * (M0_ + 1); }
    const uint32_t* list_upper(uint32_t id, int level) const {
        return upper_ + upper_off_[id] + size_t(level - 1) * (M_ + 1);
    }
    const float* row(uint32_t id) const {
        return reinterpret_cast<const float*>(static_cast<const char*>(base_.data) +
                                              size_t(id) * base_.stride_bytes);
    }
    const uint8_t* code(uint32_t id) const { return codes_ + size_t(id) * code_row_bytes_; }
    // Best-first search of one level from the scratch's entry points; leaves up to ef allowed
    // results in the scratch's result heap. get(id) returns (ids, count) of id's list there,
    // dist(id) the key of row id, prefetch(id) starts loading what dist(id) reads,
    // prefetch_list(id) what get(id) reads.
    template <class Get, class Dist, class Prefetch, class PrefetchList>
    void layer_search(Get&& get, Dist&& dist, Prefetch&& prefetch, PrefetchList&& prefetch_list,
                      size_t ef, search::AllowBits allow, Scratch* s, uint64_t* n_dist) const;
    Status exact_allowed_one(const void* query, size_t k, search::AllowBits allow,
                             int64_t* ids_out, float* values_out) const;
    Status exact_allowed(const search::MatrixView& queries, size_t k, search::AllowBits allow,
                         size_t allowed, int threads, int64_t* ids_out, float* values_out) const;
    // rerank: how many of the best candidates get exact distances (0: none, values from codes).
    void search_one(sq::CodeFn fn, const float* q, size_t k, size_t ef, size_t rerank,
                    search::AllowBits allow, Scratch* s, int64_t* ids, float* vals,
                    uint64_t* distances) const;
    void encode(int threads);

    search::MatrixView base_;
    distance::Metric metric_ = distance::Metric::kL2;
    size_t rows_ = 0, dim_ = 0, M_ = 0, M0_ = 0, ef_construction_ = 0;
    uint64_t seed_ = 0, upper_slots_ = 0;
    int max_level_ = 0;
    uint32_t entry_ = 0;
    size_t total_bytes_ = 0;
    size_t prefetch_bytes_ = 0;  // bytes of a float32 row prefetched ahead of its distance
    sq::SqType sq_type_ = sq::SqType::kNone;
    bool refine_ = false;
    double refine_k_ = 1.0;
    size_t code_row_bytes_ = 0;

    // Sections of the image (owned_ or the caller's buffer).
    const uint8_t* image_ = nullptr;
    const uint8_t* levels_ = nullptr;
    const uint64_t* upper_off_ = nullptr;
    const uint32_t* links0_ = nullptr;
    const uint32_t* upper_ = nullptr;
    const float* inv_norm_ = nullptr;
    const float* sq_min_ = nullptr;    // SQ8 parameters (dim each), null for FP16/BF16
    const float* sq_scale_ = nullptr;
    const uint8_t* codes_ = nullptr;
    std::vector<uint64_t> owned_;  // the image of a built (or copied) index, 8-byte aligned

    mutable std::mutex scratch_mu_;
    mutable std::vector<std::unique_ptr<Scratch>> scratch_pool_;
};

}  // namespace index
}  // namespace vecstore
