#include "common/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <cstdint>
#endif

namespace vecstore {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
uint64_t read_xcr0() {
    uint32_t eax = 0, edx = 0;
    // xgetbv is only legal when the OS set CR4.OSXSAVE, which the caller checks first.
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures probe() {
    CpuFeatures f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = (c >> 27) & 1;
    f.fma = (c >> 12) & 1;
    f.popcnt = (c >> 23) & 1;
    f.f16c = (c >> 29) & 1;
    const bool avx = (c >> 28) & 1;
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool ymm_ok = (xcr0 & 0x6) == 0x6;     // SSE + AVX state
    const bool zmm_ok = (xcr0 & 0xe6) == 0xe6;   // + opmask, ZMM_Hi256, Hi16_ZMM
    const bool amx_ok = (xcr0 & 0x60000) == 0x60000;  // XTILECFG + XTILEDATA
    if (!ymm_ok) {
        f.fma = f.f16c = false;
        return f;
    }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = (b >> 5) & 1;
        if (zmm_ok) {
            f.avx512f = (b >> 16) & 1;
            f.avx512dq = (b >> 17) & 1;
            f.avx512bw = (b >> 30) & 1;
            f.avx512vl = (b >> 31) & 1;
            f.avx512vnni = (c >> 11) & 1;
            f.avx512vpopcntdq = (c >> 14) & 1;
            f.avx512fp16 = (d >> 23) & 1;
        }
        if (amx_ok) {
            f.amx_bf16 = (d >> 22) & 1;
            f.amx_tile = (d >> 24) & 1;
            f.amx_int8 = (d >> 25) & 1;
        }
    }
    if (zmm_ok && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = (a >> 5) & 1;
    return f;
}
#else
CpuFeatures probe() {
    CpuFeatures f;
#if defined(__aarch64__) || defined(_M_ARM64)
    f.neon = true;
#endif
    return f;
}
#endif

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = probe();
    return features;
}

}  // namespace vecstore
