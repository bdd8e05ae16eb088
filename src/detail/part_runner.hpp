#pragma once
// Worker threads kept between runs: the randomized method's GEMMs and the
// reading of its blocks are split in parts many thousand times a pass, too
// often to start a thread each time; the projection pass's matrices use it
// for its rethrow once every part has finished.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace adaptk::detail {

// Runs work(0) on the calling thread and work(1 .. parts − 1) on helper
// threads kept for the pass (a thread started per block cost 4.7 system CPU
// s in all with 256-vector blocks at d = 4096); rethrows the first failure
// once all parts have finished.
class part_runner {
public:
    explicit part_runner(std::size_t threads) {
        for (std::size_t index = 1; index < threads; ++index) helpers_.emplace_back([this, index] { serve(index); });
    }
    ~part_runner() {
        {
            const std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
    }  // helpers joined
    part_runner(const part_runner&) = delete;
    part_runner& operator=(const part_runner&) = delete;

    std::size_t threads() const { return helpers_.size() + 1; }

    /// parts ≤ threads().
    void run(std::size_t parts, const std::function<void(std::size_t)>& work) {
        failures_.assign(parts, nullptr);
        {
            const std::lock_guard lock(mutex_);
            work_ = &work;
            parts_ = parts;
            running_ = parts - 1;
            ++generation_;
        }
        if (parts > 1) wake_.notify_all();
        guarded(0);
        std::unique_lock lock(mutex_);
        finished_.wait(lock, [&] { return running_ == 0; });
        work_ = nullptr;
        lock.unlock();
        for (const auto& failure : failures_)
            if (failure) std::rethrow_exception(failure);
    }

private:
    void guarded(std::size_t part) {
        try {
            (*work_)(part);
        } catch (...) {
            failures_[part] = std::current_exception();
        }
    }
    void serve(std::size_t index) {
        std::uint64_t seen = 0;
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
            if (index >= parts_) continue;  // not needed for this block
            lock.unlock();
            guarded(index);
            lock.lock();
            if (--running_ == 0) finished_.notify_one();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_, finished_;
    const std::function<void(std::size_t)>* work_ = nullptr;
    std::vector<std::exception_ptr> failures_;
    std::size_t parts_ = 0, running_ = 0;
    std::uint64_t generation_ = 0;
    bool stopping_ = false;
    std::vector<std::jthread> helpers_;  // last: joined before the members they use go
};

}  // namespace adaptk::detail
