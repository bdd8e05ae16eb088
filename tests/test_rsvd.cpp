#define BOOST_TEST_MODULE rsvd
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <barrier>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "adaptk/error.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/rsvd.hpp"
#include "detail/linalg.hpp"
#include "model_fixture.hpp"

namespace bdata = boost::unit_test::data;
using namespace adaptk;

namespace {

// ---- known spectra: group g is X_g = V_g·diag(s_g)·U_gᵀ (d×n, vectors as
// columns) with random orthonormal V_g (d×r) and U_g (n×r), so C_g = X_g X_gᵀ
// has eigenvalues s_g² and eigenvectors V_g. ----

arma::vec power_decay(std::size_t r, double exponent, double scale = 1.0) {
    arma::vec s(r);
    for (std::size_t i = 0; i < r; ++i) s[i] = scale * std::pow(i + 1.0, -exponent);
    return s;
}

// s_i = i^-1/4 for the first `head` values, then flat at `tail` times the last of them.
arma::vec flat_tail(std::size_t r, std::size_t head, double tail) {
    arma::vec s(r, arma::fill::value(tail * std::pow(static_cast<double>(head), -0.25)));
    for (std::size_t i = 0; i < head; ++i) s[i] = std::pow(i + 1.0, -0.25);
    return s;
}

arma::vec geometric_decay(std::size_t r, double ratio) {
    arma::vec s(r);
    for (std::size_t i = 0; i < r; ++i) s[i] = std::pow(ratio, static_cast<double>(i));
    return s;
}

struct groups_fixture {
    std::vector<arma::mat> x;  // d×n per group, vectors as columns
    std::size_t dim() const { return x.front().n_rows; }
    arma::mat gram(std::size_t g) const { return x[g] * x[g].t(); }
    std::vector<arma::fmat> as_float() const {
        std::vector<arma::fmat> out;
        for (const auto& m : x) out.push_back(arma::conv_to<arma::fmat>::from(m));
        return out;
    }
};

groups_fixture make_groups(std::size_t d, std::size_t n, const std::vector<arma::vec>& singular_values,
                           unsigned seed) {
    arma::arma_rng::set_seed(seed);
    groups_fixture f;
    for (const auto& s : singular_values) {
        const arma::mat v = adaptk::test::random_orthonormal(d, s.n_elem);
        const arma::mat u = adaptk::test::random_orthonormal(n, s.n_elem);
        f.x.push_back(v * arma::diagmat(s) * u.t());
    }
    return f;
}

// Streams every group's columns in blocks of `block`, round-robin over the
// groups so their blocks interleave, and counts the passes.
template <class Real>
pass_runner stream(const std::vector<arma::Mat<Real>>& xs, std::size_t block, std::size_t* passes = nullptr) {
    return [&xs, block, passes](block_visitor& visit) {
        if (passes) ++*passes;
        std::vector<std::size_t> next(xs.size(), 0);
        for (bool more = true; more;) {
            more = false;
            for (std::size_t g = 0; g < xs.size(); ++g) {
                if (next[g] >= xs[g].n_cols) continue;
                const std::size_t count = std::min<std::size_t>(block, xs[g].n_cols - next[g]);
                visit(g, xs[g].colptr(next[g]), count);
                next[g] += count;
                more = true;
            }
        }
    };
}

struct dense_pairs {
    arma::vec values;  // all d, descending
    arma::mat vectors;
};
dense_pairs dense_eig(const arma::mat& c) {
    dense_pairs p;
    BOOST_TEST_REQUIRE(arma::eig_sym(p.values, p.vectors, c));
    p.values = arma::reverse(p.values);
    p.vectors = arma::fliplr(p.vectors);
    return p;
}

double max_relative_error(const arma::vec& approx, const arma::vec& exact) {
    return arma::max(arma::abs(approx - exact.head(approx.n_elem)) / exact.head(approx.n_elem));
}

// The dense float64 reference itself carries rounding of order d·u·‖C‖.
double reference_slack(const arma::mat& c) { return 64 * c.n_rows * std::numeric_limits<double>::epsilon() * arma::trace(c); }

// |λ_i − θ_i| ≤ value_errors[i] for every i and error_estimate ≥ max_i |λ_i − θ_i|.
void check_bounds(const rsvd_group_result& r, const arma::mat& c, const std::string& what) {
    const arma::vec exact = dense_eig(c).values;
    const arma::vec error = arma::abs(exact.head(r.values.n_elem) - r.values);
    const double slack = reference_slack(c);
    BOOST_TEST_CONTEXT(what) {
        for (std::size_t i = 0; i < r.values.n_elem; ++i)
            BOOST_TEST(error[i] <= r.value_errors[i] + slack,
                       "value " << i << ": error " << error[i] << " > bound " << r.value_errors[i]);
        BOOST_TEST(error.max() <= r.error_estimate + slack);
        BOOST_TEST(r.error_estimate == r.value_errors.max());
        // Interlacing: Ritz values never exceed the eigenvalues, up to the
        // products' rounding (float32 products for float blocks).
        BOOST_TEST(arma::max(r.values - exact.head(r.values.n_elem)) <= slack + r.rounding);
    }
}

void check_orthonormal_descending(const rsvd_group_result& r) {
    BOOST_TEST(arma::norm(r.vectors.t() * r.vectors - arma::eye(r.vectors.n_cols, r.vectors.n_cols), "fro") <= 1e-12);
    for (std::size_t i = 1; i < r.values.n_elem; ++i) BOOST_TEST(r.values[i] <= r.values[i - 1]);
}

rsvd_options make_options(std::size_t k, std::size_t q, std::uint64_t seed = 1) {
    rsvd_options o;
    o.k = k;
    o.power_iterations = q;
    o.seed = seed;
    return o;
}

// Exact universal capture: the top-k eigenvectors of Σ w_g C_g, energy of each C_g in their prefixes.
std::vector<arma::vec> dense_capture(const groups_fixture& f, const std::vector<double>& w, std::size_t k) {
    arma::mat universal(f.dim(), f.dim(), arma::fill::zeros);
    for (std::size_t g = 0; g < f.x.size(); ++g) universal += w[g] * f.gram(g);
    const arma::mat v = dense_eig(universal).vectors.head_cols(k);
    std::vector<arma::vec> out;
    for (std::size_t g = 0; g < f.x.size(); ++g) {
        const arma::mat c = f.gram(g);
        out.push_back(arma::cumsum(arma::sum(v % (c * v), 0).t()) / arma::trace(c));
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rsvd)

// ---- accuracy on known spectra ----

// Fast decay: s_i = 0.7^i (λ halves per index) is exact to 1e-6 from the
// basic range finder (q = 0, two passes); s_i = i^-2 (λ_i = i^-4) needs the
// power iterations: its error at λ_k goes as (λ_{ℓ+1}/λ_k)^{2(q+1)} = (8/19)^{8(q+1)}.
BOOST_DATA_TEST_CASE(fast_decay_top_k_within_1e_6,
                     bdata::make({1, 64, 1000}) * bdata::make({0, 1}), block, spectrum) {
    constexpr std::size_t d = 200, n = 300, k = 8;
    const std::size_t q = spectrum == 0 ? 0 : 2;
    const auto f = spectrum == 0
                       ? make_groups(d, n, {geometric_decay(d, 0.7), geometric_decay(d, 0.6), geometric_decay(d, 0.5)}, 5)
                       : make_groups(d, n, {power_decay(d, 2.0), power_decay(d, 2.0, 3.0), power_decay(d, 2.5)}, 5);
    std::size_t passes = 0;
    const rsvd_result r =
        randomized_eigen(d, 3, {}, make_options(k, q), stream(f.x, static_cast<std::size_t>(block), &passes));
    // q + 2 passes, and the universal's up to two more while its captures still move (q = 0: they do).
    BOOST_TEST(r.universal_extra_passes <= rsvd_options{}.universal_extra_passes);
    BOOST_TEST(passes == q + 2 + r.universal_extra_passes);
    BOOST_TEST(r.passes == passes);
    BOOST_TEST(r.k == k);
    BOOST_TEST(r.sketch_size == k + 10);
    for (std::size_t g = 0; g < 3; ++g) {
        const arma::mat c = f.gram(g);
        const dense_pairs exact = dense_eig(c);
        const double error = max_relative_error(r.groups[g].values, exact.values);
        BOOST_TEST_MESSAGE((spectrum == 0 ? "geometric" : "i^-2") << " q=" << q << " block " << block << " group " << g
                                                                  << ": max relative eigenvalue error " << error
                                                                  << ", estimate/λ_k "
                                                                  << r.groups[g].error_estimate / exact.values[k - 1]);
        BOOST_TEST(error <= 1e-6);
        check_orthonormal_descending(r.groups[g]);
        check_bounds(r.groups[g], c, "group " + std::to_string(g));
        // Vectors match the dense ones up to sign.
        const arma::vec overlap = arma::abs(arma::sum(r.groups[g].vectors % exact.vectors.head_cols(k), 0).t());
        BOOST_TEST(arma::min(overlap) >= 1 - 1e-6);
    }
}

BOOST_AUTO_TEST_CASE(power_law_without_power_iterations_follows_the_gap_ratio) {
    // s_i = i^-2 with q = 0: λ_i's error is about λ_i·(λ_{ℓ+1}/λ_i)²·c, far
    // below 1e-6 at the top and ~1e-3 at λ_k.
    constexpr std::size_t d = 200, n = 300, k = 8;
    const auto f = make_groups(d, n, {power_decay(d, 2.0)}, 5);
    const rsvd_result r = randomized_eigen(d, 1, {}, make_options(k, 0), stream(f.x, 64));
    const arma::vec exact = dense_eig(f.gram(0)).values;
    const arma::vec relative = (exact.head(k) - r.groups[0].values) / exact.head(k);
    BOOST_TEST_MESSAGE("i^-2, q=0: relative errors " << relative.t());
    BOOST_TEST(relative[0] <= 1e-6);
    BOOST_TEST(relative[k - 1] <= 1e-2);
    for (std::size_t i = 0; i < k; ++i) BOOST_TEST(relative[i] <= 10 * std::pow(exact[r.sketch_size] / exact[i], 2.0));
    check_bounds(r.groups[0], f.gram(0), "q=0");
}

BOOST_AUTO_TEST_CASE(slow_decay_error_falls_with_power_iterations) {
    constexpr std::size_t d = 256, n = 320, k = 16;
    // s_i = i^-1/2 (λ_i = 1/i) and a flat tail: both converge slowly at ℓ = 26.
    const auto f = make_groups(d, n, {power_decay(d, 0.5), flat_tail(d, 20, 0.8)}, 9);
    std::vector<double> errors;  // worst over both groups
    double power_law_q2 = 0;     // group 0 at q = 2
    for (const std::size_t q : {0u, 2u, 4u}) {
        // ℓ = k + 20 = 36: at the default oversample 10 (ℓ = 26) q = 2 leaves ~4% at λ_k = 1/16.
        rsvd_options options = make_options(k, q);
        options.oversample = 20;
        const rsvd_result r = randomized_eigen(d, 2, {}, options, stream(f.x, 64));
        double worst = 0;
        for (std::size_t g = 0; g < 2; ++g) {
            const arma::mat c = f.gram(g);
            const double error = max_relative_error(r.groups[g].values, dense_eig(c).values);
            BOOST_TEST_MESSAGE("slow decay q=" << q << " group " << g << ": max relative error " << error
                                               << ", estimate " << r.groups[g].error_estimate);
            worst = std::max(worst, error);
            if (q == 2 && g == 0) power_law_q2 = error;
            check_bounds(r.groups[g], c, "q " + std::to_string(q) + " group " + std::to_string(g));
        }
        errors.push_back(worst);
    }
    BOOST_TEST(errors[1] < errors[0]);
    BOOST_TEST(errors[2] < errors[1]);
    BOOST_TEST(power_law_q2 <= 0.01);
}

BOOST_DATA_TEST_CASE(universal_capture_matches_dense_computation,
                     bdata::make({0, 1, 2}) * bdata::make({std::size_t{1}, std::size_t{2}}), weighting, q) {
    constexpr std::size_t d = 96, n = 150, k = 10;
    // Groups with different decays in different bases: C_u is not any one of them.
    const auto f = make_groups(d, n, {power_decay(d, 1.0, 2.0), power_decay(d, 0.7), power_decay(d, 1.5, 0.5)}, 13);
    std::vector<double> w(3, 1.0), explicit_weights;
    rsvd_options options = make_options(k, q);
    if (weighting == 1) {
        options.trace_weighting = true;
        for (std::size_t g = 0; g < 3; ++g) w[g] = 1.0 / arma::trace(f.gram(g));
    } else if (weighting == 2) {
        explicit_weights = w = {0.5, 2.0, 0.0};
    }
    const rsvd_result r = randomized_eigen(d, 3, explicit_weights, options, stream(f.x, 64));
    const auto exact = dense_capture(f, w, k);
    BOOST_TEST_REQUIRE(r.universal_capture.size() == 3u);
    double worst = 0;
    for (std::size_t g = 0; g < 3; ++g) {
        BOOST_TEST_REQUIRE(r.universal_capture[g].n_elem == k);
        const double diff = arma::max(arma::abs(r.universal_capture[g] - exact[g]));
        worst = std::max(worst, diff);
        BOOST_TEST(diff <= 0.005, "group " << g << ": capture differs by " << diff);
        BOOST_TEST(r.weights[g] == w[g], boost::test_tools::tolerance(1e-12));
    }
    BOOST_TEST_MESSAGE("universal capture weighting " << weighting << " q=" << q << ": max |Δ| " << worst);

    // The universal result is itself a Ritz approximation of C_u, with its own bound.
    arma::mat universal(d, d, arma::fill::zeros);
    for (std::size_t g = 0; g < 3; ++g) universal += w[g] * f.gram(g);
    check_bounds(r.universal, universal, "universal");
    check_orthonormal_descending(r.universal);
    BOOST_TEST(r.universal.trace == arma::trace(universal), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(r.universal.count == 3 * n);
}

// C_u, a sum of groups in different bases, is flatter than any of them: with
// universal_tolerance 0 it takes its extra passes alone. Its basis then holds
// the groups' basis and one more block per pass (same Ω), so its Ritz values
// can only rise; the groups' results are the same bits; the moved probes
// still bound its error; a tolerance no change exceeds takes none.
BOOST_AUTO_TEST_CASE(universal_goes_on_alone_while_its_captures_move) {
    constexpr std::size_t d = 96, n = 120, k = 8, q = 1;  // ℓ = 18: 54 + 36 columns, not the whole space
    const auto f = make_groups(d, n, {power_decay(d, 0.3), power_decay(d, 0.4, 1.5), flat_tail(d, 12, 0.6)}, 17);
    arma::mat universal(d, d, arma::fill::zeros);
    for (std::size_t g = 0; g < 3; ++g) universal += f.gram(g);
    auto run = [&](std::size_t extra, double tolerance, std::size_t& passes) {
        rsvd_options options = make_options(k, q);
        options.universal_extra_passes = extra;
        options.universal_tolerance = tolerance;
        return randomized_eigen(d, 3, {}, options, stream(f.x, 32, &passes));
    };
    std::size_t passes_none = 0, passes_two = 0, passes_settled = 0;
    const rsvd_result none = run(0, 0, passes_none);
    const rsvd_result two = run(2, 0, passes_two);
    const rsvd_result settled = run(2, std::numeric_limits<double>::infinity(), passes_settled);
    BOOST_TEST(passes_none == q + 2);
    BOOST_TEST(none.universal_extra_passes == 0u);
    BOOST_TEST(passes_two == q + 4);
    BOOST_TEST(two.passes == q + 4);
    BOOST_TEST(two.universal_extra_passes == 2u);
    BOOST_TEST(passes_settled == q + 2);
    BOOST_TEST(settled.universal_extra_passes == 0u);
    BOOST_TEST(two.universal.basis_size == none.universal.basis_size + 2 * two.sketch_size);
    BOOST_TEST(none.universal_capture_change > 0);
    BOOST_TEST(two.universal_capture_change < none.universal_capture_change);
    for (std::size_t i = 0; i < k; ++i) BOOST_TEST(two.universal.values[i] >= none.universal.values[i] - two.universal.rounding);
    for (std::size_t g = 0; g < 3; ++g) {
        BOOST_TEST(arma::approx_equal(two.groups[g].values, none.groups[g].values, "absdiff", 0.0));
        BOOST_TEST(arma::approx_equal(two.groups[g].value_errors, none.groups[g].value_errors, "absdiff", 0.0));
    }
    check_bounds(two.universal, universal, "universal, two extra passes");
    check_orthonormal_descending(two.universal);
    const auto exact = dense_capture(f, {1.0, 1.0, 1.0}, k);
    double error_none = 0, error_two = 0;
    for (std::size_t g = 0; g < 3; ++g) {
        error_none = std::max(error_none, std::abs(none.universal_capture[g][k - 1] - exact[g][k - 1]));
        error_two = std::max(error_two, std::abs(two.universal_capture[g][k - 1] - exact[g][k - 1]));
    }
    BOOST_TEST_MESSAGE("universal capture error at k: " << error_none << " without, " << error_two
                                                        << " with two extra passes; last changes "
                                                        << none.universal_capture_change << ", "
                                                        << two.universal_capture_change);
    BOOST_TEST(error_two < error_none);
}

BOOST_AUTO_TEST_CASE(universal_capture_of_the_whole_space_is_one) {
    constexpr std::size_t d = 20;
    const auto f = make_groups(d, 30, {power_decay(d, 0.3), power_decay(d, 1.0)}, 3);
    const rsvd_result r = randomized_eigen(d, 2, {}, make_options(50, 1), stream(f.x, 7));
    BOOST_TEST(r.k == d);
    BOOST_TEST(r.sketch_size == d);
    for (std::size_t g = 0; g < 2; ++g) {
        BOOST_TEST(r.universal_capture[g][d - 1] == 1.0, boost::test_tools::tolerance(1e-12));
        // The basis spans everything: the Ritz values are the eigenvalues.
        const arma::mat c = f.gram(g);
        BOOST_TEST(max_relative_error(r.groups[g].values, dense_eig(c).values) <= 1e-10);
        check_bounds(r.groups[g], c, "group " + std::to_string(g));
        BOOST_TEST(r.groups[g].error_estimate <= 1e-12 * r.groups[g].trace);
    }
}

// ---- the error estimate ----

BOOST_DATA_TEST_CASE(error_estimate_bounds_true_error,
                     bdata::make({0.25, 0.5, 1.0, 2.0}) * bdata::make({std::size_t{0}, std::size_t{1}, std::size_t{3}}) *
                         bdata::make({false, true}),
                     exponent, q, use_float) {
    constexpr std::size_t d = 128, n = 160, k = 12;
    auto f = make_groups(d, n, {power_decay(d, exponent), power_decay(d, exponent + 0.5, 4.0), flat_tail(d, 10, 0.3)}, 21);
    if (use_float)  // make the float data the truth: round it once
        for (auto& x : f.x) x = arma::conv_to<arma::mat>::from(arma::conv_to<arma::fmat>::from(x));
    const auto xf = f.as_float();
    const rsvd_options options = make_options(k, q, 77);
    const rsvd_result r = use_float ? randomized_eigen(d, 3, {}, options, stream(xf, 33))
                                    : randomized_eigen(d, 3, {}, options, stream(f.x, 33));
    arma::mat universal(d, d, arma::fill::zeros);
    for (std::size_t g = 0; g < 3; ++g) {
        const arma::mat c = f.gram(g);
        universal += c;
        check_bounds(r.groups[g], c, "group " + std::to_string(g));
        // range_error bounds ‖(I − QQᵀ)C‖, which is at least λ_{m+1} for the m-column basis.
        BOOST_TEST(r.groups[g].basis_size == std::min((q + 2) * r.sketch_size, d));
        BOOST_TEST(r.groups[g].range_error >= dense_eig(c).values[r.groups[g].basis_size] * (1 - 1e-9));
    }
    check_bounds(r.universal, universal, "universal");
    const arma::vec exact = dense_eig(f.gram(0)).values;
    BOOST_TEST_MESSAGE("exponent " << exponent << " q=" << q << (use_float ? " float" : " double") << ": group 0 true error "
                                   << arma::max(arma::abs(exact.head(k) - r.groups[0].values)) << ", estimate "
                                   << r.groups[0].error_estimate);
}

BOOST_AUTO_TEST_CASE(error_estimate_is_quadratic_for_values_above_the_tail) {
    // Where θ_i clears the tail bound the estimate follows the true error
    // (quadratic in the residual), not λ_{ℓ+1}: check it is not vacuous there.
    constexpr std::size_t d = 128, n = 160, k = 8;
    const auto f = make_groups(d, n, {power_decay(d, 0.75)}, 4);
    const rsvd_result r = randomized_eigen(d, 1, {}, make_options(k, 3), stream(f.x, 16));
    const rsvd_group_result& g = r.groups[0];
    const arma::vec exact = dense_eig(f.gram(0)).values;
    std::size_t certified = 0;
    for (std::size_t i = 0; i < k; ++i) {
        const double error = exact[i] - g.values[i];
        BOOST_TEST_MESSAGE("λ_" << i << " = " << exact[i] << ": error " << error << ", bound " << g.value_errors[i]);
        if (g.values[i] > 1.25 * g.tail_norm) {
            ++certified;
            BOOST_TEST(g.value_errors[i] <= 100 * std::abs(error) + 1e-12 * exact[0]);
        }
    }
    BOOST_TEST_MESSAGE("tail bound " << g.tail_norm << " vs λ_ℓ+1 " << exact[r.sketch_size] << "; residual " << g.residual_norm);
    BOOST_TEST(certified >= 3u);
    BOOST_TEST(g.tail_norm >= exact[r.sketch_size]);
}

// ---- precision, traces, determinism ----

BOOST_DATA_TEST_CASE(trace_is_exact_for_double_blocks, bdata::make({1, 64, 1000}), block) {
    constexpr std::size_t d = 50;
    const auto f = make_groups(d, 1200, {power_decay(d, 0.5), power_decay(d, 1.0, 10.0)}, 8);
    const rsvd_result r = randomized_eigen(d, 2, {}, make_options(4, 0), stream(f.x, static_cast<std::size_t>(block)));
    for (std::size_t g = 0; g < 2; ++g) {
        BOOST_TEST(r.groups[g].trace == arma::accu(arma::square(f.x[g])), boost::test_tools::tolerance(1e-12));
        BOOST_TEST(r.groups[g].count == 1200u);
    }
}

BOOST_DATA_TEST_CASE(float_blocks_agree_with_double_blocks, bdata::make({1, 64, 1000}), block) {
    constexpr std::size_t d = 64, k = 6;
    const auto f = make_groups(d, 1100, {power_decay(d, 1.0), power_decay(d, 2.0)}, 12);
    const auto xf = f.as_float();
    const rsvd_result single = randomized_eigen(d, 2, {}, make_options(k, 2), stream(xf, static_cast<std::size_t>(block)));
    const rsvd_result twice = randomized_eigen(d, 2, {}, make_options(k, 2), stream(f.x, static_cast<std::size_t>(block)));
    for (std::size_t g = 0; g < 2; ++g) {
        // Exact float64 trace of the float32 values.
        const arma::mat rounded = arma::conv_to<arma::mat>::from(xf[g]);
        BOOST_TEST(single.groups[g].trace == arma::accu(arma::square(rounded)), boost::test_tools::tolerance(1e-12));
        // The float32 products move each Ritz value by at most the rounding allowance.
        const double diff = arma::max(arma::abs(single.groups[g].values - twice.groups[g].values));
        BOOST_TEST_MESSAGE("float vs double block " << block << " group " << g << ": " << diff << " (allowance "
                                                    << single.groups[g].rounding << ", λ_k " << twice.groups[g].values[k - 1] << ")");
        BOOST_TEST(diff <= single.groups[g].rounding + twice.groups[g].rounding);
        BOOST_TEST(diff <= 1e-4 * twice.groups[g].values[k - 1]);
        check_bounds(single.groups[g], rounded * rounded.t(), "float group " + std::to_string(g));
    }
}

// A block longer than the flush size is summed by one float32 GEMM: the
// rounding allowance grows with it instead of assuming 4096 terms.
BOOST_AUTO_TEST_CASE(rounding_allowance_follows_a_block_longer_than_the_flush_size) {
    constexpr std::size_t d = 16, n = 4 * adaptk::float_flush_vectors;
    const auto f = make_groups(d, n, {power_decay(d, 1.0)}, 5);
    const auto xf = f.as_float();
    auto allowance = [&](std::size_t block) {
        return randomized_eigen(d, 1, {}, make_options(4, 1), stream(xf, block)).groups[0];
    };
    const rsvd_group_result small = allowance(1000), whole = allowance(n);
    // ρ = u·(1 + √d + √n)·tr C + 3·‖KᵀK − I‖_F·tr C per basis column, √m of it
    // per value (rsvd.cpp, step 5).
    auto expected = [&](const rsvd_group_result& r, double run) {
        const double products = 0x1.0p-24 * (1 + std::sqrt(d * 1.0) + std::sqrt(run)) * r.trace;
        return std::sqrt(static_cast<double>(r.basis_size)) * (products + 3 * r.basis_loss * r.trace);
    };
    BOOST_TEST(small.rounding == expected(small, 4000), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(whole.rounding == expected(whole, static_cast<double>(n)), boost::test_tools::tolerance(1e-12));
    check_bounds(whole, arma::conv_to<arma::mat>::from(xf[0]) * arma::conv_to<arma::mat>::from(xf[0]).t(), "one block");
}

// Float-only groups keep their Krylov bases in float32, groups with a double
// block in float64: at odd shapes the float32-basis Ritz values stay within the
// stated allowance of the float64 run on the same (float-rounded) data, and
// both obey their bounds against the dense float64 spectrum.
BOOST_DATA_TEST_CASE(float32_bases_agree_with_float64_bases, bdata::make({1, 13, 333}), block) {
    constexpr std::size_t d = 37, k = 5;
    const auto f = make_groups(d, 211, {power_decay(d, 0.7), flat_tail(d, 6, 0.5), geometric_decay(d, 0.8)}, 17);
    const auto xf = f.as_float();
    std::vector<arma::mat> rounded;
    for (const auto& x : xf) rounded.push_back(arma::conv_to<arma::mat>::from(x));
    const rsvd_result single = randomized_eigen(d, 3, {}, make_options(k, 1), stream(xf, static_cast<std::size_t>(block)));
    const rsvd_result twice = randomized_eigen(d, 3, {}, make_options(k, 1), stream(rounded, static_cast<std::size_t>(block)));
    const double u = 0x1.0p-24;
    for (std::size_t g = 0; g < 3; ++g) {
        const auto& s = single.groups[g];
        const auto& t = twice.groups[g];
        BOOST_TEST_CONTEXT("group " << g << ", block " << block) {
            const double m = static_cast<double>(s.basis_size);
            BOOST_TEST(s.basis_loss > 0.0);  // rounded to float32: not orthonormal to the bit
            BOOST_TEST(s.basis_loss <= 4 * u * m);
            BOOST_TEST(t.basis_loss <= 1e-13);
            BOOST_TEST(arma::max(arma::abs(s.values - t.values)) <= s.rounding + t.rounding);
            check_bounds(s, rounded[g] * rounded[g].t(), "float32 basis");
            check_bounds(t, rounded[g] * rounded[g].t(), "float64 basis");
            // The Ritz vectors of a float32 basis are orthonormal to its rounding.
            BOOST_TEST(arma::norm(s.vectors.t() * s.vectors - arma::eye(k, k), "fro") <= 2 * s.basis_loss + 1e-12);
        }
    }
    BOOST_TEST(single.universal.basis_loss > 0.0);
    BOOST_TEST(twice.universal.basis_loss <= 1e-13);
}

BOOST_AUTO_TEST_CASE(mixed_float_and_double_blocks_in_one_group) {
    constexpr std::size_t d = 40, k = 5;
    const auto f = make_groups(d, 200, {power_decay(d, 1.0)}, 31);
    const arma::fmat head = arma::conv_to<arma::fmat>::from(f.x[0].head_cols(100));
    const arma::mat tail = f.x[0].tail_cols(100);
    const arma::mat truth = arma::join_rows(arma::conv_to<arma::mat>::from(head), tail);
    const rsvd_result r = randomized_eigen(d, 1, {}, make_options(k, 2), [&](block_visitor& visit) {
        visit(0, tail.memptr(), 50);
        visit(0, head.memptr(), 100);
        visit(0, tail.colptr(50), 50);
    });
    check_bounds(r.groups[0], truth * truth.t(), "mixed");
    BOOST_TEST(r.groups[0].trace == arma::accu(arma::square(truth)), boost::test_tools::tolerance(1e-12));
}

// Two processes (here threads) each stream half of every group's "matrices"
// (runs of 20 vectors, end_run after each) and sum their passes through the
// combiner, as MPI ranks do: both get the one-stream result, up to float64
// summation order, and its bounds hold against the dense reference.
BOOST_AUTO_TEST_CASE(a_stream_split_over_processes_equals_the_whole_stream) {
    constexpr std::size_t d = 24, matrix = 20;
    const auto f = make_groups(d, 80, {power_decay(d, 0.5), power_decay(d, 1.0)}, 12);
    const auto xf = f.as_float();
    rsvd_options o = make_options(5, 2);
    o.trace_weighting = true;
    // Matrix j of every group is streamed by process j % 2 (`share`), or by the only process (share 2).
    auto run_share = [&](std::size_t share) {
        return [&, share](block_visitor& visit) {
            for (std::size_t g = 0; g < xf.size(); ++g)
                for (std::size_t first = 0, j = 0; first < xf[g].n_cols; first += matrix, ++j) {
                    if (share != 2 && j % 2 != share) continue;
                    visit(g, xf[g].colptr(first), matrix);
                    visit.end_run();
                }
        };
    };
    const rsvd_result whole = randomized_eigen(d, 2, {}, o, run_share(2));

    std::barrier<> meet(2);
    std::span<double> posted[2];
    std::size_t combines = 0;
    auto combiner = [&](std::size_t me) {
        return [&, me](std::span<double> values, combine_op op) {
            posted[me] = values;
            meet.arrive_and_wait();  // both posted
            const std::span<double> other = posted[1 - me];
            std::vector<double> out(values.size());
            // Boost.Test asserts on the main thread only: a mismatch shows as unequal results.
            for (std::size_t i = 0; i < std::min(values.size(), other.size()); ++i)
                out[i] = op == combine_op::sum ? values[i] + other[i] : std::max(values[i], other[i]);
            meet.arrive_and_wait();  // both read
            std::copy(out.begin(), out.end(), values.begin());
            if (me == 0) ++combines;
        };
    };
    rsvd_result parts[2];
    {
        std::jthread second([&] { parts[1] = randomized_eigen(d, 2, {}, o, run_share(1), combiner(1)); });
        parts[0] = randomized_eigen(d, 2, {}, o, run_share(0), combiner(0));
    }
    BOOST_TEST(combines > 0u);
    auto close = [](const arma::mat& a, const arma::mat& b) {
        return a.n_elem == b.n_elem && arma::norm(a - b, "inf") <= 1e-9 * std::max(arma::norm(b, "inf"), 1e-300);
    };
    for (const rsvd_result& part : parts) {
        BOOST_TEST(part.passes == whole.passes);
        for (std::size_t g = 0; g < 2; ++g) {
            BOOST_TEST(part.groups[g].count == whole.groups[g].count);
            BOOST_TEST(part.groups[g].trace == whole.groups[g].trace, boost::test_tools::tolerance(1e-12));
            BOOST_TEST(close(part.groups[g].values, whole.groups[g].values));
            BOOST_TEST(close(part.groups[g].value_errors, whole.groups[g].value_errors));
            BOOST_TEST(close(part.universal_capture[g], whole.universal_capture[g]));
            check_bounds(part.groups[g], f.gram(g), "group " + std::to_string(g));
        }
        BOOST_TEST(close(part.universal.values, whole.universal.values));
    }
    // The two processes hold the same bits.
    BOOST_TEST(std::memcmp(parts[0].universal.values.memptr(), parts[1].universal.values.memptr(),
                           parts[0].universal.values.n_elem * sizeof(double)) == 0);
}

// The pass's GEMMs on row ranges inside larger matrices (detail::gemm, the
// visitor's split between threads) against Armadillo's products of the copies,
// in float32 and float64, with and without the transpose and with beta 0 and 1.
BOOST_AUTO_TEST_CASE(gemm_on_submatrices_equals_the_dense_product) {
    auto check = [](auto real) {
        using Real = decltype(real);
        using matrix = arma::Mat<Real>;
        arma::arma_rng::set_seed(3);
        const matrix a = arma::randn<matrix>(13, 7), b = arma::randn<matrix>(11, 5);
        matrix c = arma::randn<matrix>(9, 5);
        const matrix c_before = c;
        const double tolerance = std::is_same_v<Real, float> ? 1e-5 : 1e-13;
        // rows 2..5 of A (4×7) times rows 1..7 of B (7×5) added to rows 3..6 of C
        detail::gemm(false, 4, 5, 7, a.memptr() + 2, 13, b.memptr() + 1, 11, Real(1), c.memptr() + 3, 9);
        const matrix sum = c_before.rows(3, 6) + a.rows(2, 5) * b.rows(1, 7);
        BOOST_TEST(arma::abs(c.rows(3, 6) - sum).max() <= tolerance);
        BOOST_TEST(arma::approx_equal(c.rows(0, 2), c_before.rows(0, 2), "absdiff", 0));  // other rows untouched
        BOOST_TEST(arma::approx_equal(c.rows(7, 8), c_before.rows(7, 8), "absdiff", 0));
        // rows 0..10 of A's columns 1..3 transposed (3×11) times B (11×5) into rows 4..6 of C, beta 0
        detail::gemm(true, 3, 5, 11, a.colptr(1), 13, b.memptr(), 11, Real(0), c.memptr() + 4, 9);
        const matrix product = a.submat(0, 1, 10, 3).t() * b;
        BOOST_TEST(arma::abs(c.rows(4, 6) - product).max() <= tolerance);
    };
    check(0.0f);
    check(0.0);
}

// Each block's P = XᵀB is split by vectors between the BLAS threads, X·P by
// rows of d into the one pending sum, one-threaded BLAS each: one worker or
// three, the bounds hold against the dense Grams, the values agree to float32
// rounding, and the caller's thread count is back. The uneven stream sends
// each group whole in blocks split into 1, 3, 3 and 1 parts (the first block
// after a flush overwrites the sum, whatever its split), and ends a run after
// the second block: two flushes add to one group's C_g·Q_u.
BOOST_AUTO_TEST_CASE(blocks_split_between_workers_keep_the_bounds) {
    constexpr std::size_t d = 48, k = 6;
    const auto f = make_groups(d, 400, {power_decay(d, 0.5), power_decay(d, 1.0)}, 9);
    const auto xf = f.as_float();
    const pass_runner uneven = [&xf](block_visitor& visit) {
        constexpr std::array<std::size_t, 4> sizes{40, 200, 100, 60};
        for (std::size_t g = 0; g < xf.size(); ++g)
            for (std::size_t next = 0, i = 0; next < xf[g].n_cols; next += sizes[i++ % sizes.size()]) {
                visit(g, xf[g].colptr(next), std::min<std::size_t>(sizes[i % sizes.size()], xf[g].n_cols - next));
                if (i == 1) visit.end_run();
            }
    };
    const int threads = detail::blas_threads();
    auto run = [&](int workers, const pass_runner& blocks) {
        detail::set_blas_threads(workers);  // a no-op where the BLAS has no thread control
        const int lent = detail::blas_threads();
        const rsvd_result r = randomized_eigen(d, 2, {}, make_options(k, 2), blocks);
        BOOST_TEST(detail::blas_threads() == lent);
        return r;
    };
    const rsvd_result one = run(1, stream(xf, 200)), three = run(3, stream(xf, 200)), three_uneven = run(3, uneven);
    detail::set_blas_threads(threads);
    arma::mat universal(d, d, arma::fill::zeros);
    for (std::size_t g = 0; g < 2; ++g) {
        const arma::mat truth = arma::conv_to<arma::mat>::from(xf[g]);
        universal += truth * truth.t();
        check_bounds(one.groups[g], truth * truth.t(), "one worker, group " + std::to_string(g));
        check_bounds(three.groups[g], truth * truth.t(), "three workers, group " + std::to_string(g));
        check_bounds(three_uneven.groups[g], truth * truth.t(), "uneven blocks, group " + std::to_string(g));
        for (const rsvd_result* other : {&three, &three_uneven}) {
            BOOST_TEST(arma::max(arma::abs(one.groups[g].values - other->groups[g].values)) <=
                       1e-5 * one.groups[g].trace);
            BOOST_TEST(one.groups[g].trace == other->groups[g].trace, boost::test_tools::tolerance(1e-14));
        }
        // W_g summed over the flushes: a flush's C_g·Q_u lost would move the capture by far more.
        BOOST_TEST(arma::max(arma::abs(one.universal_capture[g] - three_uneven.universal_capture[g])) <= 1e-4);
    }
    check_bounds(three_uneven.universal, universal, "uneven blocks, universal");
    BOOST_TEST(arma::max(arma::abs(one.universal.values - three_uneven.universal.values)) <= 1e-5 * one.universal.trace);
}

// Between passes the engine holds each Gram's state (rsvd.hpp) and nothing
// else d-sized: Ω, Q₀ and the raw probes, d×(2ℓ + r) float64, go once
// used (kept, they were 13 MiB of the peak at d = 16384). glibc's count of
// the heap in use, every arena, at the start of each pass, against per Gram
// a float32 basis and probes d×(m + r), a float64 product d×(ℓ + r) and two
// m×m float64, + 5% for the allocator's rounding (the draws would be +20%).
BOOST_AUTO_TEST_CASE(passes_hold_the_krylov_states_and_no_random_draws) {
#if defined(__GLIBC__)
    constexpr std::size_t d = 1024, n = 64, groups = 2, ell = 12, m = 4 * ell, r = 8;
    const auto xf = make_groups(d, n, {power_decay(n, 0.5), power_decay(n, 1.0)}, 4).as_float();
    rsvd_options o = make_options(8, 2);
    o.oversample = ell - o.k;
    o.error_probes = r;
    o.universal_extra_passes = 0;
    auto in_use = [] {
        const struct mallinfo2 heap = ::mallinfo2();
        return static_cast<double>(heap.uordblks + heap.hblkhd);
    };
    const pass_runner streamed = stream(xf, 32);
    const double before = in_use();
    double most = 0;
    const rsvd_result result = randomized_eigen(d, groups, {}, o, [&](block_visitor& visit) {
        most = std::max(most, in_use() - before);
        streamed(visit);
    });
    BOOST_TEST_REQUIRE(result.passes == 4u);
    if (most <= 0) {
        BOOST_TEST_MESSAGE("skipped: malloc's counts do not see this heap (a sanitizer's allocator)");
        return;
    }
    const double per_gram = 4.0 * d * (m + r) + 8.0 * d * (ell + r) + 16.0 * m * m;
    BOOST_TEST_MESSAGE("heap in use at a pass's start: " << most << " B; the states: " << (groups + 1) * per_gram);
    BOOST_TEST(most <= 1.05 * (groups + 1) * per_gram);
#else
    BOOST_TEST_MESSAGE("skipped: needs glibc's mallinfo2");
#endif
}

BOOST_AUTO_TEST_CASE(same_seed_same_bits_other_seed_other_bits) {
    constexpr std::size_t d = 80;
    const auto f = make_groups(d, 100, {power_decay(d, 0.5), power_decay(d, 1.0)}, 2);
    const auto xf = f.as_float();
    auto run = [&](std::uint64_t seed) {
        rsvd_options o = make_options(6, 2, seed);
        o.trace_weighting = true;
        return randomized_eigen(d, 2, {}, o, stream(xf, 17));
    };
    const rsvd_result a = run(42), b = run(42), c = run(43);
    auto same_bits = [](const arma::mat& x, const arma::mat& y) {
        return x.n_elem == y.n_elem && std::memcmp(x.memptr(), y.memptr(), x.n_elem * sizeof(double)) == 0;
    };
    for (std::size_t g = 0; g < 2; ++g) {
        BOOST_TEST(same_bits(a.groups[g].values, b.groups[g].values));
        BOOST_TEST(same_bits(a.groups[g].vectors, b.groups[g].vectors));
        BOOST_TEST(same_bits(a.groups[g].value_errors, b.groups[g].value_errors));
        BOOST_TEST(same_bits(a.universal_capture[g], b.universal_capture[g]));
        BOOST_TEST(!same_bits(a.groups[g].values, c.groups[g].values));
        BOOST_TEST(!same_bits(a.groups[g].vectors, c.groups[g].vectors));
    }
    BOOST_TEST(same_bits(a.universal.vectors, b.universal.vectors));
    BOOST_TEST(!same_bits(a.universal.vectors, c.universal.vectors));
}

BOOST_AUTO_TEST_CASE(an_empty_group_gives_zeros_and_nan_capture) {
    constexpr std::size_t d = 16;
    const auto f = make_groups(d, 40, {power_decay(d, 1.0)}, 6);
    rsvd_options o = make_options(4, 1);
    o.oversample = 12;  // ℓ = d: the basis is the whole space
    o.trace_weighting = true;
    const rsvd_result r = randomized_eigen(d, 2, {}, o, [&](block_visitor& visit) { visit(1, f.x[0].memptr(), 40); });
    BOOST_TEST(r.groups[0].count == 0u);
    BOOST_TEST(r.groups[0].trace == 0.0);
    BOOST_TEST(arma::accu(arma::abs(r.groups[0].values)) == 0.0);
    BOOST_TEST(r.weights[0] == 0.0);
    BOOST_TEST(std::isnan(r.universal_capture[0][0]));
    // C_u is group 1's Gram alone, so its universal basis is its own top-4 basis.
    const arma::vec lambda = dense_eig(f.gram(0)).values;
    BOOST_TEST(r.universal_capture[1][3] == arma::accu(lambda.head(4)) / arma::accu(lambda), boost::test_tools::tolerance(1e-8));
}

// ---- misuse ----

template <class F>
void check_invalid(F&& call, const std::string& fragment) {
    BOOST_CHECK_EXCEPTION(call(), std::invalid_argument, [&](const std::invalid_argument& e) {
        const bool found = std::string(e.what()).find(fragment) != std::string::npos;
        if (!found) BOOST_TEST_MESSAGE("message: " << e.what());
        return found;
    });
}

BOOST_AUTO_TEST_CASE(rejects_bad_parameters_naming_them) {
    const arma::mat x(4, 5, arma::fill::randn);
    const std::vector<arma::mat> xs{x};
    const pass_runner ok = stream(xs, 2);
    rsvd_options o;
    check_invalid([&] { randomized_eigen(0, 1, {}, o, ok); }, "dim must be >= 1, got 0");
    check_invalid([&] { randomized_eigen(4, 0, {}, o, ok); }, "groups must be >= 1, got 0");
    o.k = 0;
    check_invalid([&] { randomized_eigen(4, 1, {}, o, ok); }, "options.k must be >= 1");
    o = {};
    o.error_probes = 0;
    check_invalid([&] { randomized_eigen(4, 1, {}, o, ok); }, "options.error_probes must be in [1, 64], got 0");
    o.error_probes = 65;
    check_invalid([&] { randomized_eigen(4, 1, {}, o, ok); }, "options.error_probes must be in [1, 64], got 65");
    o = {};
    check_invalid([&] { randomized_eigen(4, 1, {1.0, 2.0}, o, ok); }, "universal_weights has 2 entries; expected 0 or groups = 1");
    check_invalid([&] { randomized_eigen(4, 1, {-1.0}, o, ok); }, "universal_weights[0] = -1");
    check_invalid([&] { randomized_eigen(4, 1, {std::nan("")}, o, ok); }, "must be finite and >= 0");
    o.trace_weighting = true;
    check_invalid([&] { randomized_eigen(4, 1, {1.0}, o, ok); }, "exclude each other");
    o = {};
    o.universal_tolerance = -0.5;
    check_invalid([&] { randomized_eigen(4, 1, {}, o, ok); }, "options.universal_tolerance must be >= 0, got -0.5");
    o = {};
    check_invalid([&] { randomized_eigen(4, 1, {}, o, pass_runner{}); }, "run_pass is empty");
}

BOOST_AUTO_TEST_CASE(rejects_bad_blocks_and_inconsistent_passes) {
    const arma::mat x(4, 6, arma::fill::randn);
    const rsvd_options o = make_options(2, 1);
    check_invalid([&] { randomized_eigen(4, 2, {}, o, [&](block_visitor& v) { v(2, x.memptr(), 6); }); },
                  "group 2 is out of range [0, 2)");
    check_invalid([&] { randomized_eigen(4, 1, {}, o, [&](block_visitor& v) { v(0, static_cast<const float*>(nullptr), 3); }); },
                  "null block of 3 vectors for group 0");
    std::size_t calls = 0;
    check_invalid(
        [&] {
            randomized_eigen(4, 1, {}, o, [&](block_visitor& v) { v(0, x.memptr(), ++calls == 1 ? 6 : 5); });
        },
        "pass 2 streamed 5 vectors of group 0, pass 1 streamed 6");
}

BOOST_AUTO_TEST_CASE(non_finite_data_is_a_numerical_error) {
    arma::mat x(4, 6, arma::fill::randn);
    x(2, 3) = std::numeric_limits<double>::quiet_NaN();
    BOOST_CHECK_EXCEPTION(randomized_eigen(4, 1, {}, make_options(2, 0), [&](block_visitor& v) { v(0, x.memptr(), 6); }),
                          numerical_error, [](const numerical_error& e) {
                              return std::string(e.what()).find("pass 1: the product of group 0 holds NaN or Inf") !=
                                     std::string::npos;
                          });
}

BOOST_AUTO_TEST_SUITE_END()
