// Zero-copy views of numpy arrays for the core. The Python layer (vecstore/_arrays.py) validates and
// names fixes for users; these checks are the glue's last line of defence against misuse of _core.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "distance/distance.h"
#include "search/exact_search.h"

namespace vecstore {
namespace py_glue {

namespace py = pybind11;

distance::DType parse_dtype(const std::string& name);
distance::Metric parse_metric(const std::string& name);

// A 2-D array whose rows are contiguous (inner stride == itemsize) and whose row stride is
// positive, seen as a MatrixView of `dtype`. For binary, dim = 8 * columns (bits). The array must
// stay alive while the view is used (callers hold it as a function argument).
search::MatrixView matrix_view(const py::array& a, distance::DType dtype, const char* what);

// matrix_view of a float32 array (the index engines' input), refusing other dtypes.
search::MatrixView float_view(const py::array& a, const char* what);

// The allow bitset of a search over `rows` rows: nullptr for None, else a 1-D contiguous uint8
// array of at least ceil(rows / 8) bytes (numpy.packbits(mask, bitorder="little")). `keep` holds
// the array while the returned pointer is in use.
search::AllowBits allow_bits(const py::object& allow, size_t rows, py::array_t<uint8_t>* keep);

}  // namespace py_glue
}  // namespace vecstore
