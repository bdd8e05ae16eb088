#pragma once
// Spectral statistics of a Gram matrix's eigenvalues λ (descending, ≥ 0):
//   energy        E  = Σλ
//   pr            (Σλ)² / Σλ²                       participation ratio
//   k_p           min k with Σ_{i≤k} λ_i ≥ p·E       components for fraction p
//   energy_kept   Σ_{i≤K} λ_i / E                    R² of the best rank-K basis
//   stable_rank   E / λ₁
//   entropy_rank  exp(−Σ p_i log p_i), p = λ/E
// Plus the LAPACK-backed eigensolvers that produce λ. Statistics of an
// all-zero spectrum are NaN (undefined), k_p is 0.
// E is summed in index order, so no prefix sum of λ ≥ 0 exceeds it and no
// fraction passes 1. A rank-deficient Gram's zero eigenvalues come out of
// LAPACK as ±rounding and the negative ones are clipped to 0, so Σλ can
// exceed tr C by that rounding: spectrum_energy takes the larger of the two
// as the one energy every fraction of a type divides by.

#include <cstddef>
#include <limits>
#include <vector>

#include <armadillo>

namespace adaptk {

/// All eigenvalues of the symmetric matrix `c`, descending, rounding negatives
/// clipped to 0. Consumes `c` (LAPACK works in place: no copy). O(d³) (dsyevd,
/// no vectors). Throws numerical_error if LAPACK fails.
arma::vec eigenvalues_descending(arma::mat&& c);
/// The same from a float32 matrix (ssyevd: about half the time at d = 2048),
/// values returned in float64. Rounding: |λ_i − λ̂_i| ≤ p(d)·ε₃₂·λ₁ (ε₃₂ ≈ 6e-8,
/// p(d) a modest, slowly growing factor):
/// fine for sums over the spectrum (energy, PR, K_p), not for the tail's
/// individual values.
arma::vec eigenvalues_descending(arma::fmat&& c);

struct eigenpairs {
    arma::vec values;   ///< k largest, descending, clipped to ≥ 0
    arma::mat vectors;  ///< d×k, column i belongs to values[i]
};
/// The k largest eigenpairs of the symmetric matrix `c` (k clamped to d).
/// Consumes `c`. O(d³) for the reduction plus O(d²k) (dsyevr, RANGE='I').
eigenpairs top_eigenpairs(arma::mat&& c, std::size_t k);

struct spectrum_with_basis {
    arma::vec values;   ///< all d, descending, clipped to ≥ 0 (as eigenvalues_descending)
    arma::mat vectors;  ///< d×k, column i belongs to values[i] (as top_eigenpairs)
};
/// eigenvalues_descending and top_eigenpairs of the same `c` at the cost of
/// one: both run the same tridiagonal reduction, which dominates each.
spectrum_with_basis spectrum_and_top_vectors(arma::mat&& c, std::size_t k);

/// Σ of the first `count` (all by default) eigenvalues, in index order: a
/// prefix sum of λ ≥ 0 is never more than the whole.
double eigenvalue_sum(const arma::vec& lambda, std::size_t count = std::numeric_limits<std::size_t>::max());
/// The energy fractions of a Gram C divide by: max(tr C, eigenvalue_sum(λ))
/// for the eigenvalues λ known (all, or the top ones).
double spectrum_energy(double trace, const arma::vec& lambda);

double participation_ratio(const arma::vec& lambda);
/// Smallest k with cumulative energy ≥ fraction·E (1 ≤ k ≤ d; 0 if E = 0).
std::size_t components_for(const arma::vec& lambda, double fraction);
/// Σ_{i≤k} λ_i / E with k clamped to the length of λ.
double energy_kept(const arma::vec& lambda, std::size_t k);
/// E / λ₁ for the total energy E (λ may hold only the top eigenvalues).
double stable_rank(const arma::vec& lambda, double energy);
double entropy_rank(const arma::vec& lambda);

}  // namespace adaptk
