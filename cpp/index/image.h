// Byte-level access to serialised index images (HNSW, IVF): unaligned little-endian field reads
// and writes at byte offsets (memcpy, so any alignment is safe) and the 64-byte section
// alignment both image formats use (see the layout tables in hnsw.h and ivf.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vecstore {
namespace index {
namespace image {

inline uint64_t align64(uint64_t x) { return (x + 63) & ~uint64_t{63}; }

template <class T>
void put(uint8_t* p, size_t off, T v) {
    std::memcpy(p + off, &v, sizeof(T));
}

template <class T>
T get(const uint8_t* p, size_t off) {
    T v;
    std::memcpy(&v, p + off, sizeof(T));
    return v;
}

}  // namespace image
}  // namespace index
}  // namespace vecstore
