// IvfIndex (index/ivf.h) over numpy arrays and bytes-like buffers. The object keeps references to
// the float32 base array and, when opened from a buffer, to that buffer (viewed in place,
// read-only): both must stay unchanged while it lives.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <memory>
#include <string>

#include "index/ivf.h"
#include "index/kmeans.h"
#include "python/buffers.h"
#include "python/errors.h"

namespace py = pybind11;

namespace vecstore {
namespace py_glue {
namespace {

index::IvfKind parse_kind(const std::string& k) {
    if (k == "IVF_FLAT") return index::IvfKind::kFlat;
    if (k == "IVF_SQ8") return index::IvfKind::kSq8;
    if (k == "IVF_PQ") return index::IvfKind::kPq;
    raise_invalid("unknown IVF kind '" + k + "'; expected IVF_FLAT, IVF_SQ8 or IVF_PQ");
    return index::IvfKind::kFlat;
}

const char* kind_name(index::IvfKind k) {
    switch (k) {
        case index::IvfKind::kFlat: return "IVF_FLAT";
        case index::IvfKind::kSq8: return "IVF_SQ8";
        default: return "IVF_PQ";
    }
}

const char* metric_name(distance::Metric m) {
    switch (m) {
        case distance::Metric::kL2: return "L2";
        case distance::Metric::kIP: return "IP";
        default: return "COSINE";
    }
}

class PyIvfIndex {
  public:
    static std::unique_ptr<PyIvfIndex> build(const py::array& base, const std::string& kind,
                                             const std::string& metric, size_t nlist, size_t m,
                                             size_t nbits, uint64_t seed, int niter, int threads) {
        const search::MatrixView view = float_view(base, "base");
        index::IvfBuildParams p;
        p.kind = parse_kind(kind);
        p.metric = parse_metric(metric);
        p.nlist = nlist;
        p.pq_m = m;
        p.nbits = nbits;
        p.seed = seed;
        p.niter = niter;
        p.threads = threads;
        std::unique_ptr<PyIvfIndex> out(new PyIvfIndex());
        out->base_ = base;
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = index::IvfIndex::build(view, p, &out->impl_);
        }
        raise_if_error(s);
        return out;
    }

    static std::unique_ptr<PyIvfIndex> load(const py::buffer& buffer, const py::array& base) {
        const search::MatrixView view = float_view(base, "base");
        std::unique_ptr<PyIvfIndex> out(new PyIvfIndex());
        out->base_ = base;
        out->buffer_ = buffer;
        py::buffer_info info = buffer.request();
        if (info.ndim != 1 || (info.itemsize != 1 && info.size > 0) ||
            (info.ndim == 1 && info.strides[0] != info.itemsize)) {
            raise_invalid("buffer must be a contiguous bytes-like object (bytes, bytearray, "
                          "memoryview, mmap)");
        }
        const auto* data = static_cast<const uint8_t*>(info.ptr);
        const size_t size = static_cast<size_t>(info.size);
        out->info_.reset(new py::buffer_info(std::move(info)));  // holds the export open
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = index::IvfIndex::load(data, size, view, &out->impl_);
        }
        raise_if_error(s);
        return out;
    }

    py::tuple search(const py::array& q, size_t k, size_t nprobe, const py::object& allow,
                     int threads, bool rerank, size_t rerank_factor) const {
        const search::MatrixView vq = float_view(q, "queries");
        if (vq.dim != impl_->dim()) {
            raise_invalid("dimension mismatch: queries have " + std::to_string(vq.dim) +
                          " dimensions, the index has " + std::to_string(impl_->dim()));
        }
        index::IvfSearchParams p;
        p.k = k;
        p.nprobe = nprobe;
        p.threads = threads;
        p.rerank = rerank;
        p.rerank_factor = rerank_factor;
        py::array_t<uint8_t> allow_arr;
        p.allow = allow_bits(allow, impl_->rows(), &allow_arr);
        const auto nq = static_cast<py::ssize_t>(vq.rows), kk = static_cast<py::ssize_t>(k);
        py::array_t<int64_t> ids({nq, kk});
        py::array_t<float> vals({nq, kk});
        int64_t* ids_ptr = ids.mutable_data();
        float* vals_ptr = vals.mutable_data();
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = impl_->search(vq, p, ids_ptr, vals_ptr);
        }
        raise_if_error(s);
        return py::make_tuple(ids, vals);
    }

