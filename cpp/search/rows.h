// Row helpers shared by the exact-search paths (exact_search.cc, quantized_flat.cc): row
// addressing in a strided matrix, the allow bitset (bit r of byte r / 8, little-endian bit
// order, as numpy.packbits(..., bitorder="little") writes it), and the gemm path's reduction
// chunk, which fixes that path's float32 rounding (QuantizedFlat reproduces it bit for bit).
#pragma once

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "search/exact_search.h"

namespace vecstore {
namespace search {
namespace rows {

constexpr size_t kGemmKc = 256;  // reduction chunk: an mr x kc query slice stays in L1

inline const char* row_ptr(const MatrixView& m, size_t r) {
    return static_cast<const char*>(m.data) + r * m.stride_bytes;
}

inline bool allowed(AllowBits allow, size_t r) {
    return allow == nullptr || ((allow[r >> 3] >> (r & 7)) & 1u);
}

inline bool is_bad(float v) { return !(std::fabs(v) <= FLT_MAX); }

// Calls fn(begin, end) for each maximal run of allowed rows inside [begin, end).
template <class Fn>
void for_each_allowed_run(AllowBits allow, size_t begin, size_t end, Fn&& fn) {
    if (allow == nullptr) {
        fn(begin, end);
        return;
    }
    size_t r = begin;
    while (r < end) {
        // Skip whole zero bytes quickly: selective filters leave most bytes empty.
        if ((r & 7) == 0 && r + 8 <= end && allow[r >> 3] == 0) {
            r += 8;
            continue;
        }
        if (!allowed(allow, r)) {
            ++r;
            continue;
        }
        size_t e = r + 1;
        while (e < end && allowed(allow, e)) ++e;
        fn(r, e);
        r = e;
    }
}

}  // namespace rows
}  // namespace search
}  // namespace vecstore
