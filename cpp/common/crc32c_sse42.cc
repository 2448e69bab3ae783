// CRC32C with the SSE4.2 crc32 instruction; compiled with -msse4.2 and called only when the CPU
// reports SSE4.2 (crc32c.cc). One stream of 8-byte steps measured 6.6 GB/s here (bench/RESULTS.md),
// far above the disk's ~0.4 GB/s; three interleaved streams could hide the instruction's latency
// if checksums ever become the bottleneck.
#include <nmmintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vecstore {
namespace crc32c {

uint32_t extend_sse42(uint32_t crc, const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = static_cast<uint32_t>(c);
    while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

}  // namespace crc32c
}  // namespace vecstore
