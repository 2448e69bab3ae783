#include "common/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vecstore {

namespace {

struct Job {
    const std::function<void(size_t)>* fn = nullptr;
    size_t n_tasks = 0;
    std::atomic<size_t> next{0};   // next task index to claim
    std::atomic<size_t> done{0};   // tasks finished
    int helper_slots = 0;          // workers still allowed to join (guarded by pool mutex)
    std::mutex mu;
    std::condition_variable finished;
};

// Claims and runs tasks of `job` until none are left. Returns after the last claimed task is done.
void run_tasks(Job* job) {
    for (;;) {
        const size_t i = job->next.fetch_add(1, std::memory_order_relaxed);
        if (i >= job->n_tasks) return;
        (*job->fn)(i);
        if (job->done.fetch_add(1, std::memory_order_acq_rel) + 1 == job->n_tasks) {
            std::lock_guard<std::mutex> lock(job->mu);
            job->finished.notify_all();
        }
    }
}

}  // namespace

struct ThreadPool::Impl {
    std::mutex mu;
    std::condition_variable work_ready;
    std::deque<std::shared_ptr<Job>> queue;  // jobs that may still take helpers
    std::vector<std::thread> workers;
    bool stopping = false;

    void worker_loop() {
        for (;;) {
            std::shared_ptr<Job> job;
            {
                std::unique_lock<std::mutex> lock(mu);
                work_ready.wait(lock, [&] { return stopping || !queue.empty(); });
                if (stopping) return;
                job = queue.front();
                if (--job->helper_slots <= 0) queue.pop_front();
            }
            run_tasks(job.get());
        }
    }

    void ensure_workers(int wanted) {
        // Called with mu held.
        while (static_cast<int>(workers.size()) < wanted) {
            workers.emplace_back([this] { worker_loop(); });
        }
    }
};

namespace {
ThreadPool* g_pool = nullptr;
std::once_flag g_atfork_once;
std::mutex g_pool_mu;

void forget_pool_in_child() {
    // The parent's workers do not exist in the child and its mutexes may be held by them: leak the
    // old pool (destroying it would join threads that are not there) and start a new one on demand.
    g_pool = nullptr;
    new (&g_pool_mu) std::mutex();
}
}  // namespace

ThreadPool& ThreadPool::instance() {
    std::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, forget_pool_in_child); });
    std::lock_guard<std::mutex> lock(g_pool_mu);
    if (g_pool == nullptr) g_pool = new ThreadPool();  // lives for the process: never destroyed
    return *g_pool;
}

int ThreadPool::hardware_threads() {
    // Probed once: glibc answers hardware_concurrency() by opening and parsing
    // /sys/devices/system/cpu/online on every call, ~20 us that dominated small searches.
    static const int n = [] {
        const unsigned hw = std::thread::hardware_concurrency();
        return hw == 0 ? 1 : static_cast<int>(hw);
    }();
    return n;
}

int ThreadPool::resolve_threads(int threads) {
    const int hw = hardware_threads();
    if (threads <= 0) return hw;
    return std::min(threads, hw);
}

ThreadPool::ThreadPool() : impl_(new Impl()) {}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->work_ready.notify_all();
    for (auto& t : impl_->workers) t.join();
    delete impl_;
}

void ThreadPool::parallel_for(size_t n_tasks, int threads, const std::function<void(size_t)>& fn) {
    if (n_tasks == 0) return;
    const int t = std::min<size_t>(resolve_threads(threads), n_tasks);
    if (t <= 1) {
        for (size_t i = 0; i < n_tasks; ++i) fn(i);
        return;
    }
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->n_tasks = n_tasks;
    job->helper_slots = t - 1;
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        impl_->ensure_workers(hardware_threads() - 1);
        impl_->queue.push_back(job);
    }
    impl_->work_ready.notify_all();
    run_tasks(job.get());
    {
        // Tasks still running on workers finish before fn (owned by the caller) goes out of scope.
        std::unique_lock<std::mutex> lock(job->mu);
        job->finished.wait(lock,
                           [&] { return job->done.load(std::memory_order_acquire) == n_tasks; });
    }
    {
        // A job whose tasks ran out before all its helper slots were taken is still queued.
        std::lock_guard<std::mutex> lock(impl_->mu);
        auto& q = impl_->queue;
        q.erase(std::remove(q.begin(), q.end(), job), q.end());
    }
}

}  // namespace vecstore
