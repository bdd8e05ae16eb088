#pragma once
// Eigensolves side by side, one per core. LAPACK's tridiagonal reduction is
// memory-bound and gains little from BLAS threads: at d = 2048 one dsyevd
// takes 0.63 s on one thread and 0.40 s on two, while two single-threaded
// solves side by side finish 3.2 per second (BENCHMARKS.md, solver table).
// So jobs are queued while the caller streams, and run() solves them on the
// caller and workers − 1 threads with single-threaded BLAS: the streaming
// keeps every BLAS thread. The solves run in memory the caller lends (the
// Gram accumulator's buffer, idle between matrices), each job in a region of
// its own: nothing is allocated, zeroed or faulted in per solve. A job loads
// its matrix when it starts (from the spill file), so queued jobs hold nothing.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

namespace adaptk::detail {

class eigen_pool {
public:
    /// A job's work: `region` is its declared bytes of the lent room, shared
    /// with no other running job, or empty when they do not fit the room even
    /// alone (then the job allocates its own memory and runs alone).
    using job = std::function<void(std::span<std::byte> region)>;
    /// The memory jobs may use; asked for whenever jobs are about to run (in
    /// run(), and in submit() without workers), and left to them until they end.
    using room_provider = std::function<std::span<std::byte>()>;

    /// `workers` solves at once in run(), the caller's thread one of them (0:
    /// every job runs inline in submit()).
    eigen_pool(std::size_t workers, room_provider room);
    ~eigen_pool();
    eigen_pool(const eigen_pool&) = delete;
    eigen_pool& operator=(const eigen_pool&) = delete;

    std::size_t workers() const noexcept { return workers_; }

    /// Queues `work`, which needs `bytes` aligned to `alignment` (a power of
    /// two); without workers runs it now.
    void submit(std::uint64_t bytes, std::size_t alignment, job work);
    /// Queues `work` ahead of every queued job, with the room's first `bytes`
    /// as its region (or runs it now, without workers): for a job whose data
    /// already lies there. One per run(); `bytes` must fit the room.
    void submit_first(std::uint64_t bytes, job work);
    /// Runs the queued jobs in order on the workers, BLAS single-threaded
    /// meanwhile, as many at once as their regions fit side by side in the
    /// room (a job larger than the room runs alone), and returns when all are
    /// done. Rethrows the first failure; no job starts after one failed.
    void run();

private:
    struct queued_job {
        std::uint64_t bytes;
        std::size_t alignment;
        job work;
    };
    struct region {
        std::size_t offset, bytes;
    };
    void work(std::unique_lock<std::mutex>& lock);
    void help();
    /// Where `next` goes beside the running jobs' regions, or nothing while
    /// it must wait; a job that does not fit the room even alone (larger, or
    /// not at its alignment) gets an empty region once nothing runs.
    std::optional<std::span<std::byte>> place(const queued_job& next) const;

    std::size_t workers_;
    room_provider room_provider_;
    std::span<std::byte> room_;  ///< lent for the current run()
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<queued_job> queue_;
    std::vector<region> running_;  ///< the running jobs' regions of the room
    std::size_t running_jobs_ = 0;
    bool alone_ = false;           ///< a job without a region is running
    bool open_ = false;            ///< inside run(): helpers take jobs
    bool stopping_ = false;
    std::exception_ptr failure_;
    /// The workers beside the caller, started by the first run() and kept:
    /// OpenBLAS gives every thread that calls it a buffer of its own and
    /// keeps it, so a thread per run() grew the peak RSS run by run.
    std::vector<std::jthread> helpers_;
};

}  // namespace adaptk::detail
