// The one place where a core Status becomes a Python exception (a vecstore.errors class, chosen by
// StatusCode). Call with the GIL held.
#pragma once

#include "common/status.h"

namespace vecstore {
namespace py_glue {

// Throws pybind11::error_already_set carrying the vecstore.errors exception when !s.ok().
void raise_if_error(const Status& s);

// Shorthand for argument errors found by the glue itself.
[[noreturn]] void raise_invalid(const std::string& message);

}  // namespace py_glue
}  // namespace vecstore
