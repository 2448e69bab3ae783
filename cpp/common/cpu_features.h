// What the CPU this process runs on can execute, probed once.
//
// x86-64: cpuid plus xgetbv (an instruction set counts only if the OS saves its registers).
// aarch64: NEON (Advanced SIMD) is architectural, always present.
// Thread-safe: the probe runs once (C++11 static initialisation) and is immutable after.
#pragma once

namespace vecstore {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool popcnt = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512dq = false;
    bool avx512vnni = false;
    bool avx512bf16 = false;
    bool avx512fp16 = false;
    bool avx512vpopcntdq = false;
    bool amx_tile = false;
    bool amx_int8 = false;
    bool amx_bf16 = false;
    bool neon = false;
};

const CpuFeatures& cpu_features();

}  // namespace vecstore
