#include "detail/eigen_pool.hpp"

#include <utility>

#include "detail/linalg.hpp"

namespace adaptk::detail {

eigen_pool::eigen_pool(std::size_t workers, std::uint64_t capacity_bytes) : capacity_bytes_(capacity_bytes) {
    if (workers == 0) return;
    saved_blas_threads_ = blas_threads();
    set_blas_threads(1);
    for (std::size_t w = 0; w < workers; ++w) workers_.emplace_back([this] { work(); });
}

eigen_pool::~eigen_pool() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
        queue_.clear();
    }
    changed_.notify_all();
    workers_.clear();  // joins
    if (saved_blas_threads_ > 0) set_blas_threads(saved_blas_threads_);
}

void eigen_pool::rethrow_failure() {
    if (failure_) std::rethrow_exception(failure_);
}

void eigen_pool::submit(std::uint64_t bytes, std::function<void()> job) {
    if (workers_.empty()) {
        job();
        return;
    }
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return failure_ || held_bytes_ == 0 || held_bytes_ + bytes <= capacity_bytes_; });
    rethrow_failure();
    held_bytes_ += bytes;
    queue_.push_back({bytes, std::move(job)});
    lock.unlock();
    changed_.notify_all();
}

void eigen_pool::wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return failure_ || held_bytes_ == 0; });
    rethrow_failure();
}

void eigen_pool::work() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        queued_job job = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        std::exception_ptr failure;
        try {
            job.run();
        } catch (...) {
            failure = std::current_exception();
        }
        job.run = nullptr;  // frees the job's matrix before its bytes are released
        lock.lock();
        held_bytes_ -= job.bytes;
        if (failure && !failure_) {
            failure_ = failure;
            queue_.clear();  // their bytes are void: wait() and submit() see the failure first
        }
        changed_.notify_all();
    }
}

}  // namespace adaptk::detail
