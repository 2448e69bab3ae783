// CRC32C with the ARMv8 CRC32 extension; compiled with +crc and called only when the CPU has it.
#include <arm_acle.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vecstore {
namespace crc32c {

uint32_t extend_arm(uint32_t crc, const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    uint32_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c = __crc32cd(c, v);
        p += 8;
        n -= 8;
    }
    while (n-- > 0) c = __crc32cb(c, *p++);
    return ~c;
}

}  // namespace crc32c
}  // namespace vecstore
