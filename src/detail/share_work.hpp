#pragma once
// Work split between this thread and helpers started for it: the BF16 Gram
// kernels' row blocks, the fp32 path's float64 additions. Starting a helper
// costs tens of µs, so callers share only work far larger than that (work
// split many times over goes to part_runner's kept threads).

#include <algorithm>
#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

namespace adaptk::detail {

/// Runs `task` on this thread and up to threads − 1 helpers (never more than
/// `tasks`); the task takes its work from a shared counter, so it is done
/// whatever the number of threads. Returns when all have finished. The task
/// must not throw on a helper.
template <class Task>
void share_work(int threads, std::size_t tasks, Task&& task) {
    std::vector<std::jthread> helpers;
    for (std::size_t t = 1; t < std::min(static_cast<std::size_t>(std::max(threads, 1)), tasks); ++t)
        helpers.emplace_back(std::ref(task));
    task();
}

}  // namespace adaptk::detail
