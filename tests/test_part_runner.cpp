#define BOOST_TEST_MODULE part_runner
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "detail/part_runner.hpp"

using adaptk::detail::part_runner;

BOOST_AUTO_TEST_SUITE(part_runner_test)

BOOST_AUTO_TEST_CASE(every_part_runs_once_per_run_on_threads_kept_between_runs) {
    part_runner runner(3);
    BOOST_TEST(runner.threads() == 3u);
    std::set<std::thread::id> seen;
    for (std::size_t round = 0; round < 50; ++round) {
        const std::size_t parts = 1 + round % 3;
        std::vector<std::atomic<int>> runs(3);
        std::vector<std::thread::id> ids(parts);
        runner.run(parts, [&](std::size_t part) {
            ++runs[part];
            ids[part] = std::this_thread::get_id();
        });
        for (std::size_t part = 0; part < 3; ++part) BOOST_TEST(runs[part] == (part < parts ? 1 : 0));
        BOOST_TEST((ids[0] == std::this_thread::get_id()));  // part 0 on the caller
        const std::set<std::thread::id> distinct(ids.begin(), ids.end());
        BOOST_TEST(distinct.size() == parts);  // the parts ran side by side, not one after another
        seen.insert(ids.begin(), ids.end());
    }
    BOOST_TEST(seen.size() == 3u);  // the caller and the same two helpers every time
}

BOOST_AUTO_TEST_CASE(a_failure_is_rethrown_once_every_part_has_finished) {
    part_runner runner(2);
    std::atomic<bool> other_finished = false;
    BOOST_CHECK_THROW(runner.run(2,
                                 [&](std::size_t part) {
                                     if (part == 0) throw std::runtime_error("part 0 failed");
                                     std::this_thread::sleep_for(std::chrono::milliseconds(50));
                                     other_finished = true;
                                 }),
                      std::runtime_error);
    BOOST_TEST(other_finished.load());
    std::atomic<int> runs = 0;  // the runner still works after a failure
    runner.run(2, [&](std::size_t) { ++runs; });
    BOOST_TEST(runs == 2);
}

BOOST_AUTO_TEST_CASE(one_thread_runs_the_part_on_the_caller) {
    part_runner runner(1);
    BOOST_TEST(runner.threads() == 1u);
    std::thread::id id;
    runner.run(1, [&](std::size_t) { id = std::this_thread::get_id(); });
    BOOST_TEST((id == std::this_thread::get_id()));
}

BOOST_AUTO_TEST_SUITE_END()
