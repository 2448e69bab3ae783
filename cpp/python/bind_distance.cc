// SIMD level control and CPU feature reporting.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "distance/distance.h"
#include "python/errors.h"

namespace py = pybind11;

namespace vecstore {
namespace py_glue {

void bind_distance(py::module_& m) {
    m.def("simd_level", [] { return std::string(distance::level_name(distance::active().level)); },
          "The SIMD level the kernels use now: 'serial', 'avx2', 'avx512' or 'neon'.");
    m.def("simd_features", [] { return std::string(distance::active().features); },
          "Comma-separated extension kernels in use on top of the level (e.g. 'avx512_vnni').");
    m.def("best_simd_level", [] { return std::string(distance::level_name(distance::best_level())); });
    m.def(
        "available_simd_levels",
        [] {
            std::vector<std::string> out;
            for (auto l : {distance::SimdLevel::kSerial, distance::SimdLevel::kAvx2,
                           distance::SimdLevel::kAvx512, distance::SimdLevel::kNeon}) {
                if (distance::table_for(l) != nullptr) out.emplace_back(distance::level_name(l));
            }
            return out;
        },
        "Levels this CPU and build support, lowest first.");
    m.def(
        "set_simd_level",
        [](const std::string& name) {
            distance::SimdLevel level;
            if (!distance::parse_level(name.c_str(), &level)) {
                raise_invalid("unknown SIMD level '" + name +
                              "'; expected one of serial, avx2, avx512, neon");
            }
            if (!distance::set_level(level)) {
                raise_invalid("SIMD level '" + name +
                              "' is not available on this CPU; see vecstore._core.available_simd_levels()");
            }
        },
        py::arg("level"), "Switches every kernel to `level` for the whole process.");
    m.def("cpu_features", [] {
        const CpuFeatures& f = cpu_features();
        py::dict d;
        d["avx2"] = f.avx2;
        d["fma"] = f.fma;
        d["f16c"] = f.f16c;
        d["popcnt"] = f.popcnt;
        d["avx512f"] = f.avx512f;
        d["avx512bw"] = f.avx512bw;
        d["avx512vl"] = f.avx512vl;
        d["avx512dq"] = f.avx512dq;
        d["avx512vnni"] = f.avx512vnni;
        d["avx512bf16"] = f.avx512bf16;
        d["avx512fp16"] = f.avx512fp16;
        d["avx512vpopcntdq"] = f.avx512vpopcntdq;
        d["amx_tile"] = f.amx_tile;
        d["amx_int8"] = f.amx_int8;
        d["amx_bf16"] = f.amx_bf16;
        d["neon"] = f.neon;
        return d;
    });
}

}  // namespace py_glue
}  // namespace vecstore
