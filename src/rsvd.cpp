// Randomized subspace iteration over streamed Gram matrices (HMT 2011,
// Alg. 4.4 + 5.3), for every group and the universal C_u = Σ w_g C_g at once:
//   pass 1          Y_g = C_g Ω                         (Ω: d×ℓ Gaussian, shared)
//   passes 2..q+1   Q = qr(Y);  Y_g = C_g Q_g,  Z_g = C_g Q_u
//   pass q+2        the same plus C_g (I−P)Ω_r probes; T = QᵀY → eig_sym
// where Y_u = Σ w_g Z_g is combined after each pass (the weights need the
// traces, which the first pass sums). A block X (d×b) adds X·(Xᵀ·B) to the
// group's product for its whole basis B = [Q_g | Q_u | probes]: two GEMMs,
// 2·d·b·m multiply-adds. Everything random is drawn up front from one
// mt19937_64, so Ω and the probes depend on the seed and shapes alone.
//
// Error estimate (documented per entity in rsvd.hpp). Let Q be the final
// d×ℓ basis, T = QᵀCQ = UΘUᵀ its Ritz decomposition (θ descending), and
// split the space as [V₁ | V₂ | Q⊥]: V₁ = the first j Ritz vectors QU, V₂ the
// other ℓ − j. In that basis
//     C = [[Θ₁, 0, E₁ᵀ], [0, Θ₂, E₂ᵀ], [E₁, E₂, S]],  E = Q⊥ᵀCQU,  S = Q⊥ᵀCQ⊥ ⪰ 0.
//  1. Lower bound: θ_i ≤ λ_i (Cauchy interlacing; T is a compression of C).
//  2. e_j = ‖E₁‖₂ and f_j = ‖E₂‖₂ are norms of column ranges of the Ritz
//     residual CQU − QUΘ, known from the last pass's Y = CQ (bounded for
//     every split by nested_norms; e_ℓ = ‖CQ − QT‖₂ exactly).
//  3. s = ‖S‖₂ is bounded by probes: with r standard Gaussian ω_i drawn
//     independently of Q, ‖S‖ ≤ α·√(2/π)·max_i ‖(I−P)C(I−P)ω_i‖ except with
//     probability α^-r (HMT 2011, Lemma 4.1; eq. 4.3 is α = 10). We fix the
//     failure probability at 10⁻¹⁰, α = 10^(10/r): the default r = 20 gives
//     α ≈ 3.2 where HMT's r = 10 gives 10. Deterministically also ‖S‖ ≤ tr S
//     = tr C − Σθ (the stream's exact trace); ŝ is the smaller. The probes see
//     ‖S‖_F rather than ‖S‖, so ŝ exceeds ‖S‖ ≈ λ_{ℓ+1} by ~α·0.8·‖S‖_F/‖S‖:
//     Ritz values below ŝ get no gap and only the Weyl bound ≈ ŝ − θ_i + e_ℓ.
//  4. The trailing block N = [[Θ₂, E₂ᵀ], [E₂, S]] has λ_max(N) ≤ μ_j, the
//     larger eigenvalue of [[θ_{j+1}, f_j], [f_j, ŝ]] (for a unit (x, y),
//     xᵀΘ₂x + 2yᵀE₂x + yᵀSy ≤ θ_{j+1}x² + 2f_j·xy + ŝ·y²). C is diag(Θ₁, N)
//     perturbed off the diagonal by E₁, so for θ_i > μ_j (Li & Li 2005, "A
//     note on eigenvalues of perturbed Hermitian matrices", LAA 395, Thm. 1,
//     with the gap η_i ≥ θ_i − μ_j):
//         λ_i − θ_i ≤ 2e_j² / (η_i + √(η_i² + 4e_j²))  ≤ min(e_j, e_j²/η_i),
//     quadratic in the residual of the leading Ritz vectors alone. Each
//     eigenvalue takes the best split j ∈ (i, ℓ]; j = ℓ (N = S, μ = ŝ) is the
//     plain subspace bound, and with no gap at all Weyl gives λ_i ≤ max(θ_i,
//     ŝ) + e_ℓ. e_j and f_j for all splits come from nested_norms, O(ℓ²).
//  5. Rounding: the last pass runs in float64 even for float blocks (see
//     below), so its products carry, per unit-norm basis column, an error
//     ≤ ρ = u·(1 + √d + √n)·tr C, u = 2⁻⁵³, n = vectors per pass, under the
//     probabilistic model of Higham & Mary 2019 (SISC 41(5): an inner product
//     of length n errs by ~√n·u·|x|ᵀ|y|). It moves θ, e and f by ≤ √ℓ·ρ, the
//     probe bound by ≤ α·√(2/π)·ρ·max‖(I−P)ω_i‖ and tr S by ≤ ℓ·√ℓ·ρ; the
//     bound takes all of them: ~1e-14·tr C.
// error_estimate = max_i value_errors[i] then bounds every |λ_i − θ_i|, i < k.
//
// Precision: float blocks are multiplied in float32 (sgemm) on the sketch and
// power passes, whose rounding only makes Q a slightly worse subspace, which
// the a-posteriori bound measures. The last pass converts them to float64
// first (d·b copies into one reused buffer, then dgemm): a float32 last pass
// would move θ by ~u_f·tr C and its ~√d·u_f·‖C‖·‖ω‖ error on the probes
// would swamp ŝ. Measured on the tests' d = 128, λ_i = i^-4 float fixture
// (λ₁ = 1): error_estimate 5.4e-4 → 5.1e-9 at q = 1 and 4.9e-4 → 1.1e-10 at
// q = 3, true errors 4.6e-10 and 1.1e-14. It costs about one extra power
// pass in time (dgemm is ~2× sgemm, on 2ℓ + 2r columns).

