// adaptk-eigen-bench: the all-eigenvalue LAPACK drivers at one size, the
// choice behind the per-matrix solves (detail/eigen_pool.hpp, --eig-precision).
// Each run is one solve of a d×d symmetric matrix with no vectors (the
// tridiagonal reduction, d³·4/3 flops, dominates), timed alone; rows with
// concurrent 2 run two solves side by side on their own threads, BLAS at one
// thread each, as the solver pool does. CPU time is the process's user + sys
// over the rows's solves (BLAS helper threads included: it shows what a
// second thread costs, where wall time on a shared machine cannot).
// Prints CSV: solver,dim,blas_threads,concurrent,solves,wall_s_per_solve,
// cpu_s_per_solve,solves_per_s.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <armadillo>

#include "detail/linalg.hpp"

namespace {

using adaptk::detail::eigen_driver;

double cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// A Gram-like test matrix: X·Xᵀ of d×2d Gaussian X, a Marchenko–Pastur spectrum.
template <class Real>
arma::Mat<Real> test_matrix(std::size_t d) {
    arma::arma_rng::set_seed(1);
    const arma::Mat<Real> x(d, 2 * d, arma::fill::randn);
    return x * x.t();
}

// `runs` solves on each of `concurrent` threads; returns wall and CPU seconds.
template <class Real>
std::pair<double, double> time_solves(const arma::Mat<Real>& matrix, eigen_driver driver, std::size_t concurrent,
                                      int runs) {
    auto solve_runs = [&] {
        arma::Mat<Real> a;
        arma::Col<Real> w(matrix.n_rows);
        for (int r = 0; r < runs; ++r) {
            a = matrix;
            const int info = adaptk::detail::eigenvalues_symmetric(a.memptr(), a.n_rows, w.memptr(), driver);
            if (info != 0) throw std::runtime_error("info " + std::to_string(info));
        }
    };
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    {
        std::vector<std::jthread> threads;
        for (std::size_t t = 1; t < concurrent; ++t) threads.emplace_back(solve_runs);
        solve_runs();
    }
    return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), cpu_seconds() - cpu_start};
}

template <class Real>
void row(std::size_t d, eigen_driver driver, int threads, std::size_t concurrent, int runs) {
    const arma::Mat<Real> matrix = test_matrix<Real>(d);
    adaptk::detail::set_blas_threads(threads);
    time_solves(matrix, driver, 1, 1);  // workspace and first touch outside the timing
    const auto [wall, cpu] = time_solves(matrix, driver, concurrent, runs);
    const double solves = static_cast<double>(runs) * static_cast<double>(concurrent);
    std::printf("%s,%zu,%d,%zu,%.0f,%.3f,%.3f,%.2f\n",
                std::string(adaptk::detail::driver_name(driver, sizeof(Real) == 4)).c_str(), d, threads, concurrent,
                solves, wall / static_cast<double>(runs), cpu / solves, solves / wall);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--help") {
        std::cout << "Usage: adaptk-eigen-bench [D [RUNS]]   (default 2048 3)\n";
        return 0;
    }
    try {
        const std::size_t d = argc > 1 ? std::stoul(argv[1]) : 2048;
        const int runs = argc > 2 ? std::stoi(argv[2]) : 3;
        std::printf("solver,dim,blas_threads,concurrent,solves,wall_s_per_solve,cpu_s_per_solve,solves_per_s\n");
        for (const eigen_driver driver : {eigen_driver::divide_conquer, eigen_driver::mrrr, eigen_driver::two_stage})
            for (const int threads : {1, 2}) {
                row<double>(d, driver, threads, 1, runs);
                row<float>(d, driver, threads, 1, runs);
            }
        row<double>(d, eigen_driver::divide_conquer, 1, 2, runs);
        row<float>(d, eigen_driver::divide_conquer, 1, 2, runs);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "adaptk-eigen-bench: " << e.what() << '\n';
        return 1;
    }
}
