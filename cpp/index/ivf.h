// IVF indexes (IVF_FLAT, IVF_SQ8, IVF_PQ) over an immutable float32 matrix.
//
// Structure
//   A coarse quantiser of `nlist` centroids (index/kmeans.h, trained on at most 256 * nlist rows)
//   splits the rows into inverted lists; a query scans the lists of its `nprobe` closest
//   centroids. Coarse metric: L2 for L2, IP for IP, COSINE (against unit-norm centroids, trained
//   on normalised rows) for COSINE.
//     IVF_FLAT  lists hold a copy of their rows' float32 vectors (dim * 4 bytes per row, in list
//               order, so that a probe streams one contiguous block); each list is scored with
//               the active ManyFn kernel, so reported values equal search::knn's scan path.
//     IVF_SQ8   lists also hold dim uint8 codes per row: per-dimension min/step trained on the
//               sample, decoded value min + (code + 0.5) * step (COSINE encodes the unit vector).
//     IVF_PQ    lists hold m uint8 codes per row: the residual (row - its centroid; COSINE: unit
//               row - centroid) is split into m sub-vectors of dim / m, each coded by the nearest
//               of 256 codewords trained per sub-space (k-means on at most 65,536 residuals).
//               Search uses a per-query lookup table (ADC); for L2 the list-dependent part
//               |r|^2 + 2 <c, r> is precomputed per (list, sub-space, code) at build/load.
//   With re-ranking (SQ8/PQ, on by default for PQ), the best rerank_factor * k approximate
//   candidates are re-scored with the exact kernel, so reported values equal the exact ones.
//
// Values are Milvus's (L2 squared distance, IP inner product, COSINE similarity); without
// re-ranking SQ8/PQ report the approximation. Missing slots: id -1, value +inf (L2) / -inf.
//
// Serialised layout (version 2.0, little-endian; every section starts 64-byte aligned):
//   0   char[8] magic "VSIVF\0\0\1"
//   8   u16 major (2), u16 minor (0)   readers refuse another major (Corruption naming both
//                                      versions; version 1 images, whose IVF_FLAT lists held
//                                      ids only, must be rebuilt), accept any minor
//   12  u32 kind (0 FLAT, 1 SQ8, 2 PQ)   16 u32 metric (0 L2, 1 IP, 2 COSINE)
//   20  u32 dim   24 u32 nlist   28 u32 pq_m (0 unless PQ)   32 u32 nbits (8)
//   36  u32 code_size (bytes per row in the lists: 4 * dim FLAT, dim SQ8, pq_m PQ)
//   40  u64 rows   48 u64 total_size (whole buffer, trailer included)
//   56  u32 crc32c of bytes [0, 56)   60 u32 zero
//   64  centroids  f32[nlist * dim]
//       offsets    u64[nlist + 1]   list l holds positions [offsets[l], offsets[l+1]);
//                                   offsets[0] = 0, non-decreasing, offsets[nlist] = rows
//       ids        i64[rows]        row ids, list by list, ascending within a list, < rows
//       codes      u8[rows * code_size]   row-aligned with ids (FLAT: the f32 rows themselves)
//       params     f32[2 * dim] SQ8 (min, step)  |  f32[pq_m * 256 * dim / pq_m] PQ codebooks
//   total_size - 4: u32 crc32c of bytes [64, total_size - 4)
// load() checks every field, size, offset and id, and both checksums, before use (Corruption on
// any mismatch). It views the caller's buffer without copying when it is 8-byte aligned.
//
// Ownership and thread-safety: the index keeps a view of the float32 matrix (the caller keeps it
// alive and unchanged; SQ8/PQ re-ranking reads it, IVF_FLAT searches only its own copy) and,
// after load(), of the buffer. search() is const and may run from
// several threads at once. No call touches Python; callers release the GIL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "distance/distance.h"
#include "search/exact_search.h"

