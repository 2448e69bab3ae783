#include "python/buffers.h"
#include "python/errors.h"

namespace vecstore {
namespace py_glue {

distance::DType parse_dtype(const std::string& name) {
    if (name == "float32") return distance::DType::kFloat32;
    if (name == "float16") return distance::DType::kFloat16;
    if (name == "bfloat16") return distance::DType::kBFloat16;
    if (name == "int8") return distance::DType::kInt8;
    if (name == "binary") return distance::DType::kBinary;
    raise_invalid("unknown vector dtype '" + name +
                  "'; expected float32, float16, bfloat16, int8 or binary");
}

distance::Metric parse_metric(const std::string& name) {
    if (name == "L2") return distance::Metric::kL2;
    if (name == "IP") return distance::Metric::kIP;
    if (name == "COSINE") return distance::Metric::kCosine;
    if (name == "HAMMING") return distance::Metric::kHamming;
    if (name == "JACCARD") return distance::Metric::kJaccard;
    raise_invalid("unknown metric '" + name + "'; expected L2, IP, COSINE, HAMMING or JACCARD");
}

search::MatrixView matrix_view(const py::array& a, distance::DType dtype, const char* what) {
    const std::string w(what);
    if (a.ndim() != 2) raise_invalid(w + " must be a 2-D array");
    const size_t item = dtype == distance::DType::kBinary ? 1 : distance::element_bytes(dtype);
    if (static_cast<size_t>(a.itemsize()) != item) {
        raise_invalid(w + " has " + std::to_string(a.itemsize()) + "-byte elements, expected " +
                      std::to_string(item));
    }
    const auto rows = static_cast<size_t>(a.shape(0));
    const auto cols = static_cast<size_t>(a.shape(1));
    if (cols > 1 && a.strides(1) != static_cast<py::ssize_t>(item)) {
        raise_invalid(w + " rows are not contiguous; pass np.ascontiguousarray(" + w + ")");
    }
    if (rows > 1 && a.strides(0) < static_cast<py::ssize_t>(cols * item)) {
        raise_invalid(w + " has overlapping or reversed rows; pass np.ascontiguousarray(" + w + ")");
    }
    search::MatrixView v;
    v.data = a.data();
    v.rows = rows;
    v.dim = dtype == distance::DType::kBinary ? cols * 8 : cols;
    v.stride_bytes = rows > 1 ? static_cast<size_t>(a.strides(0)) : cols * item;
    v.dtype = dtype;
    return v;
}

search::MatrixView float_view(const py::array& a, const char* what) {
    if (!a.dtype().is(py::dtype::of<float>())) {
        raise_invalid(std::string(what) + " must be float32; pass np.ascontiguousarray(" + what +
                      ", dtype=np.float32)");
    }
    return matrix_view(a, distance::DType::kFloat32, what);
}

search::AllowBits allow_bits(const py::object& allow, size_t rows, py::array_t<uint8_t>* keep) {
    if (allow.is_none()) return nullptr;
    *keep = py::array_t<uint8_t>::ensure(allow);
    if (!*keep || keep->ndim() != 1 || keep->strides(0) != 1 ||
        static_cast<size_t>(keep->shape(0)) < (rows + 7) / 8) {
        raise_invalid("allow must be a packed uint8 bitset of ceil(rows / 8) bytes");
    }
    return keep->data();
}

}  // namespace py_glue
}  // namespace vecstore
