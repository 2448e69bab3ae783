// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected), as used by iSCSI, ext4, LevelDB and the
// vecstore WAL and segment formats.
//
// extend() continues a CRC over more bytes: value(ab) == extend(value(a), b). The hardware path
// (SSE4.2 crc32 on x86-64, the CRC32 extension on aarch64) is chosen once at run time; a table-driven
// software path (slicing-by-8) runs everywhere else. Both give identical results.
//
// Masked CRCs (LevelDB's scheme) are what the formats store next to data: computing a CRC over bytes
// that embed CRCs is then still well behaved.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vecstore {
namespace crc32c {

uint32_t extend(uint32_t crc, const void* data, size_t n);
inline uint32_t value(const void* data, size_t n) { return extend(0, data, n); }

// The portable implementation, exposed so tests can compare it with the hardware one.
uint32_t extend_software(uint32_t crc, const void* data, size_t n);

// True when extend() uses a hardware instruction.
bool hardware_accelerated();

constexpr uint32_t kMaskDelta = 0xa282ead8u;

inline uint32_t mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }

inline uint32_t unmask(uint32_t masked) {
    const uint32_t rot = masked - kMaskDelta;
    return (rot >> 17) | (rot << 15);
}

}  // namespace crc32c
}  // namespace vecstore
