#include "common/crc32c.h"

#include <cstring>


#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

namespace vecstore {
namespace crc32c {

#if defined(__x86_64__)
uint32_t extend_sse42(uint32_t crc, const void* data, size_t n);  // crc32c_sse42.cc
#endif
#if defined(__aarch64__)
uint32_t extend_arm(uint32_t crc, const void* data, size_t n);  // crc32c_arm.cc
#endif

namespace {

constexpr uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

struct Tables {
    uint32_t t[8][256];
    Tables() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (kPoly & (0u - (c & 1u)));
            t[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; ++i) {
            for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
        }
    }
};

const Tables& tables() {
    static const Tables tab;
    return tab;
}

using ExtendFn = uint32_t (*)(uint32_t, const void*, size_t);

ExtendFn pick() {
#if defined(__x86_64__)
    // SSE4.2 implies POPCNT on every shipped CPU; cpuid leaf 1 ECX bit 20 is SSE4.2 itself, which
    // cpu_features() does not track separately, so probe it here.
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if ((c >> 20) & 1u) return extend_sse42;
#elif defined(__aarch64__) && defined(__linux__)
    if (getauxval(AT_HWCAP) & HWCAP_CRC32) return extend_arm;
#elif defined(__aarch64__) && defined(__APPLE__)
    return extend_arm;  // every Apple arm64 CPU has the CRC32 extension
#endif
    return extend_software;
}

ExtendFn active() {
    static const ExtendFn fn = pick();
    return fn;
}

}  // namespace

uint32_t extend_software(uint32_t crc, const void* data, size_t n) {
    const Tables& tab = tables();
    const auto* p = static_cast<const unsigned char*>(data);
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + 4, 4);
        lo ^= c;  // little-endian hosts only (all supported targets)
        c = tab.t[7][lo & 0xff] ^ tab.t[6][(lo >> 8) & 0xff] ^ tab.t[5][(lo >> 16) & 0xff] ^
            tab.t[4][lo >> 24] ^ tab.t[3][hi & 0xff] ^ tab.t[2][(hi >> 8) & 0xff] ^
            tab.t[1][(hi >> 16) & 0xff] ^ tab.t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) c = (c >> 8) ^ tab.t[0][(c ^ *p++) & 0xff];
    return ~c;
}

uint32_t extend(uint32_t crc, const void* data, size_t n) { return active()(crc, data, n); }

bool hardware_accelerated() { return active() != extend_software; }

}  // namespace crc32c
}  // namespace vecstore
