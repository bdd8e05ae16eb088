#include "adaptk/spectrum.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "adaptk/error.hpp"
#include "detail/linalg.hpp"

namespace adaptk {
namespace {

constexpr double undefined = std::numeric_limits<double>::quiet_NaN();

template <class Real>
void require_square(const arma::Mat<Real>& c, const char* who) {
    if (c.n_rows != c.n_cols) throw std::invalid_argument(std::string(who) + ": matrix is not square");
}

void check_finite(const arma::vec& values, const char* who) {
    if (!values.is_finite()) throw numerical_error(std::string(who) + ": eigenvalues are not finite (NaN or Inf in the data?)");
}

}  // namespace

namespace {

// All eigenvalues by divide and conquer (dsyevd or ssyevd, no vectors), in
// place; widened to float64, descending, rounding negatives clipped to 0.
template <class Real>
arma::vec eigenvalues_in_place(arma::Mat<Real>& c, const char* solver) {
    require_square(c, "eigenvalues_descending");
    arma::vec values(c.n_rows);
    if (c.n_rows == 0) return values;
    if (!c.is_finite()) throw numerical_error("eigenvalues_descending: matrix holds NaN or Inf (non-finite weights?)");
    arma::Col<Real> ascending(c.n_rows);
    const int info = detail::eigenvalues_symmetric(c.memptr(), c.n_rows, ascending.memptr());
    if (info != 0) throw numerical_error(std::string(solver) + " failed with info " + std::to_string(info));
    c.reset();
    values = arma::conv_to<arma::vec>::from(ascending);
    check_finite(values, solver);
    values = arma::reverse(arma::clamp(values, 0.0, arma::datum::inf));
    return values;
}

}  // namespace

arma::vec eigenvalues_descending(arma::mat&& c) { return eigenvalues_in_place(c, "dsyevd"); }

arma::vec eigenvalues_descending(arma::fmat&& c) { return eigenvalues_in_place(c, "ssyevd"); }

namespace {

// LAPACK's ascending values as the statistics take them: descending, rounding
// negatives clipped to 0, and their vectors' columns in the same order.
void make_descending(arma::vec& values, arma::mat& vectors, const char* solver) {
    check_finite(values, solver);
    values = arma::reverse(arma::clamp(values, 0.0, arma::datum::inf));
    const std::size_t k = vectors.n_cols;
    for (std::size_t j = 0; j < k / 2; ++j) vectors.swap_cols(j, k - 1 - j);  // in place: no d×k copy
}

}  // namespace

eigenpairs top_eigenpairs(arma::mat&& c, std::size_t k) {
    require_square(c, "top_eigenpairs");
    k = std::min<std::size_t>(k, c.n_rows);
    eigenpairs result;
    result.values.set_size(k);
    result.vectors.set_size(c.n_rows, k);
    if (k == 0) return result;
    if (!c.is_finite()) throw numerical_error("top_eigenpairs: matrix holds NaN or Inf (non-finite weights?)");
    const int info =
        detail::top_eigenpairs_symmetric(c.memptr(), c.n_rows, k, result.values.memptr(), result.vectors.memptr());
    if (info != 0) throw numerical_error("dsyevr failed with info " + std::to_string(info));
    c.reset();
    make_descending(result.values, result.vectors, "dsyevr");
    return result;
}

spectrum_with_basis spectrum_and_top_vectors(arma::mat&& c, std::size_t k) {
    require_square(c, "spectrum_and_top_vectors");
    const std::size_t d = c.n_rows;
    k = std::min<std::size_t>(k, d);
    if (k == 0) return {eigenvalues_descending(std::move(c)), arma::mat(d, 0)};
    if (!c.is_finite()) throw numerical_error("spectrum_and_top_vectors: matrix holds NaN or Inf (non-finite weights?)");
    spectrum_with_basis result{arma::vec(d), arma::mat(d, k)};
    arma::vec top(k);
    const int info = detail::spectrum_and_top_vectors(c.memptr(), d, k, result.values.memptr(), top.memptr(),
                                                      result.vectors.memptr());
    if (info != 0) throw numerical_error("dsytrd/dsterf/dstein failed with info " + std::to_string(info));
    c.reset();
    arma::mat no_vectors;
    make_descending(result.values, no_vectors, "dsterf");
    make_descending(top, result.vectors, "dstein");
    return result;
}

double eigenvalue_sum(const arma::vec& lambda, std::size_t count) {
    return std::accumulate(lambda.begin(), lambda.begin() + std::min<std::size_t>(count, lambda.n_elem), 0.0);
}

double spectrum_energy(double trace, const arma::vec& lambda) { return std::max(trace, eigenvalue_sum(lambda)); }

double participation_ratio(const arma::vec& lambda) {
    const double energy = eigenvalue_sum(lambda);
    const double squares = arma::dot(lambda, lambda);
    return squares > 0 ? energy * energy / squares : undefined;
}

std::size_t components_for(const arma::vec& lambda, double fraction) {
    const double energy = eigenvalue_sum(lambda);
    if (!(energy > 0)) return 0;
    const double target = fraction * energy;
    double running = 0;
    for (std::size_t i = 0; i < lambda.n_elem; ++i) {
        running += lambda[i];
        if (running >= target) return i + 1;
    }
    return lambda.n_elem;  // rounding kept the sum just below the target
}

double energy_kept(const arma::vec& lambda, std::size_t k) {
    const double energy = eigenvalue_sum(lambda);
    if (!(energy > 0)) return undefined;
    return eigenvalue_sum(lambda, k) / energy;
}

double stable_rank(const arma::vec& lambda, double energy) {
    if (lambda.n_elem == 0 || !(lambda[0] > 0)) return undefined;
    return energy / lambda[0];
}

double entropy_rank(const arma::vec& lambda) {
    const double energy = eigenvalue_sum(lambda);
    if (!(energy > 0)) return undefined;
    double entropy = 0;
    for (const double value : lambda)
        if (value > 0) {
            const double p = value / energy;
            entropy -= p * std::log(p);
        }
    return std::exp(entropy);
}

}  // namespace adaptk
