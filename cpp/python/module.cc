// vecstore._core: the native core's Python module. Glue only: argument conversion, GIL release,
// Status -> exception. Everything it exposes is re-exported, validated, from vecstore/*.py.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace vecstore {
namespace py_glue {
void bind_distance(py::module_& m);
void bind_search(py::module_& m);
void bind_quantized(py::module_& m);
void bind_ivf(py::module_& m);
void bind_bin_ivf(py::module_& m);
void bind_hnsw(py::module_& m);
void bind_checksum(py::module_& m);
void bind_memory(py::module_& m);
void bind_wal(py::module_& m);
}  // namespace py_glue
}  // namespace vecstore

PYBIND11_MODULE(_core, m) {
    m.doc() = "vecstore native core (distance kernels, exact search, IVF and HNSW indexes, checksums, WAL)";
    vecstore::py_glue::bind_distance(m);
    vecstore::py_glue::bind_search(m);
    vecstore::py_glue::bind_quantized(m);
    vecstore::py_glue::bind_ivf(m);
    vecstore::py_glue::bind_bin_ivf(m);
    vecstore::py_glue::bind_hnsw(m);
    vecstore::py_glue::bind_checksum(m);
    vecstore::py_glue::bind_memory(m);
    vecstore::py_glue::bind_wal(m);
}