namespace vecstore {
namespace index {

enum class IvfKind : uint32_t { kFlat = 0, kSq8 = 1, kPq = 2 };

constexpr size_t kIvfMaxNlist = 65536;
constexpr size_t kIvfHeaderBytes = 64;
constexpr size_t kPqCodewords = 256;  // nbits = 8

struct IvfBuildParams {
    IvfKind kind = IvfKind::kFlat;
    distance::Metric metric = distance::Metric::kL2;
    size_t nlist = 128;
    size_t pq_m = 0;  // PQ only: sub-quantisers, dividing dim
    size_t nbits = 8;
    uint64_t seed = 0;
    int niter = 10;   // Lloyd iterations (coarse and PQ)
    int threads = 0;
};

struct IvfSearchParams {
    size_t k = 10;
    size_t nprobe = 8;
    search::AllowBits allow = nullptr;  // as in exact_search.h; nullptr = all rows
    int threads = 0;
    bool rerank = false;        // SQ8/PQ: re-score candidates exactly (ignored by FLAT)
    size_t rerank_factor = 16;   // candidates = rerank_factor * k
};

class IvfIndex {
  public:
    // Trains and fills the index over `base` (float32, finite). InvalidArgument for bad params:
    // nlist outside [1, min(65536, rows)], nbits != 8, PQ with dim % pq_m != 0 or fewer than
    // 256 rows, a metric other than L2/IP/COSINE.
    static Status build(const search::MatrixView& base, const IvfBuildParams& params,
                        std::unique_ptr<IvfIndex>* out);

    // Opens a serialised index over `base` (which must have the rows and dim it was built on).
    // `data` must stay alive and unchanged while the index lives (it is viewed, not copied, when
    // 8-byte aligned). Corruption for any malformed buffer; InvalidArgument for a base mismatch.
    static Status load(const uint8_t* data, size_t size, const search::MatrixView& base,
                       std::unique_ptr<IvfIndex>* out);

    // For each query the k best allowed rows, best first (ids_out, values_out: nq x k).
    // 1 <= k, 1 <= nprobe <= nlist, queries float32 with the index's dim.
    Status search(const search::MatrixView& queries, const IvfSearchParams& params,
                  int64_t* ids_out, float* values_out) const;

    // The serialised form (total_size bytes).
    const uint8_t* bytes() const { return bytes_; }
    size_t byte_size() const { return size_; }

    IvfKind kind() const { return kind_; }
    distance::Metric metric() const { return metric_; }
    size_t dim() const { return dim_; }
    size_t rows() const { return rows_; }
    size_t nlist() const { return nlist_; }
    size_t pq_m() const { return pq_m_; }
    const float* centroids() const { return centroids_; }
    const uint64_t* list_offsets() const { return offsets_; }
    const int64_t* list_ids() const { return ids_; }
    // Bytes the index holds beyond the caller's matrix (its serialised form, owned or viewed,
    // plus the PQ table).
    size_t memory_bytes() const {
        return size_ + (pq_table_.size() + pq_books_t_.size()) * sizeof(float);
    }

  private:
    IvfIndex() = default;
    struct Layout;
    static Layout layout_for(IvfKind kind, size_t dim, size_t nlist, size_t pq_m, size_t rows);
    void bind_sections(const uint8_t* data);  // sets the section pointers from the header fields
    void precompute_pq_table(int threads);
    struct Scratch;
    void search_one(const float* q, const int64_t* probes, const float* coarse,
                    const IvfSearchParams& p, Scratch& s, int64_t* ids, float* vals) const;

    search::MatrixView base_;
    IvfKind kind_ = IvfKind::kFlat;
    distance::Metric metric_ = distance::Metric::kL2;
    size_t dim_ = 0, rows_ = 0, nlist_ = 0, pq_m_ = 0, code_size_ = 0;

    std::vector<uint8_t> owned_;  // the serialised form when built or copied on load
    const uint8_t* bytes_ = nullptr;
    size_t size_ = 0;
    const float* centroids_ = nullptr;
    const uint64_t* offsets_ = nullptr;
    const int64_t* ids_ = nullptr;
    const uint8_t* codes_ = nullptr;
    const float* params_ = nullptr;
    // L2 PQ: pq_table_[(l * pq_m + j) * 256 + c] = |w_jc|^2 + 2 <centroid_l[j], w_jc>.
    std::vector<float> pq_table_;
    // PQ: codebooks transposed, pq_books_t_[(j * dsub + d) * 256 + c] = w_jc[d] (for the LUT).
    std::vector<float> pq_books_t_;
};

}  // namespace index
}  // namespace vecstore
