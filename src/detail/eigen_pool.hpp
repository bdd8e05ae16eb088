#pragma once
// Eigensolves side by side, one per core. LAPACK's tridiagonal reduction is
// memory-bound and gains little from BLAS threads: at d = 2048 one dsyevd
// takes 0.63 s on one thread and 0.40 s on two, while two single-threaded
// solves side by side finish 3.2 per second (BENCHMARKS.md, solver table).
// So jobs are queued while the caller streams, and run() solves them on the
// caller and workers − 1 threads with single-threaded BLAS: the
// streaming keeps every BLAS thread and the solves use the memory it frees
// between matrices. A job loads its matrix when it starts (from the spill
// file), so queued jobs hold nothing; running ones hold at most
// `capacity_bytes`.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>

namespace adaptk::detail {

class eigen_pool {
public:
    /// `workers` solves at once in run(), the caller's thread one of them (0:
    /// every job runs inline in submit()).
    eigen_pool(std::size_t workers, std::uint64_t capacity_bytes);
    eigen_pool(const eigen_pool&) = delete;
    eigen_pool& operator=(const eigen_pool&) = delete;

    std::size_t workers() const noexcept { return workers_; }

    /// Queues `job`, which holds `bytes` while it runs; without workers runs it now.
    void submit(std::uint64_t bytes, std::function<void()> job);
    /// Runs the queued jobs in order on the workers, BLAS single-threaded
    /// meanwhile, as many at once as their bytes fit the capacity (a larger
    /// job runs alone), and returns when all are done. Rethrows the first
    /// failure; no job starts after one failed.
    void run();

private:
    struct queued_job {
        std::uint64_t bytes;
        std::function<void()> run;
    };
    void work();

    std::size_t workers_;
    std::uint64_t capacity_bytes_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<queued_job> queue_;
    std::uint64_t running_bytes_ = 0;
    std::exception_ptr failure_;
};

}  // namespace adaptk::detail
