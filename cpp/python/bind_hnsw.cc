// HnswIndex (index/hnsw.h) over numpy arrays and buffers. The object keeps a reference to the
// float32 base array (read in place, read-only) and, when loaded, to the buffer it was loaded from
// (read in place when 8-byte aligned), for as long as it lives.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <memory>
#include <string>

#include "index/hnsw.h"
#include "python/buffers.h"
#include "python/errors.h"

namespace py = pybind11;

namespace vecstore {
namespace py_glue {
namespace {

const char* metric_name(distance::Metric m) {
    switch (m) {
        case distance::Metric::kL2: return "L2";
        case distance::Metric::kIP: return "IP";
        default: return "COSINE";
    }
}

// Milvus's sq_type names; "" is plain HNSW.
index::sq::SqType parse_sq_type(const std::string& name) {
    if (name.empty()) return index::sq::SqType::kNone;
    if (name == "SQ8") return index::sq::SqType::kSQ8;
    if (name == "FP16") return index::sq::SqType::kFP16;
    if (name == "BF16") return index::sq::SqType::kBF16;
    raise_invalid("sq_type must be one of SQ8, FP16, BF16, got " + name);
    return index::sq::SqType::kNone;
}

const char* sq_type_name(index::sq::SqType t) {
    switch (t) {
        case index::sq::SqType::kSQ8: return "SQ8";
        case index::sq::SqType::kFP16: return "FP16";
        case index::sq::SqType::kBF16: return "BF16";
        default: return "";
    }
}

// A flag a Python thread sets to stop a build running (GIL released) in another thread.
struct CancelFlag {
    std::atomic<bool> flag{false};
};

class PyHnswIndex {
  public:
    static std::unique_ptr<PyHnswIndex> build(const py::array& base, const std::string& metric,
                                              size_t M, size_t ef_construction, uint64_t seed,
                                              int threads, const std::string& sq_type,
                                              bool refine, double refine_k,
                                              const CancelFlag* cancel) {
        const search::MatrixView view = float_view(base, "base");
        index::HnswParams p;
        p.metric = parse_metric(metric);
        p.M = M;
        p.ef_construction = ef_construction;
        p.seed = seed;
        p.sq_type = parse_sq_type(sq_type);
        p.refine = refine;
        p.refine_k = refine_k;
        p.cancel = cancel != nullptr ? &cancel->flag : nullptr;
        std::unique_ptr<PyHnswIndex> self(new PyHnswIndex());
        self->base_ = base;
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = index::HnswIndex::build(view, p, threads, &self->impl_);
        }
        raise_if_error(s);
        return self;
    }

    // `buffer` must be a C-contiguous buffer of bytes (vecstore/index/hnsw.py passes a
    // memoryview cast to "B"); its export is held for the object's lifetime.
    static std::unique_ptr<PyHnswIndex> load(const py::buffer& buffer, const py::array& base) {
        const search::MatrixView view = float_view(base, "base");
        std::unique_ptr<PyHnswIndex> self(new PyHnswIndex());
        self->base_ = base;
        self->buffer_ = buffer;
        self->info_ = std::make_unique<py::buffer_info>(buffer.request());
        const py::buffer_info& info = *self->info_;
        if (info.ndim != 1 || info.itemsize != 1 || info.strides[0] != 1) {
            raise_invalid("the index buffer must be a contiguous bytes-like object");
        }
        const void* data = info.ptr;
        const size_t size = static_cast<size_t>(info.size);
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = index::HnswIndex::load(data, size, view, &self->impl_);
        }
        raise_if_error(s);
        return self;
    }

    py::tuple search(const py::array& q, size_t k, size_t ef, const py::object& allow,
                     int threads, bool want_stats, double refine_k) const {
        const search::MatrixView vq = float_view(q, "queries");
        if (vq.dim != impl_->dim()) {
            raise_invalid("dimension mismatch: queries have " + std::to_string(vq.dim) +
                          " dimensions, the index has " + std::to_string(impl_->dim()));
        }
        if (k == 0) raise_invalid("k must be at least 1");
        py::array_t<uint8_t> allow_arr;
        const search::AllowBits bits = allow_bits(allow, impl_->rows(), &allow_arr);
        const auto nq = static_cast<py::ssize_t>(vq.rows), kk = static_cast<py::ssize_t>(k);
        py::array_t<int64_t> ids({nq, kk});
        py::array_t<float> vals({nq, kk});
        int64_t* ids_ptr = ids.mutable_data();
        float* vals_ptr = vals.mutable_data();
        index::HnswSearchStats st;
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = impl_->search(vq, k, ef, bits, threads, ids_ptr, vals_ptr, &st, refine_k);
        }
        raise_if_error(s);
        if (!want_stats) return py::make_tuple(ids, vals, py::none());
        py::dict stats;
        stats["graph_queries"] = st.graph_queries;
        stats["exact_queries"] = st.exact_queries;
        stats["distances"] = st.distances;
        return py::make_tuple(ids, vals, stats);
    }

