// QuantizedFlat (search/quantized_flat.h) over numpy arrays. The object keeps a reference to the
// float32 base array, whose memory the core reads in place (read-only) for as long as it lives.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "python/buffers.h"
#include "python/errors.h"
#include "search/quantized_flat.h"

namespace py = pybind11;

namespace vecstore {
namespace py_glue {
namespace {

class PyQuantizedFlat {
  public:
    PyQuantizedFlat(const py::array& base, const std::string& metric, int threads)
        : base_(base) {
        const search::MatrixView view = float_view(base, "base");
        const distance::Metric m = parse_metric(metric);
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = search::QuantizedFlat::build(view, m, threads, &impl_);
        }
        raise_if_error(s);
    }

    py::tuple search(const py::array& q, size_t k, const py::object& allow, int threads) const {
        const search::MatrixView vq = float_view(q, "queries");
        if (vq.dim != impl_->dim()) {
            raise_invalid("dimension mismatch: queries have " + std::to_string(vq.dim) +
                          " dimensions, the base has " + std::to_string(impl_->dim()));
        }
        if (k == 0 || k > impl_->rows()) {
            raise_invalid("k must be between 1 and the number of base rows (" +
                          std::to_string(impl_->rows()) + ")");
        }
        py::array_t<uint8_t> allow_arr;
        const search::AllowBits bits = allow_bits(allow, impl_->rows(), &allow_arr);
        const auto nq = static_cast<py::ssize_t>(vq.rows), kk = static_cast<py::ssize_t>(k);
        py::array_t<int64_t> ids({nq, kk});
        py::array_t<float> vals({nq, kk});
        int64_t* ids_ptr = ids.mutable_data();
        float* vals_ptr = vals.mutable_data();
        bool nonfinite = false;
        search::QuantizedSearchStats st;
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = impl_->search(vq, k, bits, threads, ids_ptr, vals_ptr, &nonfinite, &st);
        }
        raise_if_error(s);
        py::dict stats;
        stats["two_stage_queries"] = st.two_stage_queries;
        stats["exact_queries"] = st.exact_queries;
        stats["candidates"] = st.candidates;
        return py::make_tuple(ids, vals, nonfinite, stats);
    }

    size_t rows() const { return impl_->rows(); }
    size_t dim() const { return impl_->dim(); }
    size_t memory_bytes() const { return impl_->memory_bytes(); }
    const py::object& base() const { return base_; }

  private:
    py::object base_;  // keeps the viewed memory alive
    std::unique_ptr<search::QuantizedFlat> impl_;
};

}  // namespace

void bind_quantized(py::module_& m) {
    py::class_<PyQuantizedFlat>(m, "QuantizedFlat",
                                "Exact k-NN: int8 scan + float32 re-rank over a float32 matrix "
                                "it references (which must not change).")
        .def(py::init<const py::array&, const std::string&, int>(), py::arg("base"),
             py::arg("metric"), py::arg("threads"))
        .def("search", &PyQuantizedFlat::search, py::arg("queries"), py::arg("k"),
             py::arg("allow"), py::arg("threads"),
             "(ids int64, values float32, nonfinite flag, stats dict), as knn.")
        .def_property_readonly("rows", &PyQuantizedFlat::rows)
        .def_property_readonly("dim", &PyQuantizedFlat::dim)
        .def_property_readonly("memory_bytes", &PyQuantizedFlat::memory_bytes)
        .def_property_readonly("base", &PyQuantizedFlat::base);
}

}  // namespace py_glue
}  // namespace vecstore
