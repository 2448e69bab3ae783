// Internal-invariant checks. VS_CHECK guards conditions that can only fail through a bug in vecstore
// itself (never through user input, which is validated and reported as a Status): it prints the
// condition with file:line and aborts, because continuing would corrupt results or data.
#pragma once

#include <cstdio>
#include <cstdlib>

#define VS_CHECK(cond)                                                                  \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            std::fprintf(stderr, "vecstore: internal check failed: %s at %s:%d\n", #cond, \
                         __FILE__, __LINE__);                                           \
            std::abort();                                                               \
        }                                                                               \
    } while (0)

#define VS_RETURN_IF_ERROR(expr)          \
    do {                                  \
        ::vecstore::Status _vs_s = (expr); \
        if (!_vs_s.ok()) return _vs_s;    \
    } while (0)