    py::bytes to_bytes() const {
        const size_t n = impl_->serialized_bytes();
        py::object out = py::reinterpret_steal<py::object>(
            PyBytes_FromStringAndSize(nullptr, static_cast<py::ssize_t>(n)));
        if (!out) throw py::error_already_set();
        impl_->serialize(PyBytes_AS_STRING(out.ptr()));
        return py::reinterpret_borrow<py::bytes>(out);
    }

    size_t rows() const { return impl_->rows(); }
    size_t dim() const { return impl_->dim(); }
    size_t M() const { return impl_->M(); }
    size_t ef_construction() const { return impl_->ef_construction(); }
    uint64_t seed() const { return impl_->seed(); }
    int max_level() const { return impl_->max_level(); }
    std::string metric() const { return metric_name(impl_->metric()); }
    std::string sq_type() const { return sq_type_name(impl_->sq_type()); }
    bool refine() const { return impl_->refine(); }
    double refine_k() const { return impl_->refine_k(); }
    size_t nbytes() const { return impl_->serialized_bytes(); }
    const py::object& base() const { return base_; }

  private:
    PyHnswIndex() = default;
    py::object base_;    // keeps the viewed vectors alive
    py::object buffer_;  // keeps a loaded image alive (None for a built index)
    std::unique_ptr<py::buffer_info> info_;  // the buffer export the image is read through
    std::unique_ptr<index::HnswIndex> impl_;
};

}  // namespace

void bind_hnsw(py::module_& m) {
    py::class_<CancelFlag>(m, "CancelFlag",
                           "Set it (from any thread) to stop a build that was given it.")
        .def(py::init<>())
        .def("set", [](CancelFlag& c) { c.flag.store(true); })
        .def("is_set", [](const CancelFlag& c) { return c.flag.load(); });
    py::class_<PyHnswIndex>(m, "HnswIndex",
                            "HNSW graph over a float32 matrix it references (which must not "
                            "change).")
        .def_static("build", &PyHnswIndex::build, py::arg("base"), py::arg("metric"),
                    py::arg("M"), py::arg("ef_construction"), py::arg("seed"),
                    py::arg("threads"), py::arg("sq_type") = "", py::arg("refine") = false,
                    py::arg("refine_k") = 1.0, py::arg("cancel") = nullptr)
        .def_static("load", &PyHnswIndex::load, py::arg("buffer"), py::arg("base"))
        .def("search", &PyHnswIndex::search, py::arg("queries"), py::arg("k"), py::arg("ef"),
             py::arg("allow"), py::arg("threads"), py::arg("want_stats") = false,
             py::arg("refine_k") = 0.0,
             "(ids int64, values float32, stats dict or None)")
        .def("to_bytes", &PyHnswIndex::to_bytes)
        .def_property_readonly("rows", &PyHnswIndex::rows)
        .def_property_readonly("dim", &PyHnswIndex::dim)
        .def_property_readonly("M", &PyHnswIndex::M)
        .def_property_readonly("ef_construction", &PyHnswIndex::ef_construction)
        .def_property_readonly("seed", &PyHnswIndex::seed)
        .def_property_readonly("max_level", &PyHnswIndex::max_level)
        .def_property_readonly("metric", &PyHnswIndex::metric)
        .def_property_readonly("sq_type", &PyHnswIndex::sq_type)
        .def_property_readonly("refine", &PyHnswIndex::refine)
        .def_property_readonly("refine_k", &PyHnswIndex::refine_k)
        .def_property_readonly("nbytes", &PyHnswIndex::nbytes)
        .def_property_readonly("base", &PyHnswIndex::base);
}

}  // namespace py_glue
}  // namespace vecstore
