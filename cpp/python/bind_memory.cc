// Memory helpers for the Python layer: populating freshly allocated buffers ahead of their use.
//
// Why: on the virtual machines vecstore runs on, the first write to a fresh page costs a host-side
// fault (measured here: 5 MB of fresh memory took 2-10 ms to fill, 1 ms once populated). A growing
// segment reserves its buffers up front, so a background thread can populate them while the
// writer still fills earlier pages, taking those faults off the insert path.
#include <pybind11/pybind11.h>

#include <cstdint>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace py = pybind11;

#if defined(__linux__) && !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23  // Linux 5.14+; older kernels answer EINVAL
#endif

namespace vecstore {
namespace py_glue {

void bind_memory(py::module_& m) {
    m.def(
        "prefault",
        [](const py::buffer& data) {
            const py::buffer_info info = data.request(true);  // writable
#if defined(__linux__)
            const size_t n = static_cast<size_t>(info.size * info.itemsize);
            const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
            // Whole pages inside the buffer only: madvise works on page-aligned ranges, and the
            // partial pages at the ends are touched by the writer anyway.
            const uintptr_t begin = (reinterpret_cast<uintptr_t>(info.ptr) + page - 1) & ~(page - 1);
            const uintptr_t end = (reinterpret_cast<uintptr_t>(info.ptr) + n) & ~(page - 1);
            if (end <= begin) return true;
            int rc;
            {
                py::gil_scoped_release nogil;
                // Populates the pages as if written, without changing their contents: safe while
                // another thread writes into the same buffer.
                rc = madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
            }
            return rc == 0;
#else
            return false;
#endif
        },
        py::arg("buffer"),
        "Populates the buffer's pages for writing without changing its contents (the GIL is "
        "released). Returns False where the kernel cannot (before Linux 5.14, or not Linux).");
}

}  // namespace py_glue
}  // namespace vecstore