#include "adaptk/rsvd.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "adaptk/error.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

// HMT 2011 Lemma 4.1: ‖A‖ ≤ α·√(2/π)·max_i ‖Aω_i‖ except with probability
// α^-r; α = 10^(10/r) holds every estimate's failure probability at 1e-10.
constexpr double failure_exponent = 10;
double probe_factor(std::size_t probes) {
    return std::pow(10.0, failure_exponent / static_cast<double>(probes)) * std::sqrt(2.0 / std::numbers::pi);
}
// Past 64 probes α = 1.43 shrinks slowly while the last pass keeps growing.
constexpr std::size_t max_error_probes = 64;
// Float blocks' products are summed in float32 for this many vectors before a
// float64 add, as in gram_accumulator: rounding spans a bounded number of terms.
constexpr std::size_t float_flush_vectors = 4096;
constexpr double double_unit_roundoff = 0x1.0p-53;

std::string who() { return "randomized_eigen: "; }

// N(0,1) entries by Box–Muller from mt19937_64's raw output. mt19937_64 is
// specified to the bit; std::normal_distribution's algorithm is not (libstdc++
// and libc++ differ), so the same seed would not give the same Ω everywhere.
arma::mat gaussian_matrix(std::mt19937_64& rng, std::size_t rows, std::size_t cols) {
    arma::mat m(rows, cols);
    double* out = m.memptr();
    const std::size_t n = m.n_elem;
    for (std::size_t i = 0; i < n; i += 2) {
        const double u1 = (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;  // (0, 1): log is finite
        const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;          // [0, 1)
        const double radius = std::sqrt(-2.0 * std::log(u1));
        const double angle = 2.0 * std::numbers::pi * u2;
        out[i] = radius * std::cos(angle);
        if (i + 1 < n) out[i + 1] = radius * std::sin(angle);
    }
    return m;
}

// One group's state for the current pass: product = Σ_blocks X (Xᵀ basis) = C_g·basis.
struct group_sketch {
    arma::mat basis;         // d×m
    arma::fmat basis_f;      // float32 copy, made at the pass's first float block
    arma::mat product;       // d×m float64
    arma::fmat pending_f;    // float32 sum of float blocks' products since the last flush
    std::size_t pending_vectors = 0;
    std::uint64_t count = 0;         // vectors this pass
    double trace = 0;                // Σ‖x‖², summed on the first pass only

    void start_pass() {
        product.zeros(basis.n_rows, basis.n_cols);
        basis_f.reset();
        pending_f.reset();
        pending_vectors = 0;
        count = 0;
    }
    // product += pending_f, elementwise in float64 (d·m adds).
    void flush() {
        if (pending_vectors == 0) return;
        double* target = product.memptr();
        const float* source = pending_f.memptr();
        for (std::size_t i = 0; i < product.n_elem; ++i) target[i] += source[i];
        pending_vectors = 0;
    }
};

// The visitor of one pass: routes each block to its group's product.
class pass_visitor final : public block_visitor {
public:
    pass_visitor(std::size_t dim, std::vector<group_sketch>& groups, bool sum_traces, bool float64_only)
        : dim_(dim), groups_(groups), sum_traces_(sum_traces), float64_only_(float64_only) {}

    void operator()(std::size_t group, const float* block, std::size_t count) override { add(group, block, count); }
    void operator()(std::size_t group, const double* block, std::size_t count) override { add(group, block, count); }

private:
    template <class Real>
    void add(std::size_t group, const Real* block, std::size_t count) {
        if (group >= groups_.size())
            throw std::invalid_argument("block_visitor: group " + std::to_string(group) + " is out of range [0, " +
                                        std::to_string(groups_.size()) + ")");
        if (count == 0) return;
        if (block == nullptr)
            throw std::invalid_argument("block_visitor: null block of " + std::to_string(count) + " vectors for group " +
                                        std::to_string(group));
        group_sketch& g = groups_[group];
        g.count += count;
        if (sum_traces_) {
            double sum = 0;  // float64 products of float32 values are exact: the trace is exact to float64 summation
            for (std::size_t i = 0; i < dim_ * count; ++i) sum += static_cast<double>(block[i]) * block[i];
            g.trace += sum;
        }
        if constexpr (std::is_same_v<Real, float>) {
            if (float64_only_) {
                if (block_d_.n_elem < dim_ * count) block_d_.set_size(dim_ * count);
                std::copy(block, block + dim_ * count, block_d_.memptr());
                multiply(g, block_d_.memptr(), count);
                return;
            }
        }
        multiply(g, block, count);
    }

    // P = Xᵀ·B (b×m) into a reused buffer, then product += X·P (gemm with β = 1).
    template <class Real>
    void multiply(group_sketch& g, const Real* block, std::size_t count) {
        const arma::Mat<Real> x(const_cast<Real*>(block), dim_, count, false, true);  // a view, no copy
        const std::size_t m = g.basis.n_cols;
        if constexpr (std::is_same_v<Real, float>) {
            if (g.basis_f.n_elem == 0) g.basis_f = arma::conv_to<arma::fmat>::from(g.basis);
            if (scratch_f_.n_elem < count * m) scratch_f_.set_size(count * m);
            arma::fmat p(scratch_f_.memptr(), count, m, false, true);
            p = x.t() * g.basis_f;
            if (g.pending_vectors == 0)
                g.pending_f = x * p;
            else
                g.pending_f += x * p;
            g.pending_vectors += count;
            if (g.pending_vectors >= float_flush_vectors) g.flush();
        } else {
            if (scratch_d_.n_elem < count * m) scratch_d_.set_size(count * m);
            arma::mat p(scratch_d_.memptr(), count, m, false, true);
            p = x.t() * g.basis;
            g.product += x * p;
        }
    }

    std::size_t dim_;
    std::vector<group_sketch>& groups_;
    bool sum_traces_;
    bool float64_only_;     // convert float blocks to float64 first (the last pass)
    arma::fvec scratch_f_;  // one reusable Xᵀ·B buffer per precision
    arma::vec scratch_d_;
    arma::vec block_d_;     // a float block converted to float64
};

arma::mat orthonormal_basis(const arma::mat& y, const std::string& what) {
    arma::mat q, r;
    if (!arma::qr_econ(q, r, y)) throw numerical_error(who() + "QR of the " + what + " sketch failed");
    return q;
}

// Rayleigh–Ritz on the basis Q: T = sym(QᵀY), Y = CQ; eigenpairs descending.
struct ritz_pairs {
    arma::vec values;  // ℓ
    arma::mat coords;  // ℓ×ℓ, column i belongs to values[i]
};
ritz_pairs rayleigh_ritz(const arma::mat& q, const arma::mat& y, const std::string& what) {
    arma::mat t = q.t() * y;
    t = 0.5 * (t + t.t());
    arma::vec values;
    arma::mat coords;
    if (!arma::eig_sym(values, coords, t)) throw numerical_error(who() + "eig_sym of the " + what + " Ritz matrix failed");
    return {arma::reverse(values), arma::fliplr(coords)};
}

// What the last pass streamed for one Gram matrix C (a group's or C_u).
struct last_pass {
    const arma::mat& q;           // d×ℓ basis of the Ritz problem
    arma::mat y;                  // C·Q
    arma::mat probe_response;     // C·(I−P)Ω_r
    const arma::mat& probes;      // (I−P)Ω_r
    double trace;
    double rounding;              // ρ of the file comment, step 5
};

// Largest eigenvalue of the symmetric block g[first..last], as a norm: √λ_max.
double block_norm(const arma::mat& g, std::size_t first, std::size_t last, const std::string& what) {
    arma::vec values;
    if (!arma::eig_sym(values, arma::mat(g.submat(first, first, last, last))))
        throw numerical_error(who() + "eig_sym of the " + what + " residual Gram failed");
    return std::sqrt(std::max(values.max(), 0.0));
}

// Upper bounds on √λ_max of the nested blocks G[0, j) (leading, out[j]) or
// G[j, ℓ) (trailing, out[j]) of the residual Gram, every j, in O(ℓ²):
// bordering a block with λ_max ≤ a by a column g and diagonal γ gives
// λ_max ≤ the larger eigenvalue of [[a, ‖g‖], [‖g‖, γ]]. Exact for
// orthogonal residuals, at worst the Frobenius norm; on the tests' fixtures
// within 1.3× of the exact norms, which cost one eig_sym per split (O(ℓ⁴)
// in all: a d = 512, ℓ = 266, two-group run took 2.3 s with them, 0.33 s
// with this).
arma::vec nested_norms(const arma::mat& gram, bool leading) {
    const std::size_t ell = gram.n_rows;
    arma::vec out(ell + 1, arma::fill::zeros);
    double a = 0;
    for (std::size_t step = 0; step < ell; ++step) {
        const std::size_t j = leading ? step : ell - 1 - step;
        double border = 0;
        if (leading)
            for (std::size_t i = 0; i < j; ++i) border += gram(i, j) * gram(i, j);
        else
            for (std::size_t i = j + 1; i < ell; ++i) border += gram(i, j) * gram(i, j);
        const double gamma = gram(j, j), mid = 0.5 * (a + gamma), half = 0.5 * (a - gamma);
        a = mid + std::sqrt(half * half + border);
        out[leading ? j + 1 : j] = std::sqrt(std::max(a, 0.0));
    }
    return out;
}

// Li & Li 2005, Thm. 1: eigenvalue shift of a block-diagonal matrix with gap η
// under an off-diagonal block of norm e.
double quadratic_bound(double e, double gap) { return e > 0 ? 2 * e * e / (gap + std::sqrt(gap * gap + 4 * e * e)) : 0.0; }

// Ritz pairs and the error bound of the file comment, steps 1–5.
rsvd_group_result finish(const last_pass& pass, std::size_t k, const std::string& what, ritz_pairs& ritz) {
    ritz = rayleigh_ritz(pass.q, pass.y, what);
    const std::size_t ell = pass.q.n_cols;
    const arma::vec& theta = ritz.values;
    rsvd_group_result result;
    result.values = arma::clamp(theta.head(k), 0.0, arma::datum::inf);
    result.vectors = pass.q * ritz.coords.head_cols(k);
    result.trace = pass.trace;

    // Step 2: Ritz residuals CQU − QUΘ, column i belonging to θ_i, and their Gram.
    const arma::mat residual = pass.y * ritz.coords - pass.q * (ritz.coords * arma::diagmat(theta));
    arma::mat gram = residual.t() * residual;
    gram = 0.5 * (gram + gram.t());
    // Step 3: (I−P)C(I−P)ω_i = (I−P)·response_i.
    const arma::mat tail = pass.probe_response - pass.q * (pass.q.t() * pass.probe_response);
    const double tail_probe = arma::max(arma::sqrt(arma::sum(arma::square(tail), 0)));
    const double probe_norm = arma::max(arma::sqrt(arma::sum(arma::square(pass.probes), 0)));
    // ‖S‖ ≤ tr S = tr C − Σθ as well: exact, deterministic, and the better bound for a fast-decaying tail.
    const double tail_trace = std::max(pass.trace - arma::accu(theta), 0.0);
    result.residual_norm = block_norm(gram, 0, ell - 1, what);
    const double factor = probe_factor(pass.probes.n_cols);
    result.tail_norm = std::min(factor * tail_probe, tail_trace);
    result.range_error = std::hypot(result.residual_norm, result.tail_norm);

    // Step 5: widen e, f, ŝ and θ by what rounding may have moved them.
    const double shift = std::sqrt(static_cast<double>(ell)) * pass.rounding;
    const double s = std::min(factor * (tail_probe + pass.rounding * probe_norm),
                              tail_trace + static_cast<double>(ell) * shift);
    // Step 4, all splits j = 1..ℓ: leading[j] ≥ e_j, trailing[j] ≥ μ_j.
    arma::vec leading = nested_norms(gram, true) + shift;
    leading[ell] = result.residual_norm + shift;  // the whole block, exactly
    const arma::vec f = nested_norms(gram, false) + shift;
    arma::vec trailing(ell + 1);
    trailing[ell] = s;
    for (std::size_t j = 1; j < ell; ++j) {
        const double mid = 0.5 * (theta[j] + s), half = 0.5 * (theta[j] - s);
        trailing[j] = mid + std::sqrt(half * half + f[j] * f[j]);
    }
    result.value_errors.set_size(k);
    for (std::size_t i = 0; i < k; ++i) {
        double bound = std::max(s - theta[i], 0.0) + leading[ell];  // Weyl, no gap needed
        for (std::size_t j = i + 1; j <= ell; ++j)
            if (theta[i] > trailing[j]) bound = std::min(bound, quadratic_bound(leading[j], theta[i] - trailing[j]));
        result.value_errors[i] = bound + shift;
    }
    result.error_estimate = result.value_errors.max();
    if (!result.values.is_finite() || !result.value_errors.is_finite())
        throw numerical_error(who() + "the " + what + " Ritz values are not finite");
    return result;
}

void check_finite(const arma::mat& m, std::size_t pass, std::size_t group) {
    if (!m.is_finite())
        throw numerical_error(who() + "pass " + std::to_string(pass) + ": the product of group " + std::to_string(group) +
                              " holds NaN or Inf (non-finite vectors?)");
}

}  // namespace

