#define BOOST_TEST_MODULE spectrum
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "adaptk/error.hpp"
#include "adaptk/spectrum.hpp"

using namespace adaptk;
namespace tt = boost::test_tools;

namespace {

// Q·diag(s)·Qᵀ with a random orthogonal Q: a symmetric matrix of known spectrum.
arma::mat with_spectrum(const arma::vec& s) {
    arma::mat q, r;
    arma::qr(q, r, arma::mat(s.n_elem, s.n_elem, arma::fill::randn));
    return q * arma::diagmat(s) * q.t();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(spectrum)

BOOST_AUTO_TEST_CASE(eigenvalues_come_back_descending_and_exact) {
    arma::arma_rng::set_seed(1);
    const arma::vec s = arma::shuffle(arma::regspace(1.0, 50.0));
    const arma::vec lambda = eigenvalues_descending(with_spectrum(s));
    BOOST_TEST(arma::norm(lambda - arma::regspace(50.0, -1.0, 1.0)) <= 1e-11 * arma::norm(s));
}

BOOST_AUTO_TEST_CASE(rounding_negatives_are_clipped_to_zero) {
    arma::arma_rng::set_seed(2);
    arma::vec s(20, arma::fill::zeros);
    s.head(3) = {3.0, 2.0, 1.0};  // rank 3: the other 17 come out as ±1e-16
    const arma::vec lambda = eigenvalues_descending(with_spectrum(s));
    BOOST_TEST(lambda.min() >= 0.0);
    BOOST_TEST(lambda[2] == 1.0, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(top_eigenpairs_are_the_largest_with_orthonormal_vectors) {
    arma::arma_rng::set_seed(3);
    const arma::vec s = arma::regspace(1.0, 40.0);
    arma::mat q, r;
    arma::qr(q, r, arma::mat(40, 40, arma::fill::randn));
    const eigenpairs top = top_eigenpairs(arma::mat(q * arma::diagmat(s) * q.t()), 5);
    BOOST_TEST(arma::norm(top.values - arma::regspace(40.0, -1.0, 36.0)) <= 1e-11 * 40);
    BOOST_TEST(arma::norm(top.vectors.t() * top.vectors - arma::eye(5, 5)) <= 1e-12);
    for (std::size_t i = 0; i < 5; ++i)  // up to sign, vector i is the column of eigenvalue 40 - i
        BOOST_TEST(std::abs(arma::dot(top.vectors.col(i), q.col(39 - i))) == 1.0, tt::tolerance(1e-10));
}

BOOST_AUTO_TEST_CASE(top_eigenpairs_clamps_k_to_dimension) {
    const eigenpairs top = top_eigenpairs(arma::mat(arma::eye(6, 6)), 10);
    BOOST_TEST(top.values.n_elem == 6u);
    BOOST_TEST(top.vectors.n_cols == 6u);
}

BOOST_AUTO_TEST_CASE(spectrum_and_top_vectors_give_every_value_and_the_top_vectors) {
    arma::arma_rng::set_seed(4);
    const arma::vec s = arma::shuffle(arma::regspace(1.0, 40.0));
    arma::mat q, r;
    arma::qr(q, r, arma::mat(40, 40, arma::fill::randn));
    const spectrum_with_basis both = spectrum_and_top_vectors(arma::mat(q * arma::diagmat(s) * q.t()), 5);
    BOOST_TEST(arma::norm(both.values - arma::regspace(40.0, -1.0, 1.0)) <= 1e-11 * 40);
    BOOST_TEST(both.vectors.n_cols == 5u);
    BOOST_TEST(arma::norm(both.vectors.t() * both.vectors - arma::eye(5, 5)) <= 1e-12);
    for (std::size_t i = 0; i < 5; ++i) {  // up to sign, vector i belongs to eigenvalue 40 − i
        const arma::uword column = arma::index_max(s == 40.0 - static_cast<double>(i));
        BOOST_TEST(std::abs(arma::dot(both.vectors.col(i), q.col(column))) == 1.0, tt::tolerance(1e-10));
    }
}

// Block diagonal: the tridiagonal form splits, bisection returns the top values
// block by block (not in order), and entries of 1e100 take LAPACK's scaling.
BOOST_AUTO_TEST_CASE(spectrum_and_top_vectors_order_split_blocks_and_scale_large_entries) {
    arma::mat c(6, 6, arma::fill::zeros);
    c.submat(0, 0, 1, 1) = arma::mat{{2.0, 1.0}, {1.0, 2.0}};  // 3 and 1, vector (1, 1)/√2 for 3
    c.submat(2, 2, 5, 5) = arma::diagmat(arma::vec{5.0, 0.5, 4.0, 0.25});
    const double scale = 1e100;
    const spectrum_with_basis both = spectrum_and_top_vectors(arma::mat(scale * c), 3);
    const arma::vec expected = scale * arma::vec{5.0, 4.0, 3.0, 1.0, 0.5, 0.25};
    BOOST_TEST(arma::norm(both.values - expected) <= 1e-13 * scale);
    BOOST_TEST(std::abs(both.vectors(2, 0)) == 1.0, tt::tolerance(1e-12));  // 5: e₂
    BOOST_TEST(std::abs(both.vectors(4, 1)) == 1.0, tt::tolerance(1e-12));  // 4: e₄
    BOOST_TEST(std::abs(both.vectors(0, 2)) == std::sqrt(0.5), tt::tolerance(1e-12));  // 3
    BOOST_TEST(std::abs(both.vectors(1, 2)) == std::sqrt(0.5), tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(non_finite_input_is_a_numerical_error) {
    arma::mat c(4, 4, arma::fill::eye);
    c(1, 2) = c(2, 1) = std::numeric_limits<double>::quiet_NaN();
    BOOST_CHECK_THROW(eigenvalues_descending(arma::mat(c)), numerical_error);
    BOOST_CHECK_THROW(top_eigenpairs(arma::mat(c), 2), numerical_error);
    BOOST_CHECK_THROW(spectrum_and_top_vectors(arma::mat(c), 2), numerical_error);
}

BOOST_AUTO_TEST_CASE(pr_of_flat_spectrum_equals_dimension) {
    BOOST_TEST(participation_ratio(arma::vec(37, arma::fill::value(2.5))) == 37.0, tt::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(pr_of_single_spike_is_one) {
    arma::vec lambda(10, arma::fill::zeros);
    lambda[0] = 7;
    BOOST_TEST(participation_ratio(lambda) == 1.0);
    BOOST_TEST(stable_rank(lambda, eigenvalue_sum(lambda)) == 1.0);
    BOOST_TEST(entropy_rank(lambda) == 1.0);
}

BOOST_AUTO_TEST_CASE(statistics_of_a_hand_spectrum) {
    const arma::vec lambda{4.0, 3.0, 2.0, 1.0};  // energy 10
    BOOST_TEST(participation_ratio(lambda) == 100.0 / 30.0, tt::tolerance(1e-14));
    BOOST_TEST(components_for(lambda, 0.5) == 2u);   // 4 + 3 = 7 ≥ 5
    BOOST_TEST(components_for(lambda, 0.7) == 2u);   // exactly 7 counts as reached
    BOOST_TEST(components_for(lambda, 0.9) == 3u);   // 9 ≥ 9
    BOOST_TEST(components_for(lambda, 0.95) == 4u);
    BOOST_TEST(energy_kept(lambda, 2) == 0.7, tt::tolerance(1e-14));
    BOOST_TEST(energy_kept(lambda, 99) == 1.0);
    BOOST_TEST(energy_kept(lambda, 0) == 0.0);
    BOOST_TEST(stable_rank(lambda, 10.0) == 2.5);
    const double entropy = -(0.4 * std::log(0.4) + 0.3 * std::log(0.3) + 0.2 * std::log(0.2) + 0.1 * std::log(0.1));
    BOOST_TEST(entropy_rank(lambda) == std::exp(entropy), tt::tolerance(1e-14));
}

// A Gram of rank 3 in 40 dimensions: 37 eigenvalues are ±rounding, the
// negative ones clipped, so Σλ may pass tr C; fractions of spectrum_energy
// never pass 1 and the energy stays the trace up to rounding.
BOOST_AUTO_TEST_CASE(fractions_of_a_rank_deficient_spectrum_never_pass_one) {
    arma::arma_rng::set_seed(17);
    const arma::mat x = arma::randn<arma::mat>(40, 3) * 1e3;
    const arma::mat c = x * x.t();
    const double trace = arma::trace(c);
    const arma::vec lambda = eigenvalues_descending(arma::mat(c));
    const double energy = spectrum_energy(trace, lambda);
    BOOST_TEST(energy >= trace);
    BOOST_TEST(energy >= eigenvalue_sum(lambda));
    BOOST_TEST(energy == trace, tt::tolerance(1e-12));
    double running = 0;
    for (std::size_t i = 0; i < lambda.n_elem; ++i) {
        running += lambda[i];
        BOOST_TEST(running / energy <= 1.0);
        BOOST_TEST(energy_kept(lambda, i + 1) <= 1.0);
    }
    BOOST_TEST(energy_kept(lambda, 40) == 1.0);
}

BOOST_AUTO_TEST_CASE(all_zero_spectrum_is_undefined_not_a_crash) {
    const arma::vec lambda(5, arma::fill::zeros);
    BOOST_TEST(std::isnan(participation_ratio(lambda)));
    BOOST_TEST(components_for(lambda, 0.9) == 0u);
    BOOST_TEST(std::isnan(energy_kept(lambda, 2)));
    BOOST_TEST(std::isnan(stable_rank(lambda, 0.0)));
    BOOST_TEST(std::isnan(entropy_rank(lambda)));
}

BOOST_AUTO_TEST_SUITE_END()
