#define BOOST_TEST_MODULE eigen_pool
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
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

BOOST_AUTO_TEST_SUITE(eigen_pool_suite)

BOOST_DATA_TEST_CASE(every_job_lands_in_its_own_slot, bdata::make({0, 1, 2, 3}), workers) {
    constexpr std::size_t n = 40, jobs = 9;
    std::vector<arma::vec> values(jobs);
    {
        eigen_pool pool(static_cast<std::size_t>(workers), 2 * 8 * n * n);
        for (std::size_t j = 0; j < jobs; ++j)
            pool.submit(8 * n * n, [&out = values[j], c = with_known_spectrum(n + j, static_cast<unsigned>(j))]() mutable {
                out = adaptk::eigenvalues_descending(std::move(c));
            });
        pool.run();
    }
    for (std::size_t j = 0; j < jobs; ++j) {
        const arma::vec expected = arma::regspace(static_cast<double>(n + j), -1.0, 1.0);
        BOOST_TEST(arma::norm(values[j] - expected) <= 1e-12 * arma::norm(expected), "job " << j);
    }
}

BOOST_AUTO_TEST_CASE(running_bytes_never_exceed_the_capacity) {
    constexpr std::uint64_t capacity = 100;
    std::atomic<std::uint64_t> held{0}, most{0};
    eigen_pool pool(3, capacity);
    for (int j = 0; j < 20; ++j) {
        const std::uint64_t bytes = 30 + 10 * (j % 3);  // 30, 40, 50
        pool.submit(bytes, [&, bytes] {
            const std::uint64_t now = held += bytes;
            for (std::uint64_t seen = most; now > seen && !most.compare_exchange_weak(seen, now);) {}
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            held -= bytes;
        });
    }
    pool.run();
    BOOST_TEST(most.load() <= capacity);
    BOOST_TEST(most.load() >= 60u);  // more than one job ran at once
}

BOOST_AUTO_TEST_CASE(queued_jobs_wait_for_run) {
    std::atomic<int> runs{0};
    eigen_pool pool(2, 100);
    for (int j = 0; j < 4; ++j) pool.submit(1, [&] { ++runs; });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    BOOST_TEST(runs.load() == 0);
    pool.run();
    BOOST_TEST(runs.load() == 4);
    pool.submit(1, [&] { ++runs; });
    pool.run();
    BOOST_TEST(runs.load() == 5);
}

BOOST_AUTO_TEST_CASE(a_job_larger_than_the_capacity_runs_alone) {
    std::atomic<int> runs{0};
    eigen_pool pool(2, 10);
    pool.submit(50, [&] { ++runs; });
    pool.submit(50, [&] { ++runs; });
    pool.run();
    BOOST_TEST(runs.load() == 2);
}

BOOST_DATA_TEST_CASE(a_failed_job_is_rethrown_and_stops_the_rest, bdata::make({0, 2}), workers) {
    std::atomic<int> after{0};
    eigen_pool pool(static_cast<std::size_t>(workers), 1);
    auto submit_all = [&] {
        pool.submit(1, [] { throw std::runtime_error("dsyevd failed with info 7"); });
        for (int j = 0; j < 50; ++j) pool.submit(1, [&] { ++after; });
        pool.run();
    };
    BOOST_CHECK_EXCEPTION(submit_all(), std::runtime_error,
                          [](const std::runtime_error& e) { return std::string(e.what()) == "dsyevd failed with info 7"; });
    BOOST_TEST(after.load() == 0);  // capacity 1: each later job waited for the failed one
}

BOOST_AUTO_TEST_CASE(blas_runs_single_threaded_while_jobs_run) {
    const int before = adaptk::detail::blas_threads();
    std::atomic<int> inside{-1};
    eigen_pool pool(2, 1);
    pool.submit(1, [&] { inside = adaptk::detail::blas_threads(); });
    BOOST_TEST(adaptk::detail::blas_threads() == before);
    pool.run();
    BOOST_TEST(inside.load() == 1);
    BOOST_TEST(adaptk::detail::blas_threads() == before);
    eigen_pool inline_pool(0, 1);
    inline_pool.submit(1, [&] { inside = adaptk::detail::blas_threads(); });
    BOOST_TEST(inside.load() == before);
}

BOOST_AUTO_TEST_SUITE_END()