rsvd_result randomized_eigen(std::size_t dim, std::size_t groups, const std::vector<double>& universal_weights,
                             const rsvd_options& options, const pass_runner& run_pass) {
    if (dim == 0) throw std::invalid_argument(who() + "dim must be >= 1, got 0");
    if (groups == 0) throw std::invalid_argument(who() + "groups must be >= 1, got 0");
    if (options.k == 0) throw std::invalid_argument(who() + "options.k must be >= 1 (it is clamped to dim), got 0");
    if (options.error_probes == 0 || options.error_probes > max_error_probes)
        throw std::invalid_argument(who() + "options.error_probes must be in [1, " + std::to_string(max_error_probes) +
                                    "], got " + std::to_string(options.error_probes));
    if (!universal_weights.empty() && universal_weights.size() != groups)
        throw std::invalid_argument(who() + "universal_weights has " + std::to_string(universal_weights.size()) +
                                    " entries; expected 0 or groups = " + std::to_string(groups));
    if (!universal_weights.empty() && options.trace_weighting)
        throw std::invalid_argument(who() + "options.trace_weighting and explicit universal_weights exclude each other");
    for (std::size_t g = 0; g < universal_weights.size(); ++g)
        if (!std::isfinite(universal_weights[g]) || universal_weights[g] < 0)
            throw std::invalid_argument(who() + "universal_weights[" + std::to_string(g) + "] = " +
                                        std::to_string(universal_weights[g]) + "; weights must be finite and >= 0");
    if (!run_pass) throw std::invalid_argument(who() + "run_pass is empty");

    const std::size_t k = std::min(options.k, dim);
    const std::size_t ell = k + std::min(options.oversample, dim - k);
    const std::size_t r = options.error_probes;
    const auto bases_columns = detail::checked_add(ell, ell);  // [Q_g | Q_u | probes ×2]
    const auto last_columns = bases_columns ? detail::checked_add(*bases_columns, 2 * r) : std::nullopt;
    const auto sketch_elements = last_columns ? detail::checked_mul(dim, *last_columns) : std::nullopt;
    if (!sketch_elements || !detail::checked_mul(*sketch_elements, sizeof(double)))
        throw std::invalid_argument(who() + "dim " + std::to_string(dim) + " x " + std::to_string(2 * ell + 2 * r) +
                                    " sketch columns of float64 overflows the address space");

    // Everything random, up front: Ω, then the probes.
    std::mt19937_64 rng(options.seed);
    const arma::mat omega = gaussian_matrix(rng, dim, ell);
    const arma::mat raw_probes = gaussian_matrix(rng, dim, r);

    rsvd_result result;
    result.k = k;
    result.sketch_size = ell;
    result.passes = options.power_iterations + 2;

    std::vector<group_sketch> sketches(groups);
    std::vector<std::uint64_t> first_counts(groups);
    std::size_t pass_number = 0;
    auto run = [&](bool last) {
        ++pass_number;
        for (auto& g : sketches) g.start_pass();
        pass_visitor visitor(dim, sketches, pass_number == 1, last);
        run_pass(visitor);
        for (std::size_t g = 0; g < groups; ++g) {
            sketches[g].flush();
            if (pass_number == 1)
                first_counts[g] = sketches[g].count;
            else if (sketches[g].count != first_counts[g])
                throw std::invalid_argument(who() + "pass " + std::to_string(pass_number) + " streamed " +
                                            std::to_string(sketches[g].count) + " vectors of group " + std::to_string(g) +
                                            ", pass 1 streamed " + std::to_string(first_counts[g]) +
                                            ": run_pass must stream the same data every pass");
            check_finite(sketches[g].product, pass_number, g);
        }
    };
    // Y_u = Σ_g w_g·(columns [first, first + count) of the group products).
    auto universal_sum = [&](std::size_t first, std::size_t count) {
        arma::mat sum(dim, count, arma::fill::zeros);
        for (std::size_t g = 0; g < groups; ++g)
            if (result.weights[g] != 0) sum += result.weights[g] * sketches[g].product.cols(first, first + count - 1);
        return sum;
    };

    // Pass 1: Y_g = C_g Ω. With Ω shared, C_u Ω = Σ w_g Y_g needs no columns of its own.
    for (auto& g : sketches) g.basis = omega;
    run(false);
    result.weights.resize(groups, 1.0);
    for (std::size_t g = 0; g < groups; ++g) {
        if (!universal_weights.empty())
            result.weights[g] = universal_weights[g];
        else if (options.trace_weighting)
            result.weights[g] = sketches[g].trace > 0 ? 1.0 / sketches[g].trace : 0.0;
    }
    std::vector<arma::mat> bases(groups);
    for (std::size_t g = 0; g < groups; ++g) bases[g] = orthonormal_basis(sketches[g].product, "group " + std::to_string(g));
    arma::mat universal_basis = orthonormal_basis(universal_sum(0, ell), "universal");

    // Passes 2..q+1: one step of subspace iteration, Q ← qr(C Q), for every group and C_u.
    for (std::size_t iteration = 0; iteration < options.power_iterations; ++iteration) {
        for (std::size_t g = 0; g < groups; ++g) sketches[g].basis = arma::join_rows(bases[g], universal_basis);
        run(false);
        for (std::size_t g = 0; g < groups; ++g)
            bases[g] = orthonormal_basis(sketches[g].product.head_cols(ell), "group " + std::to_string(g));
        universal_basis = orthonormal_basis(universal_sum(ell, ell), "universal");
    }

    // Last pass: C_g Q_g, C_g Q_u and the probes (I−P)Ω_r for both bases.
    std::vector<arma::mat> group_probes(groups);
    const arma::mat universal_probes = raw_probes - universal_basis * (universal_basis.t() * raw_probes);
    for (std::size_t g = 0; g < groups; ++g) {
        group_probes[g] = raw_probes - bases[g] * (bases[g].t() * raw_probes);
        sketches[g].basis = arma::join_rows(arma::join_rows(bases[g], universal_basis), group_probes[g], universal_probes);
    }
    run(true);

    const double sqrt_dim = std::sqrt(static_cast<double>(dim));
    auto rounding = [&](const group_sketch& g) {
        return double_unit_roundoff * (1 + sqrt_dim + std::sqrt(static_cast<double>(g.count))) * g.trace;
    };

    const std::size_t probes_at = 2 * ell;
    ritz_pairs ritz;
    double universal_trace = 0, universal_rounding = 0;
    std::uint64_t universal_count = 0;
    for (std::size_t g = 0; g < groups; ++g) {
        const group_sketch& s = sketches[g];
        const last_pass pass{bases[g], s.product.head_cols(ell), s.product.cols(probes_at, probes_at + r - 1),
                             group_probes[g], s.trace, rounding(s)};
        result.groups.push_back(finish(pass, k, "group " + std::to_string(g), ritz));
        result.groups.back().count = first_counts[g];
        universal_trace += result.weights[g] * s.trace;
        universal_rounding += result.weights[g] * pass.rounding;
        universal_count += first_counts[g];
    }
    const last_pass universal_pass{universal_basis, universal_sum(ell, ell), universal_sum(probes_at + r, r),
                                   universal_probes, universal_trace, universal_rounding};
    result.universal = finish(universal_pass, k, "universal", ritz);
    result.universal.count = universal_count;

    // Capture: W_g = Q_uᵀ C_g Q_u from the same pass; the universal Ritz
    // vectors are Q_u U, so v_jᵀ C_g v_j = (Uᵀ W_g U)_jj.
    const arma::mat u = ritz.coords.head_cols(k);
    for (std::size_t g = 0; g < groups; ++g) {
        arma::mat w = universal_basis.t() * sketches[g].product.cols(ell, 2 * ell - 1);
        w = 0.5 * (w + w.t());
        const arma::vec captured = arma::sum(u % (w * u), 0).t();
        result.universal_capture.push_back(arma::cumsum(captured) / sketches[g].trace);  // NaN for an all-zero group
    }
    return result;
}

}  // namespace adaptk
