#define BOOST_TEST_MODULE eigen_pool
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include <armadillo>

#include "adaptk/spectrum.hpp"
#include "detail/eigen_pool.hpp"
#include "detail/linalg.hpp"

namespace bdata = boost::unit_test::data;
using adaptk::detail::eigen_pool;

namespace {

// A symmetric matrix with eigenvalues 1..n: Q·diag(1..n)·Qᵀ for a random orthonormal Q.
arma::mat with_known_spectrum(std::size_t n, unsigned seed) {
    arma::arma_rng::set_seed(seed);
    arma::mat q, r;
    arma::qr(q, r, arma::mat(n, n, arma::fill::randn));
    return q * arma::diagmat(arma::regspace(1.0, static_cast<double>(n))) * q.t();
}

}  // namespace

// Named, not anonymous: the data test case's jobs (a template's lambdas) capture it.
namespace room_for_tests {

// A room of `bytes` the pool lends, counting how often it is asked for.
struct test_room {
    explicit test_room(std::size_t bytes) : memory(bytes) {}
    eigen_pool::room_provider provider() {
        return [this] {
            ++lent;
            return std::span<std::byte>(memory);
        };
    }
    bool holds(std::span<std::byte> region) const {
        return region.data() >= memory.data() && region.data() + region.size() <= memory.data() + memory.size();
    }
    std::vector<std::byte> memory;
    std::atomic<int> lent{0};
};

}  // namespace room_for_tests
using room_for_tests::test_room;

BOOST_AUTO_TEST_SUITE(eigen_pool_suite)

BOOST_DATA_TEST_CASE(every_job_solves_its_own_matrix_in_its_region, bdata::make({0, 1, 2, 3}), workers) {
    constexpr std::size_t n = 40, jobs = 9;
    std::vector<arma::vec> values(jobs);
    test_room room(2 * 8 * (n + jobs) * (n + jobs));
    {
        eigen_pool pool(static_cast<std::size_t>(workers), room.provider());
        for (std::size_t j = 0; j < jobs; ++j) {
            const std::size_t size = n + j;
            pool.submit(8 * size * size, alignof(double),
                        [&room, &out = values[j], size, c = with_known_spectrum(size, static_cast<unsigned>(j))](std::span<std::byte> region) {
                            BOOST_TEST_REQUIRE(room.holds(region));
                            BOOST_TEST_REQUIRE(region.size() == c.n_elem * sizeof(double));
                            arma::mat in_region(reinterpret_cast<double*>(region.data()), size, size, false, false);
                            in_region = c;
                            out = adaptk::eigenvalues_descending(std::move(in_region));
                        });
        }
        pool.run();
    }
    for (std::size_t j = 0; j < jobs; ++j) {
        const arma::vec expected = arma::regspace(static_cast<double>(n + j), -1.0, 1.0);
        BOOST_TEST(arma::norm(values[j] - expected) <= 1e-12 * arma::norm(expected), "job " << j);
    }
}

// Jobs of mixed sizes and alignments, each filling its region with its own
// mark and checking it is still there after a pause: two regions that
// overlapped, or one outside the room, would fail here.
BOOST_AUTO_TEST_CASE(running_regions_never_overlap_and_stay_in_the_room) {
    constexpr std::size_t room_bytes = 101;
    test_room room(room_bytes);
    std::mutex mutex;
    std::size_t held = 0, most = 0;
    std::atomic<int> clobbered{0}, misplaced{0};
    eigen_pool pool(3, room.provider());
    for (int j = 0; j < 40; ++j) {
        const std::uint64_t bytes = 26 + 10 * static_cast<std::uint64_t>(j % 3) + static_cast<std::uint64_t>(j % 2);
        const std::size_t alignment = std::size_t{1} << (j % 4);  // 1, 2, 4, 8
        pool.submit(bytes, alignment, [&, bytes, alignment, mark = static_cast<std::byte>(j + 1)](std::span<std::byte> region) {
            if (!room.holds(region) || region.size() != bytes ||
                reinterpret_cast<std::uintptr_t>(region.data()) % alignment != 0)
                ++misplaced;
            {
                const std::lock_guard lock(mutex);
                held += bytes;
                most = std::max(most, held);
            }
            std::fill(region.begin(), region.end(), mark);
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            if (std::ranges::any_of(region, [&](std::byte b) { return b != mark; })) ++clobbered;
            const std::lock_guard lock(mutex);
            held -= bytes;
        });
    }
    pool.run();
    BOOST_TEST(misplaced.load() == 0);
    BOOST_TEST(clobbered.load() == 0);
    BOOST_TEST(most <= room_bytes);
    BOOST_TEST(most >= 52u);  // more than one job ran at once
}

