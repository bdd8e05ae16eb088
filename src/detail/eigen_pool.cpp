#include "detail/eigen_pool.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include "detail/linalg.hpp"

namespace adaptk::detail {
namespace {

// The lowest offset of `room` at or after `from` where `bytes` aligned to `alignment` start.
std::size_t aligned_offset(std::span<std::byte> room, std::size_t from, std::size_t alignment) {
    const auto address = reinterpret_cast<std::uintptr_t>(room.data()) + from;
    return from + static_cast<std::size_t>((alignment - address % alignment) % alignment);
}

}  // namespace

eigen_pool::eigen_pool(std::size_t workers, room_provider room) : workers_(workers), room_provider_(std::move(room)) {
#if defined(__GLIBC__)
    // glibc gives each thread its own arena, where memory the main thread
    // freed (kept, not returned) cannot be reused: the solves' small buffers
    // would fault in fresh pages. One arena for the process lets them reuse it.
    if (workers > 0) ::mallopt(M_ARENA_MAX, 1);
#endif
}

void eigen_pool::submit(std::uint64_t bytes, std::size_t alignment, job work) {
    if (workers_ == 0) {
        const std::span<std::byte> room = room_provider_();
        const std::size_t offset = aligned_offset(room, 0, alignment);
        work(offset + bytes <= room.size() ? room.subspan(offset, bytes) : std::span<std::byte>{});
        return;
    }
    const std::lock_guard lock(mutex_);
    queue_.push_back({bytes, alignment, std::move(work)});
}

void eigen_pool::submit_first(std::uint64_t bytes, job work) {
    if (workers_ == 0) return submit(bytes, 1, std::move(work));  // now, at offset 0 (alignment 1)
    // First in the queue, it starts while nothing runs, where first fit
    // places it at the room's start (alignment 1: no padding).
    const std::lock_guard lock(mutex_);
    queue_.push_front({bytes, 1, std::move(work)});
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
        room_ = room_provider_();
        open_ = true;
        changed_.notify_all();
        work(lock);
        changed_.wait(lock, [&] { return running_jobs_ == 0; });
        open_ = false;
        room_ = {};
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

std::optional<std::span<std::byte>> eigen_pool::place(const queued_job& next) const {
    if (next.bytes > room_.size()) {
        if (running_jobs_ == 0) return std::span<std::byte>{};
        return std::nullopt;
    }
    if (alone_) return std::nullopt;
    std::vector<region> taken = running_;
    std::ranges::sort(taken, {}, &region::offset);
    // First fit: before the first region it does not overlap, else after the last.
    std::size_t offset = aligned_offset(room_, 0, next.alignment);
    for (const region& r : taken) {
        if (offset + next.bytes <= r.offset) break;
        offset = aligned_offset(room_, std::max(offset, r.offset + r.bytes), next.alignment);
    }
    if (offset + next.bytes <= room_.size()) return room_.subspan(offset, next.bytes);
    if (running_jobs_ == 0) return std::span<std::byte>{};  // cannot be aligned in the room: alone, in its own memory
    return std::nullopt;
}

// Takes jobs while there are any and none failed; `lock` held on entry and exit.
void eigen_pool::work(std::unique_lock<std::mutex>& lock) {
    for (;;) {
        std::optional<std::span<std::byte>> at;
        changed_.wait(lock, [&] { return failure_ || queue_.empty() || (at = place(queue_.front())).has_value(); });
        if (failure_ || queue_.empty()) return;
        queued_job job = std::move(queue_.front());
        queue_.pop_front();
        const bool alone = at->size() != job.bytes;
        const region mine{alone ? 0 : static_cast<std::size_t>(at->data() - room_.data()), at->size()};
        if (alone)
            alone_ = true;
        else
            running_.push_back(mine);
        ++running_jobs_;
        lock.unlock();
        std::exception_ptr failure;
        try {
            job.work(*at);
        } catch (...) {
            failure = std::current_exception();
        }
        job.work = nullptr;  // frees what the job captured before its region is given to another
        lock.lock();
        if (alone)
            alone_ = false;
        else
            running_.erase(std::ranges::find_if(running_, [&](const region& r) { return r.offset == mine.offset && r.bytes == mine.bytes; }));
        --running_jobs_;
        if (failure && !failure_) failure_ = failure;
        changed_.notify_all();
    }
}

}  // namespace adaptk::detail
