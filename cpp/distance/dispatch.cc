// Runtime SIMD dispatch: builds one KernelTable per level this CPU and build support, picks the best
// at start-up (or what VECSTORE_SIMD names, applied from Python), and lets callers switch it.
#include <atomic>
#include <cstring>

#include "common/cpu_features.h"
#include "distance/distance.h"

namespace vecstore {
namespace distance {
namespace {

#define VS_FILL_TABLE(t, isa, MR, NR)                                            \
    do {                                                                          \
        t.many[0][0] = l2sq_f32_##isa;                                            \
        t.many[0][1] = ip_f32_##isa;                                              \
        t.many[0][2] = cos_f32_##isa;                                             \
        t.many[1][0] = l2sq_f16_##isa;                                            \
        t.many[1][1] = ip_f16_##isa;                                              \
        t.many[1][2] = cos_f16_##isa;                                             \
        t.many[2][0] = l2sq_bf16_##isa;                                           \
        t.many[2][1] = ip_bf16_##isa;                                             \
        t.many[2][2] = cos_bf16_##isa;                                            \
        t.many[3][0] = l2sq_i8_##isa;                                             \
        t.many[3][1] = ip_i8_##isa;                                               \
        t.many[3][2] = cos_i8_##isa;                                              \
        t.many[4][3] = hamming_b1_##isa;                                          \
        t.many[4][4] = jaccard_b1_##isa;                                          \
        t.to_f32[1] = to_f32_f16_##isa;                                           \
        t.to_f32[2] = to_f32_bf16_##isa;                                          \
        t.to_f32[3] = to_f32_i8_##isa;                                            \
        t.dot_tile = dot_tile_f32_##isa;                                          \
        t.max_mr = MR;                                                            \
        t.nr = NR;                                                                \
    } while (0)

void copy_f32(const void* src, size_t dim, float* dst) { std::memcpy(dst, src, dim * sizeof(float)); }

struct Tables {
    KernelTable serial, avx2, avx512, neon;
    bool has_avx2 = false, has_avx512 = false, has_neon = false;

    Tables() {
        const CpuFeatures& f = cpu_features();
        serial.level = SimdLevel::kSerial;
        VS_FILL_TABLE(serial, serial, kSerialMr, kSerialNr);
        serial.to_f32[0] = copy_f32;
        serial.dot_u8i8 = dot_u8i8_serial;
#if defined(VECSTORE_HAVE_X86_KERNELS)
        has_avx2 = f.avx2 && f.fma && f.f16c && f.popcnt;
        if (has_avx2) {
            avx2.level = SimdLevel::kAvx2;
            VS_FILL_TABLE(avx2, avx2, kAvx2Mr, kAvx2Nr);
            avx2.to_f32[0] = copy_f32;
            avx2.dot_u8i8 = dot_u8i8_avx2;
        }
        has_avx512 = has_avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
        if (has_avx512) {
            avx512.level = SimdLevel::kAvx512;
            VS_FILL_TABLE(avx512, avx512, kAvx512Mr, kAvx512Nr);
            avx512.to_f32[0] = copy_f32;
            avx512.dot_u8i8 = dot_u8i8_avx2;
            // Extensions replace single kernels; the names of those in use are reported.
            static char features[96] = "";
            if (f.avx512vnni) {
                avx512.many[3][0] = l2sq_i8_avx512vnni;
                avx512.many[3][1] = ip_i8_avx512vnni;
                avx512.many[3][2] = cos_i8_avx512vnni;
                std::strcat(features, "avx512_vnni,");
            }
            if (f.avx512bf16) {
                avx512.many[2][1] = ip_bf16_avx512bf16;
                std::strcat(features, "avx512_bf16,");
            }
            if (f.avx512vpopcntdq) {
                avx512.many[4][3] = hamming_b1_avx512popcnt;
                avx512.many[4][4] = jaccard_b1_avx512popcnt;
                std::strcat(features, "avx512_vpopcntdq,");
            }
            const size_t len = std::strlen(features);
            if (len > 0) features[len - 1] = '\0';
            avx512.features = features;
        }
#endif
#if defined(VECSTORE_HAVE_NEON_KERNELS)
        has_neon = f.neon;
        if (has_neon) {
            neon.level = SimdLevel::kNeon;
            VS_FILL_TABLE(neon, neon, kNeonMr, kNeonNr);
            neon.to_f32[0] = copy_f32;
            neon.dot_u8i8 = dot_u8i8_serial;
        }
#endif
        (void)f;
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

std::atomic<const KernelTable*>& active_ptr() {
    static std::atomic<const KernelTable*> ptr{table_for(best_level())};
    return ptr;
}

}  // namespace

const KernelTable* table_for(SimdLevel level) {
    const Tables& t = tables();
    switch (level) {
        case SimdLevel::kSerial: return &t.serial;
        case SimdLevel::kAvx2: return t.has_avx2 ? &t.avx2 : nullptr;
        case SimdLevel::kAvx512: return t.has_avx512 ? &t.avx512 : nullptr;
        case SimdLevel::kNeon: return t.has_neon ? &t.neon : nullptr;
    }
    return nullptr;
}

SimdLevel best_level() {
    const Tables& t = tables();
    if (t.has_avx512) return SimdLevel::kAvx512;
    if (t.has_avx2) return SimdLevel::kAvx2;
    if (t.has_neon) return SimdLevel::kNeon;
    return SimdLevel::kSerial;
}

const KernelTable& active() { return *active_ptr().load(std::memory_order_acquire); }

bool set_level(SimdLevel level) {
    const KernelTable* t = table_for(level);
    if (t == nullptr) return false;
    active_ptr().store(t, std::memory_order_release);
    return true;
}

const char* level_name(SimdLevel level) {
    switch (level) {
        case SimdLevel::kSerial: return "serial";
        case SimdLevel::kAvx2: return "avx2";
        case SimdLevel::kAvx512: return "avx512";
        case SimdLevel::kNeon: return "neon";
    }
    return "unknown";
}

bool parse_level(const char* name, SimdLevel* out) {
    const SimdLevel all[] = {SimdLevel::kSerial, SimdLevel::kAvx2, SimdLevel::kAvx512,
                             SimdLevel::kNeon};
    for (SimdLevel l : all) {
        if (std::strcmp(name, level_name(l)) == 0) {
            *out = l;
            return true;
        }
    }
    return false;
}

}  // namespace distance
}  // namespace vecstore
