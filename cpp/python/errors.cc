#include "python/errors.h"

#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace vecstore {
namespace py_glue {
namespace {

const char* class_name(StatusCode code) {
    switch (code) {
        case StatusCode::kInvalidArgument: return "InvalidArgument";
        case StatusCode::kNotFound: return "NotFoundError";
        case StatusCode::kCorruption: return "CorruptionError";
        case StatusCode::kIOError: return "StorageError";
        case StatusCode::kCancelled: return "Cancelled";
        default: return "InternalError";
    }
}

}  // namespace

void raise_if_error(const Status& s) {
    if (s.ok()) return;
    py::object cls = py::module_::import("vecstore.errors").attr(class_name(s.code()));
    PyErr_SetObject(cls.ptr(), py::str(s.message()).ptr());
    throw py::error_already_set();
}

void raise_invalid(const std::string& message) {
    raise_if_error(Status::InvalidArgument(message));
    throw std::logic_error("unreachable");  // raise_if_error always throws for a non-OK status
}

}  // namespace py_glue
}  // namespace vecstore
