// BinIvfIndex (index/bin_ivf.h) over packed uint8 numpy arrays and bytes-like buffers. The built
// index owns its image; one opened from a buffer views it in place (read-only) and keeps the
// buffer object alive.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <memory>
#include <string>

#include "index/bin_ivf.h"
#include "python/buffers.h"
#include "python/errors.h"

namespace py = pybind11;

namespace vecstore {
namespace py_glue {
namespace {

search::MatrixView binary_view(const py::array& a, const char* what) {
    if (!a.dtype().is(py::dtype::of<uint8_t>())) {
        raise_invalid(std::string(what) + " must be packed uint8 (np.packbits(bits, axis=1, "
                      "bitorder=\"little\"))");
    }
    return matrix_view(a, distance::DType::kBinary, what);
}

class PyBinIvfIndex {
  public:
    static std::unique_ptr<PyBinIvfIndex> build(const py::array& base, const std::string& metric,
                                                size_t nlist, uint64_t seed, int niter,
                                                int threads) {
        const search::MatrixView view = binary_view(base, "base");
        index::BinIvfBuildParams p;
        p.metric = parse_metric(metric);
        p.nlist = nlist;
        p.seed = seed;
        p.niter = niter;
        p.threads = threads;
        std::unique_ptr<PyBinIvfIndex> out(new PyBinIvfIndex());
        Status s;
        {
            py::gil_scoped_release nogil;  // no py:: objects below this line
            s = index::BinIvfIndex::build(view, p, &out->impl_);
        }
        raise_if_error(s);
        return out;
    }

    static std::unique_ptr<PyBinIvfIndex> load(const py::buffer& buffer) {
        std::unique_ptr<PyBinIvfIndex> out(new PyBinIvfIndex());
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
            s = index::BinIvfIndex::load(data, size, &out->impl_);
        }
        raise_if_error(s);
        return out;
    }

    py::tuple search(const py::array& q, size_t k, size_t nprobe, const py::object& allow,
                     int threads) const {
        const search::MatrixView vq = binary_view(q, "queries");
        if (vq.dim != impl_->dim()) {
            raise_invalid("dimension mismatch: queries have " + std::to_string(vq.dim / 8) +
                          " bytes per vector, the index has " +
                          std::to_string(impl_->code_size()));
        }
        index::BinIvfSearchParams p;
        p.k = k;
        p.nprobe = nprobe;
        p.threads = threads;
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

    py::array_t<uint8_t> centroids() const {
        py::array_t<uint8_t> out({static_cast<py::ssize_t>(impl_->nlist()),
                                  static_cast<py::ssize_t>(impl_->code_size())});
        std::memcpy(out.mutable_data(), impl_->centroids(), impl_->nlist() * impl_->code_size());
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

    std::string metric() const {
        return impl_->metric() == distance::Metric::kHamming ? "HAMMING" : "JACCARD";
    }
    size_t rows() const { return impl_->rows(); }
    size_t dim() const { return impl_->dim(); }
    size_t nlist() const { return impl_->nlist(); }
    size_t memory_bytes() const { return impl_->memory_bytes(); }

  private:
    PyBinIvfIndex() = default;
    py::object buffer_;  // keeps the viewed buffer alive (load only)
    std::unique_ptr<py::buffer_info> info_;
    std::unique_ptr<index::BinIvfIndex> impl_;
};

}  // namespace

void bind_bin_ivf(py::module_& m) {
    py::class_<PyBinIvfIndex>(m, "BinIvfIndex",
                              "BIN_IVF_FLAT over packed binary vectors (HAMMING, JACCARD).")
        .def_static("build", &PyBinIvfIndex::build, py::arg("base"), py::arg("metric"),
                    py::arg("nlist"), py::arg("seed"), py::arg("niter"), py::arg("threads"))
        .def_static("load", &PyBinIvfIndex::load, py::arg("buffer"))
        .def("search", &PyBinIvfIndex::search, py::arg("queries"), py::arg("k"),
             py::arg("nprobe"), py::arg("allow"), py::arg("threads"))
        .def("to_bytes", &PyBinIvfIndex::to_bytes)
        .def("centroids", &PyBinIvfIndex::centroids)
        .def("list_sizes", &PyBinIvfIndex::list_sizes)
        .def_property_readonly("metric", &PyBinIvfIndex::metric)
        .def_property_readonly("rows", &PyBinIvfIndex::rows)
        .def_property_readonly("dim", &PyBinIvfIndex::dim)
        .def_property_readonly("nlist", &PyBinIvfIndex::nlist)
        .def_property_readonly("memory_bytes", &PyBinIvfIndex::memory_bytes);
}

}  // namespace py_glue
}  // namespace vecstore
