// adaptk-floor: this machine's lower bound for an exact adaptk-stream run on
// a model, measured now so it can be compared with the run in the same sitting.
//   Gram work: Σ vectors·d(d+1)/2 multiply-adds (one triangle) at the sgemm
//   rate measured at the accumulator's block shape (d × block, block = 1024),
//   plus the LAPACK decompositions the command needs, each timed at size d:
//   profile: one eigenvalues-only dsyevd per type + one top-K dsyevr (universal);
//   layers/report: also one eigenvalue solve per matrix (at min(vectors, d):
//   adaptk-stream decomposes the small XᵀX of a matrix with fewer vectors than
//   d; ssyevd, dsyevd for F64 files), a top-K dsyevr per type and the
//   projection pass (2 bases · 2·d·K flops per vector) at the sgemm rate. Those
//   solves and the types' run side by side, one per core on single-threaded
//   BLAS (src/detail/eigen_pool.hpp), so they are timed on one thread and
//   charged divided by the cores.
//   A BF16 checkpoint whose Grams take the accumulator's BF16 kernel (the CPU
//   has AVX512-BF16 or Arm BF16, ADAPTK_GRAM_KERNEL is not fp32) is charged that kernel's
//   rate at the same block shape instead (gram_kernel bf16).
// Prints one CSV row: command,vectors,matrices,types,dim,gram_gflop,sgemm_gflops,
// gram_s,eigen_s,floor_s,gram_kernel,gram_gflops (the rate charged for the Gram work).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <armadillo>

#include "adaptk/checkpoint.hpp"
#include "adaptk/dtype.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/spectrum.hpp"
#include "detail/linalg.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

template <class F>
double median_seconds(int runs, F&& f) {
    std::vector<double> times;
    for (int r = 0; r < runs; ++r) {
        const auto start = clock_type::now();
        f();
        times.push_back(seconds_since(start));
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

// C = X·Xᵀ with X d×b as a full sgemm: the rate the floor charges the triangle at.
double sgemm_gflops(std::size_t d, std::size_t block) {
    const arma::fmat x(d, block, arma::fill::randu);
    arma::fmat c(d, d);
    const arma::fmat y = x;  // a second operand: x * x.t() would take Armadillo's ssyrk shortcut
    auto run = [&] { c = x * y.t(); };
    run();
    const double seconds = median_seconds(5, run);
    return 2.0 * static_cast<double>(d) * static_cast<double>(d) * static_cast<double>(block) / seconds / 1e9;
}

// The accumulator's BF16 kernel on a d×block block: flops of the triangle
// (block·d(d+1)) per second.
double bf16_kernel_gflops(std::size_t d, std::size_t block) {
    const arma::fmat values(d, block, arma::fill::randn);
    std::vector<std::uint16_t> bits(values.n_elem);
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = adaptk::float_to_bf16(values[i]);
    adaptk::gram_accumulator gram(d);
    gram.add(bits.data(), block);  // allocations and first touch outside the timing
    const double seconds = median_seconds(5, [&] { gram.add(bits.data(), block); });
    return static_cast<double>(block) * static_cast<double>(d) * static_cast<double>(d + 1) / seconds / 1e9;
}

arma::mat symmetric_test_matrix(std::size_t d) {
    arma::mat a(d, d, arma::fill::randu);
    return a + a.t();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help") {
        std::cout << "Usage: adaptk-floor MODEL [profile|layers|report] [--k K]\n";
        return argc < 2 ? 2 : 0;
    }
    try {
        const std::string command = argc > 2 ? argv[2] : "profile";
        std::size_t k = 32;
        for (int i = 3; i + 1 < argc; ++i)
            if (std::string(argv[i]) == "--k") k = std::stoul(argv[i + 1]);
        const adaptk::checkpoint model(argv[1]);
        std::vector<std::string> notes;
        const std::uint64_t d = model.hidden_size(std::nullopt, notes);
        const auto matrices = model.matrices(d, notes);
        std::uint64_t vectors = 0;
        std::set<adaptk::weight_type> types;
        bool all_bf16 = true;
        for (const auto& m : matrices) {
            vectors += m.vector_count();
            types.insert(m.kind.type);
            all_bf16 = all_bf16 && m.type == adaptk::dtype::bf16;
        }
        const bool per_matrix = command == "layers" || command == "report";

        const double rate = sgemm_gflops(d, 1024);
        const bool bf16_kernel = all_bf16 && adaptk::active_gram_kernel() != adaptk::gram_kernel::fp32;
        const double gram_rate = bf16_kernel ? bf16_kernel_gflops(d, 1024) : rate;
        const double gram_flop = static_cast<double>(vectors) * static_cast<double>(d) * static_cast<double>(d + 1);
        // The projection pass decodes to float32 whatever the file: sgemm rate.
        const double projection_flop =
            per_matrix ? 2.0 * 2.0 * static_cast<double>(vectors) * static_cast<double>(d) * static_cast<double>(k) : 0.0;
        const double compute_flop = gram_flop + projection_flop;
        const double gram_seconds = gram_flop / (gram_rate * 1e9) + projection_flop / (rate * 1e9);

        // Eigenvalue solves by size and precision, each timed once.
        std::map<std::pair<std::size_t, bool>, double> eigenvalues_seconds;
        auto eigenvalues_at = [&](std::size_t n, bool single) {
            auto [at, fresh] = eigenvalues_seconds.emplace(std::pair(n, single), 0.0);
            if (fresh)
                at->second = median_seconds(3, [&] {
                    if (single)
                        adaptk::eigenvalues_descending(arma::conv_to<arma::fmat>::from(symmetric_test_matrix(n)));
                    else
                        adaptk::eigenvalues_descending(symmetric_test_matrix(n));
                });
            return at->second;
        };
        auto top_at = [&] { return median_seconds(3, [&] { adaptk::top_eigenpairs(symmetric_test_matrix(d), k); }); };
        const double top_seconds = top_at();  // the universal basis, on every BLAS thread
        double eigen_seconds = top_seconds;
        if (!per_matrix) {
            eigen_seconds += static_cast<double>(types.size()) * eigenvalues_at(d, false);
        } else {
            const int cores = std::max(adaptk::detail::blas_threads(), 1);
            adaptk::detail::set_blas_threads(1);
            double side_by_side = static_cast<double>(types.size()) * (eigenvalues_at(d, false) + top_at());
            for (const auto& m : matrices) {
                const std::uint64_t n = m.vector_count();
                const bool small_side = n < d && n <= 1024;
                side_by_side += eigenvalues_at(small_side ? n : d, !small_side && m.type != adaptk::dtype::f64);
            }
            adaptk::detail::set_blas_threads(cores);
            eigen_seconds += side_by_side / cores;
        }

        std::printf("command,vectors,matrices,types,dim,gram_gflop,sgemm_gflops,gram_s,eigen_s,floor_s,gram_kernel,"
                    "gram_gflops\n");
        std::printf("%s,%llu,%zu,%zu,%llu,%.1f,%.1f,%.2f,%.2f,%.2f,%s,%.1f\n", command.c_str(),
                    static_cast<unsigned long long>(vectors), matrices.size(), types.size(),
                    static_cast<unsigned long long>(d), compute_flop / 1e9, rate, gram_seconds, eigen_seconds,
                    gram_seconds + eigen_seconds, bf16_kernel ? "bf16" : "sgemm", gram_rate);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "adaptk-floor: " << e.what() << '\n';
        return 1;
    }
}
