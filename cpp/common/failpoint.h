// Named failpoints for crash and fault-injection tests, configured by one environment variable
// shared with the Python side (python/vecstore/common/failpoints.py):
//
//   VECSTORE_FAILPOINT="name=action[@N][,name=action[@N]...]"
//
// action: "kill" (SIGKILL this process at the point), "error" (the point fails with the I/O error
// it simulates, e.g. ENOSPC for a write, EIO for an fsync). "@N" fires on the N-th hit only
// (1-based); without it, every hit fires. Unknown names are ignored (the other side may own them).
// The variable is read once, at the first hit; set_spec() replaces it (tests in one process).
// Thread-safe. In production the variable is unset and hit() costs one relaxed atomic load.
#pragma once

#include <string>

namespace vecstore {
namespace failpoint {

enum class Action { kNone, kKill, kError };

// Counts a hit of `name` and returns what to do; kKill never returns (the process dies here).
Action hit(const char* name);

// True when any point is configured (lets hot paths skip extra work, e.g. split writes).
bool any_configured();

// Replaces the configuration (the VECSTORE_FAILPOINT syntax); "" disables all points.
void set_spec(const std::string& spec);

}  // namespace failpoint
}  // namespace vecstore
