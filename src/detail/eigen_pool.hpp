#pragma once
// Eigensolves off the streaming thread. LAPACK's tridiagonal reduction is
// memory-bound and gains little from BLAS threads: at d = 2048 one dsyevd
// takes 0.63 s on one thread and 0.40 s on two, while two single-threaded
// solves side by side finish 3.2 per second (BENCHMARKS.md, solver table).
// So while a pool with workers lives, BLAS runs single-threaded and each
// worker thread takes one solve at a time, as the caller streams the next
// matrix. Jobs own their matrices; the pool holds at most `capacity_bytes`
// of them (queued or running) and submit() waits for room, so the memory
// plan (planned_bytes) holds whatever the relative speeds.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace adaptk::detail {

class eigen_pool {
public:
    /// `workers` threads (0: every job runs inline in submit(), BLAS threads
    /// untouched); with workers, BLAS is set to one thread until destruction.
    eigen_pool(std::size_t workers, std::uint64_t capacity_bytes);
    /// Drops queued jobs, waits for running ones, restores the BLAS threads.
    ~eigen_pool();
    eigen_pool(const eigen_pool&) = delete;
    eigen_pool& operator=(const eigen_pool&) = delete;

    /// Queues `job`, which holds `bytes` until it returns. Waits while the
    /// pool would exceed its capacity (an idle pool takes any job). Rethrows
    /// the exception of a job that failed earlier; no job runs after one failed.
    void submit(std::uint64_t bytes, std::function<void()> job);
    /// Waits for every submitted job; rethrows the first failure.
    void wait();

private:
    struct queued_job {
        std::uint64_t bytes;
        std::function<void()> run;
    };
    void work();
    void rethrow_failure();  // with mutex_ held

    std::uint64_t capacity_bytes_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<queued_job> queue_;
    std::uint64_t held_bytes_ = 0;  ///< queued and running jobs
    bool stopping_ = false;
    std::exception_ptr failure_;
    int saved_blas_threads_ = 0;
    std::vector<std::jthread> workers_;
};

}  // namespace adaptk::detail
