// CRC32C over any bytes-like object (bytes, memoryview, numpy array, mmap), without copying.
#include <pybind11/pybind11.h>

#include "common/crc32c.h"

namespace py = pybind11;

namespace vecstore {
namespace py_glue {

void bind_checksum(py::module_& m) {
    m.def(
        "crc32c",
        [](const py::buffer& data, uint32_t crc) {
            const py::buffer_info info = data.request();  // contiguous view, any format
            if (!PyBuffer_IsContiguous(info.view(), 'C')) {
                throw py::value_error("crc32c needs a C-contiguous buffer");
            }
            const size_t n = static_cast<size_t>(info.size * info.itemsize);
            const void* ptr = info.ptr;
            uint32_t out;
            {
                py::gil_scoped_release nogil;
                out = crc32c::extend(crc, ptr, n);
            }
            return out;
        },
        py::arg("data"), py::arg("crc") = 0,
        "CRC32C of data, continuing from crc (crc32c(b, crc32c(a)) == crc32c(a + b)).");
    m.def("crc32c_hardware", &crc32c::hardware_accelerated,
          "True when CRC32C runs on a CPU instruction (SSE4.2 or ARMv8 CRC32).");
}

}  // namespace py_glue
}  // namespace vecstore