    py::bytes to_bytes() const {
        return py::bytes(reinterpret_cast<const char*>(impl_->bytes()), impl_->byte_size());
    }

    py::array_t<float> centroids() const {
        py::array_t<float> out({static_cast<py::ssize_t>(impl_->nlist()),
                                static_cast<py::ssize_t>(impl_->dim())});
        std::memcpy(out.mutable_data(), impl_->centroids(),
                    impl_->nlist() * impl_->dim() * sizeof(float));
        return out;
    }

    py::array_t<int64_t> list_sizes() const {
        py::array_t<int64_t> out(static_cast<py::ssize_t>(impl_->nlist()));
        const uint64_t* off = impl_->list_offsets();
        for (size_t l = 0; l < impl_->nlist(); ++l) {
            out.mutable_data()[l] = static_cast<int64_t>(off[l + 1] - off[l]);
        }
        return out;
    }

    std::string kind() const { return kind_name(impl_->kind()); }
    std::string metric() const { return metric_name(impl_->metric()); }
    size_t rows() const { return impl_->rows(); }
    size_t dim() const { return impl_->dim(); }
    size_t nlist() const { return impl_->nlist(); }
    size_t m() const { return impl_->pq_m(); }
    size_t memory_bytes() const { return impl_->memory_bytes(); }
    const py::object& base() const { return base_; }

  private:
    PyIvfIndex() = default;
    py::object base_;    // keeps the viewed matrix alive
    py::object buffer_;  // keeps the viewed buffer alive (load only)
    std::unique_ptr<py::buffer_info> info_;
    std::unique_ptr<index::IvfIndex> impl_;
};

py::tuple kmeans(const py::array& data, size_t k, int niter, uint64_t seed, int threads) {
    const search::MatrixView view = float_view(data, "data");
    index::KMeansResult r;
    Status s;
    {
        py::gil_scoped_release nogil;  // no py:: objects below this line
        s = index::kmeans(view, k, niter, seed, threads, &r);
    }
    raise_if_error(s);
    py::array_t<float> cent({static_cast<py::ssize_t>(k), static_cast<py::ssize_t>(view.dim)});
    std::memcpy(cent.mutable_data(), r.centroids.data(), r.centroids.size() * sizeof(float));
    return py::make_tuple(cent, r.inertia, r.reseeded);
}

}  // namespace

void bind_ivf(py::module_& m) {
    py::class_<PyIvfIndex>(m, "IvfIndex",
                           "IVF_FLAT / IVF_SQ8 / IVF_PQ over a float32 matrix it references.")
        .def_static("build", &PyIvfIndex::build, py::arg("base"), py::arg("kind"),
                    py::arg("metric"), py::arg("nlist"), py::arg("m"), py::arg("nbits"),
                    py::arg("seed"), py::arg("niter"), py::arg("threads"))
        .def_static("load", &PyIvfIndex::load, py::arg("buffer"), py::arg("base"))
        .def("search", &PyIvfIndex::search, py::arg("queries"), py::arg("k"), py::arg("nprobe"),
             py::arg("allow"), py::arg("threads"), py::arg("rerank"), py::arg("rerank_factor"))
        .def("to_bytes", &PyIvfIndex::to_bytes)
        .def("centroids", &PyIvfIndex::centroids)
        .def("list_sizes", &PyIvfIndex::list_sizes)
        .def_property_readonly("kind", &PyIvfIndex::kind)
        .def_property_readonly("metric", &PyIvfIndex::metric)
        .def_property_readonly("rows", &PyIvfIndex::rows)
        .def_property_readonly("dim", &PyIvfIndex::dim)
        .def_property_readonly("nlist", &PyIvfIndex::nlist)
        .def_property_readonly("m", &PyIvfIndex::m)
        .def_property_readonly("memory_bytes", &PyIvfIndex::memory_bytes)
        .def_property_readonly("base", &PyIvfIndex::base);
    m.def("kmeans", &kmeans, py::arg("data"), py::arg("k"), py::arg("niter"), py::arg("seed"),
          py::arg("threads"), "(centroids k x dim, inertia, reseeded)");
}

}  // namespace py_glue
}  // namespace vecstore
