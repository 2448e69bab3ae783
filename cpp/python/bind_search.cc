// cdist and knn over numpy arrays: views without copies, GIL released for the whole computation.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common/thread_pool.h"
#include "python/buffers.h"
#include "python/errors.h"
#include "search/exact_search.h"

namespace py = pybind11;

namespace vecstore {
namespace py_glue {
namespace {

void check_same_dim(const search::MatrixView& a, const search::MatrixView& b) {
    if (a.dim != b.dim) {
        raise_invalid("dimension mismatch: queries have " + std::to_string(a.dim) +
                      " dimensions, the base has " + std::to_string(b.dim));
    }
    if (a.dim == 0) raise_invalid("vectors must have at least one dimension");
}

void check_metric(distance::DType t, distance::Metric m) {
    const bool binary_metric = m == distance::Metric::kHamming || m == distance::Metric::kJaccard;
    if ((t == distance::DType::kBinary) != binary_metric) {
        raise_invalid(t == distance::DType::kBinary
                          ? "binary vectors support HAMMING and JACCARD only"
                          : "HAMMING and JACCARD need binary (packed uint8) vectors");
    }
}

py::tuple cdist(const py::array& a, const py::array& b, const std::string& dtype,
                const std::string& metric, int threads) {
    const distance::DType t = parse_dtype(dtype);
    const distance::Metric m = parse_metric(metric);
    check_metric(t, m);
    const search::MatrixView va = matrix_view(a, t, "a"), vb = matrix_view(b, t, "b");
    check_same_dim(va, vb);
    py::array_t<float> out({static_cast<py::ssize_t>(va.rows), static_cast<py::ssize_t>(vb.rows)});
    float* dst = out.mutable_data();
    bool nonfinite = false;
    Status s;
    {
        py::gil_scoped_release nogil;  // no py:: objects below this line
        s = search::cdist(va, vb, m, threads, dst, &nonfinite);
    }
    raise_if_error(s);
    return py::make_tuple(out, nonfinite);
}

py::tuple knn(const py::array& q, const py::array& x, const std::string& dtype,
              const std::string& metric, size_t k, const py::object& allow, int threads) {
    const distance::DType t = parse_dtype(dtype);
    const distance::Metric m = parse_metric(metric);
    check_metric(t, m);
    const search::MatrixView vq = matrix_view(q, t, "queries"), vx = matrix_view(x, t, "base");
    check_same_dim(vq, vx);
    if (k == 0 || k > vx.rows) {
        raise_invalid("k must be between 1 and the number of base rows (" +
                      std::to_string(vx.rows) + ")");
    }
    py::array_t<uint8_t> allow_arr;
    const search::AllowBits bits = allow_bits(allow, vx.rows, &allow_arr);
    py::array_t<int64_t> ids({static_cast<py::ssize_t>(vq.rows), static_cast<py::ssize_t>(k)});
    py::array_t<float> vals({static_cast<py::ssize_t>(vq.rows), static_cast<py::ssize_t>(k)});
    int64_t* ids_ptr = ids.mutable_data();
    float* vals_ptr = vals.mutable_data();
    bool nonfinite = false;
    Status s;
    {
        py::gil_scoped_release nogil;  // no py:: objects below this line
        s = search::knn(vq, vx, k, m, bits, threads, ids_ptr, vals_ptr, &nonfinite);
    }
    raise_if_error(s);
    return py::make_tuple(ids, vals, nonfinite);
}

}  // namespace

void bind_search(py::module_& m) {
    m.def("cdist", &cdist, py::arg("a"), py::arg("b"), py::arg("dtype"), py::arg("metric"),
          py::arg("threads"),
          "Distance matrix (float32, a.rows x b.rows) and a flag set when any value is non-finite.");
    m.def("knn", &knn, py::arg("queries"), py::arg("base"), py::arg("dtype"), py::arg("metric"),
          py::arg("k"), py::arg("allow"), py::arg("threads"),
          "(ids int64, values float32, nonfinite flag) of the k closest allowed base rows per query.");
    m.def("hardware_threads", &ThreadPool::hardware_threads,
          "Threads that threads=0 uses: the machine's hardware threads.");
}

}  // namespace py_glue
}  // namespace vecstore
