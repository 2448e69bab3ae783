// BIN_IVF_FLAT: an inverted-file index over packed binary vectors (Milvus's index type for
// BINARY_VECTOR fields), metrics HAMMING and JACCARD.
//
// Structure
//   `nlist` binary centroids split the rows into inverted lists; a query scans the lists of its
//   `nprobe` closest centroids. Training is binary k-means on at most 256 * nlist rows (seeded
//   sample): initial centroids are distinct sample rows, then `niter` Lloyd rounds that assign
//   each row to its closest centroid under the index's metric (the popcount ManyFn kernels) and
//   set each centroid bit to the majority bit of its members (ties to 0; the majority minimises
//   the summed Hamming distance exactly). An empty cluster takes a sample row from a cluster of
//   two or more. Rows, centroids and queries are compared with the same metric, so list
//   assignment and probing agree; ties go to the smaller centroid id.
//   The lists hold the packed rows themselves in list order, so a probe streams contiguous
//   memory and the index needs no base matrix after the build.
//
// Values are Milvus's and equal search::knn's for the same pair (same kernels): HAMMING the
// number of differing bits (as float), JACCARD 1 - |a & b| / |a | b| (0 for two empty vectors).
// Smaller is closer; equal values list the smaller row id first; missing slots: id -1, +inf.
// nprobe == nlist scans every row, so results equal exact knn.
//
// Serialised layout (version 1.0, little-endian; every section starts 64-byte aligned):
//   0   char[8] magic "VSBIVF\0\1"
//   8   u16 major (1), u16 minor (0)   readers refuse another major, accept any minor
//   12  u32 metric (3 HAMMING, 4 JACCARD; distance::Metric's values)
//   16  u32 dim (bits, a multiple of 8, 8..65536*8)   20 u32 nlist
//   24  u64 rows   32 u64 total_size (whole buffer, trailer included)
//   40  u8[16] zero   56 u32 crc32c of bytes [0, 56)   60 u32 zero
//   64  centroids  u8[nlist * dim / 8]
//       offsets    u64[nlist + 1]   list l holds positions [offsets[l], offsets[l+1]);
//                                   offsets[0] = 0, non-decreasing, offsets[nlist] = rows
//       ids        i64[rows]        row ids, list by list, ascending within a list, < rows
//       codes      u8[rows * dim / 8]   the packed rows, aligned with ids
//   total_size - 4: u32 crc32c of bytes [64, total_size - 4)
// load() checks every field, size, offset and id and both checksums before use (Corruption on
// any mismatch). It views the caller's buffer without copying when it is 8-byte aligned.
//
// Ownership and thread-safety: the index owns (build) or views (load: the caller keeps the
// buffer alive and unchanged) its image; it keeps no reference to the build's input. search()
// is const and may run from several threads at once. No call touches Python.
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

constexpr size_t kBinIvfMaxNlist = 65536;
constexpr size_t kBinIvfMaxBytes = 65536;  // bytes per vector (524,288 bits)

struct BinIvfBuildParams {
    distance::Metric metric = distance::Metric::kHamming;
    size_t nlist = 128;
    uint64_t seed = 0;
    int niter = 10;
    int threads = 0;
};

struct BinIvfSearchParams {
    size_t k = 10;
    size_t nprobe = 8;
    search::AllowBits allow = nullptr;  // as in exact_search.h; nullptr = all rows
    int threads = 0;
};

class BinIvfIndex {
  public:
    // Trains and fills the index over `base` (DType::kBinary, dim bits). InvalidArgument for a
    // non-binary base, a metric other than HAMMING/JACCARD, nlist outside [1, min(65536, rows)].
    static Status build(const search::MatrixView& base, const BinIvfBuildParams& params,
                        std::unique_ptr<BinIvfIndex>* out);

    // Opens a serialised index. `data` must stay alive and unchanged while the index lives.
    static Status load(const uint8_t* data, size_t size, std::unique_ptr<BinIvfIndex>* out);

    // For each query (binary, the index's dim) the k best allowed rows, best first
    // (ids_out, values_out: nq x k). 1 <= k, 1 <= nprobe <= nlist.
    Status search(const search::MatrixView& queries, const BinIvfSearchParams& params,
                  int64_t* ids_out, float* values_out) const;

    const uint8_t* bytes() const { return bytes_; }
    size_t byte_size() const { return size_; }
    distance::Metric metric() const { return metric_; }
    size_t dim() const { return dim_; }
    size_t code_size() const { return code_size_; }
    size_t rows() const { return rows_; }
    size_t nlist() const { return nlist_; }
    const uint8_t* centroids() const { return centroids_; }
    const uint64_t* list_offsets() const { return offsets_; }
    size_t memory_bytes() const { return size_; }

  private:
    BinIvfIndex() = default;
    struct Layout;
    static Layout layout_for(size_t code_size, size_t nlist, size_t rows);
    void bind_sections(const uint8_t* data);
    void search_one(const uint8_t* q, const BinIvfSearchParams& p, std::vector<float>& dist,
                    std::vector<int64_t>& order, int64_t* ids, float* vals) const;

    distance::Metric metric_ = distance::Metric::kHamming;
    size_t dim_ = 0, code_size_ = 0, rows_ = 0, nlist_ = 0;
    std::vector<uint8_t> owned_;  // the image when built, or copied on a misaligned load
    const uint8_t* bytes_ = nullptr;
    size_t size_ = 0;
    const uint8_t* centroids_ = nullptr;
    const uint64_t* offsets_ = nullptr;
    const int64_t* ids_ = nullptr;
    const uint8_t* codes_ = nullptr;
};

}  // namespace index
}  // namespace vecstore
