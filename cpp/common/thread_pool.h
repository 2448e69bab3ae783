// The one internal thread pool of the native core.
//
// Every multi-threaded call (exact search, later index builds) borrows threads from this pool; no
// other code creates threads. Workers are started lazily, up to hardware_concurrency() - 1 (the
// calling thread always takes part, so `threads` threads run a job at most).
//
// Contract:
//   - parallel_for(n, threads, fn) calls fn(i) exactly once for each i in [0, n), on at most `threads`
//     threads (0 = all cores), and returns when every call has returned. It is safe to call from
//     several threads at once; their jobs share the workers.
//   - fn must not throw and must not call into Python (callers release the GIL first).
//   - The caller claims tasks itself, so a job always completes even if no worker is available: this
//     is what keeps a child process working after fork() (the fork handler drops the parent's
//     workers, which do not exist in the child, and a fresh pool starts on first use).
#pragma once

#include <cstddef>
#include <functional>

namespace vecstore {

class ThreadPool {
  public:
    static ThreadPool& instance();

    // Number of hardware threads; what threads=0 means.
    static int hardware_threads();

    // Resolves a user thread count: 0 -> all cores, otherwise clamped to [1, hardware_threads()].
    static int resolve_threads(int threads);

    void parallel_for(size_t n_tasks, int threads, const std::function<void(size_t)>& fn);

    ~ThreadPool();

  private:
    ThreadPool();
    struct Impl;
    Impl* impl_;
};

}  // namespace vecstore