// A job whose data already lies at the room's start is given that region
// though others were queued before it, and none of them is placed over its
// data while it runs (they fill their regions with zeros).
BOOST_DATA_TEST_CASE(a_job_submitted_first_gets_the_start_of_the_room_and_keeps_it, bdata::make({0, 2}), workers) {
    test_room room(100);
    eigen_pool pool(static_cast<std::size_t>(workers), room.provider());
    std::atomic<int> runs{0};
    bool in_place = false, intact = false;
    for (int j = 0; j < 2 && workers > 0; ++j)
        pool.submit(30, 1, [&](std::span<std::byte> region) {
            std::ranges::fill(region, std::byte{0});
            ++runs;
        });
    std::fill_n(room.memory.begin(), 40, std::byte{7});  // the data the job finds in place
    pool.submit_first(40, [&](std::span<std::byte> region) {
        in_place = region.data() == room.memory.data() && region.size() == 40;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        intact = std::ranges::all_of(region, [](std::byte b) { return b == std::byte{7}; });
        ++runs;
    });
    pool.run();
    BOOST_TEST(runs.load() == (workers > 0 ? 3 : 1));
    BOOST_TEST(in_place);
    BOOST_TEST(intact);
}

BOOST_AUTO_TEST_CASE(queued_jobs_wait_for_run_which_lends_the_room_once) {
    std::atomic<int> runs{0};
    test_room room(100);
    eigen_pool pool(2, room.provider());
    for (int j = 0; j < 4; ++j) pool.submit(1, 1, [&](std::span<std::byte>) { ++runs; });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    BOOST_TEST(runs.load() == 0);
    BOOST_TEST(room.lent.load() == 0);
    pool.run();
    BOOST_TEST(runs.load() == 4);
    BOOST_TEST(room.lent.load() == 1);
    pool.submit(1, 1, [&](std::span<std::byte>) { ++runs; });
    pool.run();
    BOOST_TEST(runs.load() == 5);
    BOOST_TEST(room.lent.load() == 2);
}

BOOST_AUTO_TEST_CASE(a_job_larger_than_the_room_runs_alone_without_a_region) {
    test_room room(10);
    std::atomic<int> running{0}, most{0}, with_region{0};
    eigen_pool pool(2, room.provider());
    auto job = [&](std::span<std::byte> region) {
        const int now = ++running;
        most = std::max(most.load(), now);
        if (!region.empty()) ++with_region;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        --running;
    };
    pool.submit(50, 8, job);
    pool.submit(4, 4, job);
    pool.submit(50, 8, job);
    pool.submit(4, 4, job);
    pool.run();
    BOOST_TEST(with_region.load() == 2);  // the small ones
    BOOST_TEST(most.load() == 1);         // each small one came after a large one, which ran alone
}

// 12 bytes at an 8-byte boundary do not fit a room of 15 that starts one
// byte past one: the job must still run (alone, in memory of its own).
BOOST_AUTO_TEST_CASE(a_job_the_room_cannot_align_runs_alone_without_a_region) {
    test_room room(16);
    eigen_pool pool(2, [&] { return std::span<std::byte>(room.memory).subspan(1); });
    std::atomic<int> without_region{0}, with_region{0};
    pool.submit(12, 8, [&](std::span<std::byte> region) { region.empty() ? ++without_region : ++with_region; });
    pool.submit(4, 4, [&](std::span<std::byte> region) { region.size() == 4 ? ++with_region : ++without_region; });
    pool.run();
    BOOST_TEST(without_region.load() == 1);
    BOOST_TEST(with_region.load() == 1);
}

BOOST_AUTO_TEST_CASE(without_workers_a_job_runs_in_submit_in_the_room) {
    test_room room(64);
    eigen_pool pool(0, room.provider());
    bool ran = false;
    pool.submit(24, 8, [&](std::span<std::byte> region) {
        ran = room.holds(region) && region.size() == 24;
    });
    BOOST_TEST(ran);
    BOOST_TEST(room.lent.load() == 1);
    pool.submit(65, 8, [&](std::span<std::byte> region) { ran = region.empty(); });
    BOOST_TEST(ran);
}

BOOST_DATA_TEST_CASE(a_failed_job_is_rethrown_and_stops_the_rest, bdata::make({0, 2}), workers) {
    std::atomic<int> after{0};
    test_room room(1);
    eigen_pool pool(static_cast<std::size_t>(workers), room.provider());
    auto submit_all = [&] {
        pool.submit(1, 1, [](std::span<std::byte>) { throw std::runtime_error("dsyevd failed with info 7"); });
        for (int j = 0; j < 50; ++j) pool.submit(1, 1, [&](std::span<std::byte>) { ++after; });
        pool.run();
    };
    BOOST_CHECK_EXCEPTION(submit_all(), std::runtime_error,
                          [](const std::runtime_error& e) { return std::string(e.what()) == "dsyevd failed with info 7"; });
    BOOST_TEST(after.load() == 0);  // a room of 1 byte: each later job waited for the failed one
}

BOOST_AUTO_TEST_CASE(blas_runs_single_threaded_while_jobs_run) {
    const int before = adaptk::detail::blas_threads();
    std::atomic<int> inside{-1};
    test_room room(1);
    eigen_pool pool(2, room.provider());
    pool.submit(1, 1, [&](std::span<std::byte>) { inside = adaptk::detail::blas_threads(); });
    BOOST_TEST(adaptk::detail::blas_threads() == before);
    pool.run();
    BOOST_TEST(inside.load() == 1);
    BOOST_TEST(adaptk::detail::blas_threads() == before);
    eigen_pool inline_pool(0, room.provider());
    inline_pool.submit(1, 1, [&](std::span<std::byte>) { inside = adaptk::detail::blas_threads(); });
    BOOST_TEST(inside.load() == before);
}

BOOST_AUTO_TEST_SUITE_END()
