#include "detail/eigen_pool.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "detail/linalg.hpp"

namespace adaptk::detail {

eigen_pool::eigen_pool(std::size_t workers, std::uint64_t capacity_bytes)
    : workers_(workers), capacity_bytes_(capacity_bytes) {
#if defined(__GLIBC__)
    // The solves are to run in the memory the streaming just freed, but glibc
    // gives each thread its own arena, where the main thread's freed chunks
    // (kept, not returned) cannot be reused: the peak grew by 25 MiB at
    // d = 2048. One arena for the process lets the workers reuse them.
    if (workers > 0) ::mallopt(M_ARENA_MAX, 1);
#endif
}

void eigen_pool::submit(std::uint64_t bytes, std::function<void()> job) {
    if (workers_ == 0) {
        job();
        return;
    }
    const std::lock_guard lock(mutex_);
    queue_.push_back({bytes, std::move(job)});
}

eigen_pool::~eigen_pool() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    helpers_.clear();  // joined
}

void eigen_pool::run() {
    if (queue_.empty()) return;
    std::exception_ptr failure;
    {
        const single_threaded_blas one_thread;
        // The caller is one of the workers: a thread fewer, and its BLAS
        // buffers, already touched by the streaming, serve a solve too.
        while (helpers_.size() + 1 < workers_) helpers_.emplace_back([this] { help(); });
        std::unique_lock lock(mutex_);
        open_ = true;
        changed_.notify_all();
        work(lock);
        changed_.wait(lock, [&] { return running_jobs_ == 0; });
        open_ = false;
        failure = std::exchange(failure_, nullptr);
        if (failure) queue_.clear();
    }
#if defined(__GLIBC__)
    // The solves' buffers under the mmap threshold (spill chunks, LAPACK
    // work) leave holes in the heap below the results that outlive them;
    // their pages would stay resident and add to the streaming's peak.
    ::malloc_trim(0);
#endif
    if (failure) std::rethrow_exception(failure);
}

void eigen_pool::help() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return stopping_ || (open_ && !queue_.empty() && !failure_); });
        if (stopping_) return;
        work(lock);
    }
}

// Takes jobs while there are any and none failed; `lock` held on entry and exit.
void eigen_pool::work(std::unique_lock<std::mutex>& lock) {
    for (;;) {
        changed_.wait(lock, [&] {
            return failure_ || queue_.empty() || running_bytes_ == 0 ||
                   running_bytes_ + queue_.front().bytes <= capacity_bytes_;
        });
        if (failure_ || queue_.empty()) return;
        queued_job job = std::move(queue_.front());
        queue_.pop_front();
        running_bytes_ += job.bytes;
        ++running_jobs_;
        lock.unlock();
        std::exception_ptr failure;
        try {
            job.run();
        } catch (...) {
            failure = std::current_exception();
        }
        job.run = nullptr;  // frees the job's matrix before its bytes are released
        lock.lock();
        running_bytes_ -= job.bytes;
        --running_jobs_;
        if (failure && !failure_) failure_ = failure;
        changed_.notify_all();
    }
}

}  // namespace adaptk::detail
