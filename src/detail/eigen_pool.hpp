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
#include <thread>
#include <vector>

namespace adaptk::detail {

class eigen_pool {
public:
    /// `workers` solves at once in run(), the caller's thread one of them (0:
    /// every job runs inline in submit()).
    eigen_pool(std::size_t workers, std::uint64_t capacity_bytes);
    ~eigen_pool();
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
    void work(std::unique_lock<std::mutex>& lock);
    void help();

    std::size_t workers_;
    std::uint64_t capacity_bytes_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<queued_job> queue_;
    std::uint64_t running_bytes_ = 0;
    std::size_t running_jobs_ = 0;
    bool open_ = false;  ///< inside run(): helpers take jobs
    bool stopping_ = false;
    std::exception_ptr failure_;
    /// The workers beside the caller, started by the first run() and kept:
    /// OpenBLAS gives every thread that calls it a buffer of its own and
    /// keeps it, so a thread per run() grew the peak RSS run by run.
    std::vector<std::jthread> helpers_;
};

}  // namespace adaptk::detail
