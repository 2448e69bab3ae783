// WAL file writer/reader and failpoint control for python/vecstore/storage/wal/.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "common/failpoint.h"
#include "python/errors.h"
#include "wal/wal_reader.h"
#include "wal/wal_writer.h"

namespace py = pybind11;

namespace vecstore {
namespace py_glue {
namespace {

class PyWalWriter {
  public:
    explicit PyWalWriter(std::unique_ptr<wal::WalWriter> w) : w_(std::move(w)) {}

    static PyWalWriter create(const std::string& path, uint64_t seq) {
        Result<std::unique_ptr<wal::WalWriter>> r = Status::OK();
        {
            py::gil_scoped_release nogil;
            r = wal::WalWriter::create(path, seq);
        }
        raise_if_error(r.status());
        return PyWalWriter(std::move(r.value()));
    }

    static PyWalWriter open_for_append(const std::string& path, uint64_t offset) {
        Result<std::unique_ptr<wal::WalWriter>> r = Status::OK();
        {
            py::gil_scoped_release nogil;
            r = wal::WalWriter::open_for_append(path, offset);
        }
        raise_if_error(r.status());
        return PyWalWriter(std::move(r.value()));
    }

    uint64_t append(uint8_t type, uint8_t flags, uint64_t ts_begin, uint64_t ts_end,
                    const py::buffer& payload) {
        const py::buffer_info info = payload.request();
        if (!PyBuffer_IsContiguous(info.view(), 'C')) raise_invalid("WAL payload must be contiguous");
        const auto* data = static_cast<const uint8_t*>(info.ptr);
        const size_t n = static_cast<size_t>(info.size * info.itemsize);
        Result<uint64_t> r = Status::OK();
        {
            py::gil_scoped_release nogil;
            r = w_->append(type, flags, ts_begin, ts_end, data, n);
        }
        raise_if_error(r.status());
        return r.value();
    }

    // One record whose payload is the concatenation of `parts` (buffers, each C-contiguous).
    uint64_t append_parts(uint8_t type, uint8_t flags, uint64_t ts_begin, uint64_t ts_end,
                          const py::list& parts) {
        std::vector<py::buffer_info> infos;  // hold every buffer until the write is done
        std::vector<wal::WalWriter::Part> spans;
        infos.reserve(parts.size());
        for (const py::handle& h : parts) {
            infos.push_back(py::reinterpret_borrow<py::buffer>(h).request());
            const py::buffer_info& info = infos.back();
            if (!PyBuffer_IsContiguous(info.view(), 'C')) {
                raise_invalid("WAL payload parts must be contiguous");
            }
            spans.emplace_back(static_cast<const uint8_t*>(info.ptr),
                               static_cast<size_t>(info.size * info.itemsize));
        }
        Result<uint64_t> r = Status::OK();
        {
            py::gil_scoped_release nogil;
            r = w_->append_parts(type, flags, ts_begin, ts_end, spans);
        }
        raise_if_error(r.status());
        return r.value();
    }

    void sync() {
        Status s;
        {
            py::gil_scoped_release nogil;
            s = w_->sync();
        }
        raise_if_error(s);
    }

    void close() {
        Status s;
        {
            py::gil_scoped_release nogil;
            s = w_->close();
        }
        raise_if_error(s);
    }

    uint64_t offset() const { return w_->offset(); }

  private:
    std::unique_ptr<wal::WalWriter> w_;
};

// Holds the buffer (an mmap or bytes) alive for the reader's lifetime.
class PyWalReader {
  public:
    PyWalReader(const py::buffer& data, const std::string& name, bool tail_file, bool skip)
        : owner_(data), info_(data.request()),
          r_(static_cast<const uint8_t*>(info_.ptr), static_cast<size_t>(info_.size * info_.itemsize),
             name, tail_file, skip) {}

    uint64_t read_header() {
        uint64_t seq = 0;
        raise_if_error(r_.read_header(&seq));
        return seq;
    }

    void seek(uint64_t offset) { raise_if_error(r_.seek(offset)); }

    py::object next() {
        wal::Record rec;
        bool ok;
        {
            py::gil_scoped_release nogil;
            ok = r_.next(&rec);
        }
        if (!ok) {
            if (r_.end_kind() == wal::EndKind::kCorrupt) raise_if_error(r_.error());
            return py::none();
        }
        return py::make_tuple(rec.offset, rec.end, rec.type, rec.flags, rec.ts_begin, rec.ts_end,
                              py::bytes(rec.payload));
    }

    std::string end_kind() const {
        switch (r_.end_kind()) {
            case wal::EndKind::kClean: return "clean";
            case wal::EndKind::kTornTail: return "torn";
            case wal::EndKind::kCorrupt: return "corrupt";
            default: return "reading";
        }
    }

    py::list skipped() const {
        py::list out;
        for (const auto& s : r_.skipped()) out.append(py::make_tuple(s.offset, s.bytes, s.reason));
        return out;
    }

    uint64_t append_offset() const { return r_.append_offset(); }
    uint64_t dropped_bytes() const { return r_.dropped_bytes(); }

  private:
    py::buffer owner_;
    py::buffer_info info_;
    wal::WalReader r_;
};

}  // namespace

void bind_wal(py::module_& m) {
    py::class_<PyWalWriter>(m, "WalFileWriter",
                            "Appends records to one WAL file (cpp/wal/wal_writer.h).")
        .def_static("create", &PyWalWriter::create, py::arg("path"), py::arg("seq"))
        .def_static("open_for_append", &PyWalWriter::open_for_append, py::arg("path"),
                    py::arg("offset"))
        .def("append_parts", &PyWalWriter::append_parts, py::arg("type"), py::arg("flags"),
             py::arg("ts_begin"), py::arg("ts_end"), py::arg("parts"))
        .def("append", &PyWalWriter::append, py::arg("type"), py::arg("flags"),
             py::arg("ts_begin"), py::arg("ts_end"), py::arg("payload"))
        .def("sync", &PyWalWriter::sync)
        .def("close", &PyWalWriter::close)
        .def_property_readonly("offset", &PyWalWriter::offset);
    py::class_<PyWalReader>(m, "WalFileReader",
                            "Reads records from one WAL file in memory (cpp/wal/wal_reader.h).")
        .def(py::init<const py::buffer&, const std::string&, bool, bool>(), py::arg("data"),
             py::arg("name"), py::arg("tail_file"), py::arg("skip_damage"))
        .def("read_header", &PyWalReader::read_header)
        .def("seek", &PyWalReader::seek, py::arg("offset"))
        .def("next", &PyWalReader::next,
             "(offset, end, type, flags, ts_begin, ts_end, payload) or None at the end")
        .def_property_readonly("end_kind", &PyWalReader::end_kind)
        .def_property_readonly("append_offset", &PyWalReader::append_offset)
        .def_property_readonly("dropped_bytes", &PyWalReader::dropped_bytes)
        .def_property_readonly("skipped", &PyWalReader::skipped);
    m.def("failpoint_set", &failpoint::set_spec, py::arg("spec"),
          "Replaces the native failpoint configuration (VECSTORE_FAILPOINT syntax).");
}

}  // namespace py_glue
}  // namespace vecstore
