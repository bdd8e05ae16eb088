// Randomized block Krylov iteration over streamed Gram matrices, for every
// group and the universal C_u = Σ w_g C_g at once (HMT 2011, §4.6 and
// Alg. 5.3; Musco & Musco 2015, "Randomized block Krylov methods for stronger
// and faster approximate singular value decomposition", NeurIPS, Alg. 2):
//   pass 1          Y₀ = C_g Q₀                 (Q₀ = qr(Ω), Ω d×ℓ Gaussian, shared by all)
//   pass j+1        Q_j = qr((I − KKᵀ) Y_{j−1}),  K ← [K | Q_j],  Y_j = C_g Q_j
//   after pass p    T = KᵀCK (filled block column by block column), eig_sym(T)
// with K = [Q₀ … Q_{p−1}] (d×pℓ, p = q + 2 passes): the Ritz problem runs on
// span{Ω, CΩ, …, C^{q+1}Ω}, which contains the subspace iteration's
// range(C^{q+1}Ω) and, for the flat spectra of LLM weights, converges far
// faster at the same passes (measured: d = 2048, TinyLlama-like decays, ℓ = 42,
// q = 2: worst top-32 relative error 3.2% against 18% for subspace iteration).
// Since every block's image is kept as a column block of T, no pass is spent
// on the Rayleigh–Ritz step. C_u needs no columns on pass 1 (C_u Q₀ = Σ w_g Y₀,g);
// from pass 2 on its own Q_j^u is streamed through every group, weighted, into
// one shared product; each group's unweighted image of Q_j^u also fills a
// block column of W_g = K_uᵀ C_g K_u, so the universal capture is exact for
// the returned universal vectors. The last pass streams the error probes too.
// A block X (d×b) adds X·(Xᵀ·B) to a product for its basis B: two GEMMs.
//
// Error estimate (documented per entity in rsvd.hpp). Let Q = K be the final
// d×m basis, T = QᵀCQ = UΘUᵀ its Ritz decomposition (θ descending), and
// split the space as [V₁ | V₂ | Q⊥]: V₁ = the first j Ritz vectors QU, V₂ the
// other m − j. In that basis
//     C = [[Θ₁, 0, E₁ᵀ], [0, Θ₂, E₂ᵀ], [E₁, E₂, S]],  E = Q⊥ᵀCQU,  S = Q⊥ᵀCQ⊥ ⪰ 0.
//  1. Lower bound: θ_i ≤ λ_i (Cauchy interlacing; T is a compression of C).
//  2. e_j = ‖E₁‖₂ and f_j = ‖E₂‖₂ are norms of column ranges of the Ritz
//     residual CQU − QUΘ. With Y = CQ = QT + R_p (R_p = (I − KKᵀ)Y_{p−1} in the
//     last column block, zero elsewhere: the block Lanczos relation) the
//     residual is R_p U, known from the last pass (bounded for every split by
//     nested_norms; e_m = ‖R_p U‖₂ exactly).
//  3. s = ‖S‖₂ is bounded by probes: with r standard Gaussian ω_i drawn
//     independently of Q, ‖S‖ ≤ α·√(2/π)·max_i ‖(I−P)C(I−P)ω_i‖ except with
//     probability α^-r (HMT 2011, Lemma 4.1; eq. 4.3 is α = 10). We fix the
//     failure probability at 10⁻¹⁰, α = 10^(10/r): the default r = 20 gives
//     α ≈ 3.2 where HMT's r = 10 gives 10. Deterministically also ‖S‖ ≤ tr S
//     = tr C − Σθ (the stream's exact trace); ŝ is the smaller. The probes see
//     ‖S‖_F rather than ‖S‖, so ŝ exceeds ‖S‖ ≈ λ_{m+1} by ~α·0.8·‖S‖_F/‖S‖:
//     Ritz values below ŝ get no gap and only the Weyl bound ≈ ŝ − θ_i + e_m.
//  4. The trailing block N = [[Θ₂, E₂ᵀ], [E₂, S]] has λ_max(N) ≤ μ_j, the
//     larger eigenvalue of [[θ_{j+1}, f_j], [f_j, ŝ]] (for a unit (x, y),
//     xᵀΘ₂x + 2yᵀE₂x + yᵀSy ≤ θ_{j+1}x² + 2f_j·xy + ŝ·y²). C is diag(Θ₁, N)
//     perturbed off the diagonal by E₁, so for θ_i > μ_j (Li & Li 2005, "A
//     note on eigenvalues of perturbed Hermitian matrices", LAA 395, Thm. 1,
//     with the gap η_i ≥ θ_i − μ_j):
//         λ_i − θ_i ≤ 2e_j² / (η_i + √(η_i² + 4e_j²))  ≤ min(e_j, e_j²/η_i),
//     quadratic in the residual of the leading Ritz vectors alone. Each
//     eigenvalue takes the best split j ∈ (i, m]; j = m (N = S, μ = ŝ) is the
//     plain subspace bound, and with no gap at all Weyl gives λ_i ≤ max(θ_i,
//     ŝ) + e_m. e_j and f_j for all splits come from nested_norms, O(m²).
//  5. Rounding: every product CQ_j enters T, so each carries, per unit-norm
//     basis column, an error ≤ ρ = u·(1 + √d + √n)·tr C under the
//     probabilistic model of Higham & Mary 2019 (SISC 41(5): an inner product
//     of length n errs by ~√n·u·|x|ᵀ|y|), with u = 2⁻⁵³ and n the vectors per
//     pass for float64 blocks, u = 2⁻²⁴ and n the longest float32 run between
//     float64 flushes (4096 vectors, or one block when a block is larger, as
//     measured on the passes) once any block is float. It moves θ, e and f by ≤ √m·ρ,
//     the probe bound by ≤ α·√(2/π)·ρ·max‖(I−P)ω_i‖ and tr S by ≤ m·√m·ρ; the
//     bound takes all of them: ~1e-14·tr C for float64 data, ~1e-5·tr C for
//     float32 products, which is below the 1% the tool is asked for even at
//     the 2048th eigenvalue of a flat spectrum (λ ≈ tr C/2048·0.3).
//     A basis stored in float32 (every block of its Gram float) is not
//     orthonormal to the bit: with ε = ‖KᵀK − I‖_F (measured, ≈ 2⁻²⁴·√m),
//     its orthonormal polar factor K̃ has ‖K − K̃‖₂ ≤ ε, so using K for K̃
//     moves C·k by ≤ ε‖C‖ and Kᵀ(·) or KKᵀ(·) after it by 2ε‖C‖ more per unit
//     column (ε ≤ 1): ρ grows by 3ε·tr C, about 6e-6·tr C at m = 168.
// error_estimate = max_i value_errors[i] then bounds every |λ_i − θ_i|, i < k.
//
// Precision: float blocks are multiplied in float32 (sgemm, twice dgemm's
// rate) with float64 sums every 4096 vectors (or every block, when larger);
// double blocks in float64. Bases of float-only Grams are stored in float32
// (half the method's memory); all arithmetic with them is float64.
// Everything random comes from one mt19937_64, Ω first, then the probes
// (drawn when the last pass needs them), so both depend on the seed and
// shapes alone.

#include "adaptk/rsvd.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "adaptk/error.hpp"
#include "adaptk/gram.hpp"
#include "detail/checked.hpp"
#include "detail/linalg.hpp"
#include "detail/part_runner.hpp"

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
constexpr double double_unit_roundoff = 0x1.0p-53;
constexpr double float_unit_roundoff = 0x1.0p-24;

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

// d×m columns (a Krylov basis K or the error probes), stored in float32 when
// every block of their Gram is float, whose products use them rounded to
// float32 anyway, else in float64: K is the method's largest state (issue 13).
// Arithmetic with them is float64, converting one chunk of rows at a time, so
// no float64 copy of a float32 store is ever made.
class column_store {
public:
    column_store() = default;
    column_store(const arma::mat& columns, bool single) {
        if (single)
            single_ = arma::conv_to<arma::fmat>::from(columns);
        else
            twice_ = columns;
        single_storage_ = single;
        rows_ = columns.n_rows;
    }
    std::size_t rows() const { return rows_; }
    std::size_t cols() const { return single_storage_ ? single_.n_cols : twice_.n_cols; }
    bool single() const { return single_storage_; }

    /// From now on in float32 (no-op when it is already).
    void store_single() {
        if (single_storage_) return;
        *this = column_store(twice_, true);
    }
    void append(const arma::mat& columns) {
        if (single_storage_)
            single_ = arma::join_rows(single_, arma::conv_to<arma::fmat>::from(columns));
        else
            twice_ = arma::join_rows(twice_, columns);
    }
    /// Kᵀ·Y (m×c).
    arma::mat project(const arma::mat& y) const {
        arma::mat chunk;
        return project(y, chunk);
    }
    /// The same with `chunk` as the float64 rows of a float32 store: a caller
    /// projecting at every flush keeps one (a fresh one per call cost page faults).
    arma::mat project(const arma::mat& y, arma::mat& chunk) const {
        if (!single_storage_) return twice_.t() * y;
        arma::mat out(cols(), y.n_cols, arma::fill::zeros);
        if (y.n_cols == 0) return out;  // no empty row views (Armadillo binds a null pointer)
        for_each_chunk(chunk, [&](std::size_t first, std::size_t last, const arma::mat& k) { out += k.t() * y.rows(first, last); });
        return out;
    }
    /// K·C (d×c).
    arma::mat expand(const arma::mat& c) const {
        if (!single_storage_) return twice_ * c;
        arma::mat out(rows_, c.n_cols);
        if (c.n_cols == 0) return out;
        for_each_chunk([&](std::size_t first, std::size_t last, const arma::mat& k) { out.rows(first, last) = k * c; });
        return out;
    }
    /// (I − KKᵀ)·Y.
    arma::mat orthogonal(const arma::mat& y) const { return cols() == 0 ? y : arma::mat(y - expand(project(y))); }
    /// ‖KᵀK − I‖_F ≥ ‖KᵀK − I‖₂: how far the stored columns are from orthonormal.
    double orthogonality_loss() const {
        arma::mat gram(cols(), cols(), arma::fill::zeros);
        if (single_storage_)
            for_each_chunk([&](std::size_t, std::size_t, const arma::mat& k) { gram += k.t() * k; });
        else
            gram = twice_.t() * twice_;
        return arma::norm(gram - arma::eye(cols(), cols()), "fro");
    }
    /// Columns [first, first + count) into out's columns [at, at + count), in out's precision.
    template <class Real>
    void copy_columns(std::size_t first, std::size_t count, arma::Mat<Real>& out, std::size_t at) const {
        if (count == 0) return;
        if (single_storage_)
            out.cols(at, at + count - 1) = arma::conv_to<arma::Mat<Real>>::from(single_.cols(first, first + count - 1));
        else
            out.cols(at, at + count - 1) = arma::conv_to<arma::Mat<Real>>::from(twice_.cols(first, first + count - 1));
    }
    /// The largest column norm.
    double max_column_norm() const {
        arma::mat all(rows_, cols());
        copy_columns(0, cols(), all, 0);
        return cols() == 0 ? 0.0 : arma::max(arma::sqrt(arma::sum(arma::square(all), 0)));
    }

private:
    // float64 rows [first, last] of a float32 store, 512 at a time (512·m·8
    // bytes), converted into one buffer: a fresh one per chunk cost a page
    // fault per 4 KiB (measured: 8% of the passes' CPU time at d = 4096).
    template <class Visit>
    void for_each_chunk(Visit&& visit) const {
        arma::mat chunk;
        for_each_chunk(chunk, visit);
    }
    template <class Visit>
    void for_each_chunk(arma::mat& chunk, Visit&& visit) const {
        constexpr std::size_t chunk_rows = 512;
        for (std::size_t first = 0; first < rows_; first += chunk_rows) {
            const std::size_t last = std::min(first + chunk_rows, rows_) - 1;
            if (last - first + 1 != chunk.n_rows || chunk.n_cols != cols()) chunk.set_size(last - first + 1, cols());
            for (std::size_t j = 0; j < cols(); ++j)
                std::copy(single_.colptr(j) + first, single_.colptr(j) + last + 1, chunk.colptr(j));
            visit(first, last, chunk);
        }
    }

    arma::fmat single_;
    arma::mat twice_;
    bool single_storage_ = false;
    std::size_t rows_ = 0;
};

// What one Gram matrix C (a group's or C_u) carries between passes.
struct krylov_state {
    column_store basis;         // K: d×m, orthonormal columns (up to its storage's rounding)
    arma::mat ritz_matrix;      // T = KᵀCK; block column j filled after pass j + 1 (upper part)
    arma::mat remainder_gram;   // RᵀR of R = (I − KKᵀ)·C·Q_last after the last pass (ℓ×ℓ, not d×ℓ)
    std::size_t streamed = 0;   // the pass computes C·(K's last `streamed` columns)
    arma::mat product;          // this pass's C·[Q_j | probes], float64
};

struct group_state {
    krylov_state krylov;
    column_store probes;  // (I − KKᵀ)Ω_r, streamed on the last pass, stored as K is
    arma::mat capture;    // W_g = K_uᵀ C_g K_u, upper block columns filled pass by pass
    std::uint64_t count = 0;
    double trace = 0;
    std::size_t float_run = 0;   // the most vectors one float32 sum spanned; 0: no float block
    bool double_blocks = false;  // any float64 block: K stays float64
};

// Σ x_i² in float64 (products of float32 values are exact there), in eight
// running sums so that the loop vectorizes.
template <class Real>
double squared_sum(const Real* x, std::size_t n) {
    constexpr std::size_t lanes = 8;
    std::array<double, lanes> sums{};
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (std::size_t j = 0; j < lanes; ++j) sums[j] += static_cast<double>(x[i + j]) * x[i + j];
    for (; i < n; ++i) sums[0] += static_cast<double>(x[i]) * x[i];
    return ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
}

// One pass over the blocks. For group g the visitor projects a block X onto
// B = [Q_g | probes_g | Q_u | probes_u] at once, P = XᵀB (one GEMM, X packed
// once), and adds X·P (one GEMM) to a pending buffer of the current group, in
// float32 for float blocks. Both GEMMs are split between `workers` threads
// with one-threaded BLAS each (OpenBLAS's own threads spin on sched_yield
// between these short calls: measured, a quarter of the method's CPU time at
// d = 4096): P by vectors, X·P by rows of d, so the workers share one pending
// sum (one per worker was d×2(ℓ + r) float32 more each: 2 MiB at d = 4096,
// spent on larger blocks instead, analysis.cpp). Pending sums go to float64
// every 4096 vectors and whenever the group changes: the group's columns to
// its product, the universal ones times w_g to C_u's and unweighted to the
// group's C_g·Q_u, which goes as K_uᵀ·(C_g Q_u) to its capture W_g = K_uᵀ C_g K_u
// when the group changes (block column by block column as T is built).
class pass_visitor final : public block_visitor {
public:
    struct universal_part {
        krylov_state* state = nullptr;         // null on the first pass
        const column_store* probes = nullptr;  // last pass only
    };

    pass_visitor(std::size_t dim, std::vector<group_state>& groups, universal_part universal,
                 const std::vector<double>& weights, bool first_pass, bool last_pass, std::size_t workers)
        : dim_(dim),
          groups_(groups),
          universal_(universal),
          weights_(weights),
          first_pass_(first_pass),
          last_pass_(last_pass),
          column_(dim),
          runner_(workers) {}

    void operator()(std::size_t group, const float* block, std::size_t count) override { add(group, block, count); }
    void operator()(std::size_t group, const double* block, std::size_t count) override { add(group, block, count); }
    void end_run() override { flush_sums(); }

    /// Moves every pending sum into the float64 products and W_g; call after the pass.
    void flush() {
        flush_sums();
        project_universal_sums();
    }

private:
    // Per block precision: the basis, the block's Xᵀ·B and the X·P sum.
    template <class Real>
    struct precision_buffers {
        arma::Mat<Real> basis;
        bool built = false;       // basis holds the current group's columns (its memory is kept across groups)
        arma::Mat<Real> product;  // Xᵀ·B in its first `count` rows (sized for the largest block: no reallocation per block)
        arma::Mat<Real> pending;  // Σ X·(XᵀB) since the last flush (overwritten by the first block after it)
        std::size_t vectors = 0;  // in the pending sum since the last flush
    };

    // Below this many vectors per worker a block is not split (thread start-up ~ tens of µs).
    static constexpr std::size_t min_worker_vectors = 32;

    template <class Real>
    void add(std::size_t group, const Real* block, std::size_t count) {
        if (group >= groups_.size())
            throw std::invalid_argument("block_visitor: group " + std::to_string(group) + " is out of range [0, " +
                                        std::to_string(groups_.size()) + ")");
        if (count == 0) return;
        if (block == nullptr)
            throw std::invalid_argument("block_visitor: null block of " + std::to_string(count) + " vectors for group " +
                                        std::to_string(group));
        if (group != current_) {
            flush();
            current_ = group;
            single_.built = false;
            double_.built = false;
        }
        group_state& g = groups_[group];
        g.count += count;
        g.double_blocks = g.double_blocks || std::is_same_v<Real, double>;
        precision_buffers<Real>& buffers = select<Real>(single_, double_);
        // As in gram_accumulator: a float32 run ends before a block that would
        // carry it past float_flush_vectors, so it spans at most that or one block.
        if (std::is_same_v<Real, float> && buffers.vectors > 0 && buffers.vectors + count > float_flush_vectors) flush_sums();
        const arma::Mat<Real>& b = basis<Real>();
        const std::size_t width = b.n_cols;
        arma::Mat<Real>& product = buffers.product;
        if (product.n_rows < count || product.n_cols != width) product.set_size(std::max<std::size_t>(count, product.n_rows), width);
        if (buffers.pending.n_rows != dim_ || buffers.pending.n_cols != width) buffers.pending.set_size(dim_, width);
        // The second GEMM does the first's work, so both are split as often.
        const std::size_t parts = std::clamp<std::size_t>(count / min_worker_vectors, 1, runner_.threads());
        std::vector<double> traces(parts, 0.0);
        runner_.run(parts, [&](std::size_t part) {  // P's rows by vectors
            const std::size_t first = count * part / parts, vectors = count * (part + 1) / parts - first;
            const Real* start = block + first * dim_;
            if (first_pass_) traces[part] = squared_sum(start, dim_ * vectors);
            detail::gemm(true, vectors, width, dim_, start, dim_, b.memptr(), dim_, Real(0), product.memptr() + first,
                         product.n_rows);
        });
        // The first block after a flush overwrites the sum: no zeroing pass over it per flush.
        const Real keep = buffers.vectors == 0 ? 0 : 1;
        runner_.run(parts, [&](std::size_t part) {  // X·P by rows of d
            const std::size_t first = dim_ * part / parts, rows = dim_ * (part + 1) / parts - first;
            if (rows > 0)
                detail::gemm(false, rows, width, count, block + first, dim_, product.memptr(), product.n_rows, keep,
                             buffers.pending.memptr() + first, dim_);
        });
        for (const double trace : traces) g.trace += trace;  // in part order: the same bits every run
        buffers.vectors += count;
        if constexpr (std::is_same_v<Real, float>) {
            g.float_run = std::max(g.float_run, buffers.vectors);
            if (buffers.vectors >= float_flush_vectors) flush_sums();
        }
    }

    // [Q_g | probes_g | Q_u | probes_u] for the current group, built at its
    // first block of each precision.
    template <class Real>
    const arma::Mat<Real>& basis() {
        precision_buffers<Real>& buffers = select<Real>(single_, double_);
        arma::Mat<Real>& b = buffers.basis;
        if (buffers.built) return b;
        buffers.built = true;
        const group_state& g = groups_[current_];
        const krylov_state* u = universal_.state;
        const std::size_t group_probes = last_pass_ ? g.probes.cols() : 0;
        const std::size_t universal_probes = universal_.probes ? universal_.probes->cols() : 0;
        group_columns_ = g.krylov.streamed + group_probes;
        b.set_size(dim_, group_columns_ + (u ? u->streamed + universal_probes : 0));
        g.krylov.basis.copy_columns(g.krylov.basis.cols() - g.krylov.streamed, g.krylov.streamed, b, 0);
        g.probes.copy_columns(0, group_probes, b, g.krylov.streamed);
        if (u) {
            u->basis.copy_columns(u->basis.cols() - u->streamed, u->streamed, b, group_columns_);
            if (universal_.probes) universal_.probes->copy_columns(0, universal_probes, b, group_columns_ + u->streamed);
        }
        return b;
    }

    // Ends the float32 run: the pending sums of both precisions to float64.
    void flush_sums() {
        flush_pending(single_);
        flush_pending(double_);
    }

    template <class Real>
    void flush_pending(precision_buffers<Real>& buffers) {
        if (buffers.vectors == 0) return;
        group_state& g = groups_[current_];
        // Column j of the pending sum in float64, in column_:
        // one column at a time, so no float64 copy of the whole pending sum, and
        // into buffers kept for the pass (a fresh vector per column and flush
        // cost page faults: 3.6% of the CPU samples at d = 4096).
        auto sum = [&](std::size_t j) -> const arma::vec& {
            const Real* values = buffers.pending.colptr(j);
            std::copy(values, values + dim_, column_.begin());
            return column_;
        };
        for (std::size_t j = 0; j < group_columns_; ++j) g.krylov.product.col(j) += sum(j);
        if (krylov_state* u = universal_.state) {
            const double weight = weights_[current_];
            const std::size_t width = buffers.pending.n_cols, streamed = u->streamed;
            if (universal_sums_.n_rows != dim_ || universal_sums_.n_cols != streamed) universal_sums_.zeros(dim_, streamed);
            const std::size_t last = weight != 0 ? width : group_columns_ + streamed;  // w_g = 0: for W_g only
            for (std::size_t j = group_columns_; j < last; ++j) {
                const arma::vec& column = sum(j);
                if (weight != 0) u->product.col(j - group_columns_) += weight * column;
                if (j < group_columns_ + streamed) universal_sums_.col(j - group_columns_) += column;
            }
            universal_sums_group_ = current_;
        }
        buffers.vectors = 0;  // the pending sum is overwritten by the next block
    }

    // W_g's block column for Q_u (K_u's last `streamed` columns), K_uᵀ·C_g·Q_u,
    // from the group's sums since its run began: once per run of a group's
    // blocks, not at every flush (an m_u×d×ℓ product each).
    void project_universal_sums() {
        if (universal_sums_group_ == no_group) return;
        const krylov_state& u = *universal_.state;
        const std::size_t m = u.basis.cols(), streamed = u.streamed;
        if (streamed > 0)
            groups_[universal_sums_group_].capture.cols(m - streamed, m - 1) += u.basis.project(universal_sums_, basis_chunk_);
        universal_sums_.zeros();
        universal_sums_group_ = no_group;
    }

    template <class Real, class F, class D>
    static auto& select(F& if_float, D& if_double) {
        if constexpr (std::is_same_v<Real, float>)
            return if_float;
        else
            return if_double;
    }

    std::size_t dim_;
    std::vector<group_state>& groups_;
    universal_part universal_;
    const std::vector<double>& weights_;
    bool first_pass_, last_pass_;
    static constexpr std::size_t no_group = static_cast<std::size_t>(-1);
    std::size_t current_ = no_group;
    std::size_t group_columns_ = 0;  // the current basis's group columns, then C_u's
    precision_buffers<float> single_;
    precision_buffers<double> double_;
    arma::vec column_;       // flush_pending's float64 sum of one pending column
    arma::mat universal_sums_;  // the current group's C_g·Q_u since its run began, for W_g
    std::size_t universal_sums_group_ = no_group;  // that group; no_group: nothing to project
    arma::mat basis_chunk_;     // K_u's rows in float64 while they project universal_sums_
    detail::part_runner runner_;
};

// Q with orthonormal columns spanning (I − KKᵀ)Y, at most `width` of them:
// projected twice ("twice is enough", Giraitis & Parlett), then QR. Directions
// the remainder lacks (Y inside range K) come out of the QR as some unit
// vectors; the second projection and QR make those orthogonal to K as well.
arma::mat extend_basis(const column_store& k, const arma::mat& y, std::size_t width, const std::string& what) {
    arma::mat r = y.head_cols(width);
    for (int round = 0; round < 2; ++round) {
        r = k.orthogonal(r);
        arma::mat q, upper;
        if (!arma::qr_econ(q, upper, r)) throw numerical_error(who() + "QR of the " + what + " Krylov block failed");
        r = std::move(q);
    }
    return r;
}

// After a pass: T's block column for the streamed Q_j (the basis's last `width` columns).
void absorb_image(krylov_state& s, const arma::mat& image, std::size_t width) {
    const std::size_t m = s.basis.cols();
    s.ritz_matrix.resize(m, m);
    if (width > 0) s.ritz_matrix.cols(m - width, m - 1) = s.basis.project(image);
}

// Then the basis is final (the remainder's Gram kept for the bound) or grows by Q_{j+1}.
void close_or_grow(krylov_state& s, const arma::mat& image, std::size_t width, bool last, const std::string& what) {
    if (last) {
        const arma::mat remainder = s.basis.orthogonal(image);
        s.remainder_gram = remainder.t() * remainder;
        return;
    }
    const std::size_t next = std::min<std::size_t>(width, s.basis.rows() - s.basis.cols());
    if (next > 0) s.basis.append(extend_basis(s.basis, image, next, what));
    s.streamed = s.basis.cols() - s.ritz_matrix.n_cols;
}

// Rayleigh–Ritz on the basis Q: T = sym(QᵀCQ); eigenpairs descending.
struct ritz_pairs {
    arma::vec values;  // m
    arma::mat coords;  // m×m, column i belongs to values[i]
};
ritz_pairs rayleigh_ritz(const arma::mat& upper, const std::string& what) {
    const arma::mat t = arma::symmatu(upper);
    arma::vec values;
    arma::mat coords;
    if (!arma::eig_sym(values, coords, t)) throw numerical_error(who() + "eig_sym of the " + what + " Ritz matrix failed");
    return {arma::reverse(values), arma::fliplr(coords)};
}

// Largest eigenvalue of the symmetric block g[first..last], as a norm: √λ_max.
double block_norm(const arma::mat& g, std::size_t first, std::size_t last, const std::string& what) {
    arma::vec values;
    if (!arma::eig_sym(values, arma::mat(g.submat(first, first, last, last))))
        throw numerical_error(who() + "eig_sym of the " + what + " residual Gram failed");
    return std::sqrt(std::max(values.max(), 0.0));
}

// Upper bounds on √λ_max of the nested blocks G[0, j) (leading, out[j]) or
// G[j, m) (trailing, out[j]) of the residual Gram, every j, in O(m²):
// bordering a block with λ_max ≤ a by a column g and diagonal γ gives
// λ_max ≤ the larger eigenvalue of [[a, ‖g‖], [‖g‖, γ]]. Exact for
// orthogonal residuals, at worst the Frobenius norm; on the tests' fixtures
// within 1.3× of the exact norms, which cost one eig_sym per split (O(m⁴)
// in all: a d = 512, m = 266, two-group run took 2.3 s with them, 0.33 s
// with this).
arma::vec nested_norms(const arma::mat& gram, bool leading) {
    const std::size_t m = gram.n_rows;
    arma::vec out(m + 1, arma::fill::zeros);
    double a = 0;
    for (std::size_t step = 0; step < m; ++step) {
        const std::size_t j = leading ? step : m - 1 - step;
        double border = 0;
        if (leading)
            for (std::size_t i = 0; i < j; ++i) border += gram(i, j) * gram(i, j);
        else
            for (std::size_t i = j + 1; i < m; ++i) border += gram(i, j) * gram(i, j);
        const double gamma = gram(j, j), mid = 0.5 * (a + gamma), half = 0.5 * (a - gamma);
        a = mid + std::sqrt(half * half + border);
        out[leading ? j + 1 : j] = std::sqrt(std::max(a, 0.0));
    }
    return out;
}

// Li & Li 2005, Thm. 1: eigenvalue shift of a block-diagonal matrix with gap η
// under an off-diagonal block of norm e.
double quadratic_bound(double e, double gap) { return e > 0 ? 2 * e * e / (gap + std::sqrt(gap * gap + 4 * e * e)) : 0.0; }

// What the passes left for one Gram matrix C (a group's or C_u).
struct finished_stream {
    const krylov_state& krylov;
    arma::mat probe_response;  // C·(I−P)Ω_r
    const column_store& probes;  // (I−P)Ω_r
    double trace;
    double rounding;           // ρ of the file comment, step 5
};

// Ritz pairs and the error bound of the file comment, steps 1–5.
rsvd_group_result finish(const finished_stream& pass, std::size_t k, const std::string& what, ritz_pairs& ritz) {
    const column_store& q = pass.krylov.basis;
    ritz = rayleigh_ritz(pass.krylov.ritz_matrix, what);
    const std::size_t m = q.cols();
    const arma::vec& theta = ritz.values;
    rsvd_group_result result;
    result.values = arma::clamp(theta.head(k), 0.0, arma::datum::inf);
    result.vectors = q.expand(ritz.coords.head_cols(k));
    result.trace = pass.trace;
    result.basis_size = m;

    // The last Krylov block's gain: Ritz values without it interlace below θ.
    const std::size_t last_width = pass.krylov.remainder_gram.n_cols;
    result.value_changes.zeros(k);
    if (last_width > 0 && m - last_width >= k && m < q.rows()) {  // a basis of the whole space is exact
        arma::vec previous;
        if (!arma::eig_sym(previous, arma::symmatu(pass.krylov.ritz_matrix.submat(0, 0, m - last_width - 1, m - last_width - 1))))
            throw numerical_error(who() + "eig_sym of the " + what + " leading Ritz matrix failed");
        result.value_changes = arma::clamp(theta.head(k) - arma::vec(arma::reverse(previous)).head(k), 0.0, arma::datum::inf);
    }

    // Step 2: Ritz residuals R_p·U (the remainder fills the last block column), and their Gram.
    // No last block (K spans the whole space): no residual, and no zero-row view of U.
    arma::mat gram(m, m, arma::fill::zeros);
    if (last_width > 0) {
        const arma::mat tail_coords = ritz.coords.tail_rows(last_width);
        gram = tail_coords.t() * pass.krylov.remainder_gram * tail_coords;
        gram = 0.5 * (gram + gram.t());
    }
    // Step 3: (I−P)C(I−P)ω_i = (I−P)·response_i.
    const arma::mat tail = q.orthogonal(pass.probe_response);
    const double tail_probe = arma::max(arma::sqrt(arma::sum(arma::square(tail), 0)));
    const double probe_norm = pass.probes.max_column_norm();
    // ‖S‖ ≤ tr S = tr C − Σθ as well: exact, deterministic, and the better bound for a fast-decaying tail.
    const double tail_trace = std::max(pass.trace - arma::accu(theta), 0.0);
    result.residual_norm = block_norm(gram, 0, m - 1, what);
    const double factor = probe_factor(pass.probes.cols());
    result.tail_norm = m == q.rows() ? 0.0 : std::min(factor * tail_probe, tail_trace);
    result.range_error = std::hypot(result.residual_norm, result.tail_norm);

    // Step 5: widen e, f, ŝ and θ by what rounding may have moved them.
    result.basis_loss = q.orthogonality_loss();
    const double rho = pass.rounding + 3 * result.basis_loss * pass.trace;
    const double shift = std::sqrt(static_cast<double>(m)) * rho;
    result.rounding = shift;
    const double s = m == q.rows() ? 0.0
                                   : std::min(factor * (tail_probe + rho * probe_norm),
                                              tail_trace + static_cast<double>(m) * shift);
    // Step 4, all splits j = 1..m: leading[j] ≥ e_j, trailing[j] ≥ μ_j.
    arma::vec leading = nested_norms(gram, true) + shift;
    leading[m] = result.residual_norm + shift;  // the whole block, exactly
    const arma::vec f = nested_norms(gram, false) + shift;
    arma::vec trailing(m + 1);
    trailing[m] = s;
    for (std::size_t j = 1; j < m; ++j) {
        const double mid = 0.5 * (theta[j] + s), half = 0.5 * (theta[j] - s);
        trailing[j] = mid + std::sqrt(half * half + f[j] * f[j]);
    }
    result.value_errors.set_size(k);
    for (std::size_t i = 0; i < k; ++i) {
        double bound = std::max(s - theta[i], 0.0) + leading[m];  // Weyl, no gap needed
        for (std::size_t j = i + 1; j <= m; ++j)
            if (theta[i] > trailing[j]) bound = std::min(bound, quadratic_bound(leading[j], theta[i] - trailing[j]));
        result.value_errors[i] = bound + shift;
    }
    result.error_estimate = result.value_errors.max();
    if (!result.values.is_finite() || !result.value_errors.is_finite())
        throw numerical_error(who() + "the " + what + " Ritz values are not finite");
    return result;
}

void check_finite(const arma::mat& m, std::size_t pass, const std::string& what) {
    if (!m.is_finite())
        throw numerical_error(who() + "pass " + std::to_string(pass) + ": the product of " + what +
                              " holds NaN or Inf (non-finite vectors?)");
}

std::string group_label(std::size_t g) { return "group " + std::to_string(g); }

// The arguments randomized_eigen documents as invalid, each named.
void check_arguments(std::size_t dim, std::size_t groups, const std::vector<double>& universal_weights,
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
    if (!(options.universal_tolerance >= 0))
        throw std::invalid_argument(who() + "options.universal_tolerance must be >= 0, got " +
                                    std::to_string(options.universal_tolerance));
    if (!run_pass) throw std::invalid_argument(who() + "run_pass is empty");
}

// Every pass must stream what pass 1 did, group by group.
void check_counts(const std::vector<group_state>& states, std::vector<std::uint64_t>& first_counts, std::size_t pass) {
    for (std::size_t g = 0; g < states.size(); ++g) {
        const group_state& s = states[g];
        if (pass == 1)
            first_counts[g] = s.count;
        else if (s.count != first_counts[g])
            throw std::invalid_argument(who() + "pass " + std::to_string(pass) + " streamed " + std::to_string(s.count) +
                                        " vectors of group " + std::to_string(g) + ", pass 1 streamed " +
                                        std::to_string(first_counts[g]) +
                                        ": run_pass must stream the same data every pass");
        check_finite(s.krylov.product, pass, group_label(g));
    }
}

// w_g of C_u = Σ_g w_g C_g: given, or 1, or 1/tr C_g (the traces come from pass 1).
std::vector<double> universal_weights_of(const std::vector<group_state>& states, const std::vector<double>& given,
                                         bool trace_weighting) {
    if (!given.empty()) return given;
    std::vector<double> weights(states.size(), 1.0);
    if (trace_weighting)
        for (std::size_t g = 0; g < states.size(); ++g)
            weights[g] = states[g].trace > 0 ? 1.0 / states[g].trace : 0.0;
    return weights;
}

// Before a pass: each product sized for the streamed block (and, on the last
// pass, the `probes` error probes (I − KKᵀ)Ω_r that ride along, Ω_r drawn
// here from `rng` and dropped once projected), counts reset, and the
// captures grown with K_u.
void prepare_pass(std::vector<group_state>& states, krylov_state& universal, bool first, std::size_t probes,
                  std::mt19937_64& rng, column_store& universal_probes) {
    const std::size_t dim = universal.basis.rows();
    if (probes > 0) {
        const arma::mat raw = gaussian_matrix(rng, dim, probes);
        auto probes_of = [&](const column_store& k) { return column_store(k.orthogonal(raw), k.single()); };
        for (auto& g : states) g.probes = probes_of(g.krylov.basis);
        universal_probes = probes_of(universal.basis);
    }
    for (auto& g : states) {
        g.capture.resize(universal.basis.cols(), universal.basis.cols());
        g.count = 0;
        g.krylov.product.zeros(dim, g.krylov.streamed + probes);
    }
    if (!first) universal.product.zeros(dim, universal.streamed + probes);
}

// A split stream's pass: every process's partial products, counts and
// traces added (float_run and double_blocks: their maxima), W_g's block
// column of this pass too (earlier ones are whole already). Its message
// sizes: per group d×(ℓ + r) and m×ℓ doubles, C_u's d×(ℓ + r), 4·groups more.
void combine_pass(std::vector<group_state>& states, krylov_state& universal, bool first, const pass_combiner& combine) {
    auto whole = [&](arma::mat& m) {
        if (m.n_elem > 0) combine({m.memptr(), m.n_elem}, combine_op::sum);  // a finished group's is empty
    };
    std::vector<double> sums, maxima;
    for (auto& g : states) {
        whole(g.krylov.product);
        const std::size_t m = universal.basis.cols(), width = universal.streamed;
        if (!first && width > 0) combine({g.capture.colptr(m - width), m * width}, combine_op::sum);  // whole columns: contiguous
        sums.insert(sums.end(), {static_cast<double>(g.count), g.trace});
        maxima.insert(maxima.end(), {static_cast<double>(g.float_run), g.double_blocks ? 1.0 : 0.0});
    }
    if (!first) whole(universal.product);
    combine(sums, combine_op::sum);
    combine(maxima, combine_op::max);
    for (std::size_t g = 0; g < states.size(); ++g) {
        states[g].count = static_cast<std::uint64_t>(sums[2 * g]);  // exact below 2⁵³
        if (first) states[g].trace = sums[2 * g + 1];               // summed on the first pass only
        states[g].float_run = static_cast<std::size_t>(maxima[2 * g]);
        states[g].double_blocks = maxima[2 * g + 1] != 0;
    }
}

// After pass 1: each basis goes to float32 unless its Gram had a float64
// block (C_u's: unless any had), and C_u·Q₀ = Σ w_g C_g·Q₀ comes from the
// groups' products, W_g's first block Q₀ᵀ C_g Q₀ too (Q₀ is every basis so far).
void seed_universal(std::vector<group_state>& states, const std::vector<double>& weights, krylov_state& universal) {
    bool all_single = true;
    for (auto& g : states) {
        if (!g.double_blocks) g.krylov.basis.store_single();
        all_single = all_single && !g.double_blocks;
    }
    if (all_single) universal.basis.store_single();
    const column_store& q0 = universal.basis;
    universal.product.zeros(q0.rows(), q0.cols());
    for (std::size_t g = 0; g < states.size(); ++g) {
        states[g].capture = q0.project(states[g].krylov.product);
        if (weights[g] != 0) universal.product += weights[g] * states[g].krylov.product;
    }
    universal.streamed = q0.cols();
}

// ρ of the file comment, step 5: per unit basis column, what rounding may move C·q by.
double rounding_of(const group_state& g, std::size_t dim) {
    const bool has_float = g.float_run > 0;
    const double unit = has_float ? float_unit_roundoff : double_unit_roundoff;
    const double run = static_cast<double>(has_float ? g.float_run : g.count);
    return unit * (1 + std::sqrt(static_cast<double>(dim)) + std::sqrt(run)) * g.trace;
}

// What C_u's bound takes from the groups: its trace Σ w_g tr C_g, its
// rounding Σ w_g ρ_g, and the vectors per pass.
struct universal_totals {
    double trace = 0, rounding = 0;
    std::uint64_t count = 0;
};

// After the groups' last pass: each group's Ritz pairs and bounds. Its
// d-sized state is freed (the results grow into it); its W_g, trace and
// counts stay for C_u's captures and any pass C_u makes alone.
universal_totals finish_groups(std::vector<group_state>& states, const std::vector<std::uint64_t>& first_counts,
                               std::size_t dim, std::size_t probes, rsvd_result& result) {
    ritz_pairs ritz;
    universal_totals totals;
    for (std::size_t g = 0; g < states.size(); ++g) {
        group_state& s = states[g];
        const finished_stream stream{s.krylov, s.krylov.product.tail_cols(probes), s.probes, s.trace, rounding_of(s, dim)};
        result.groups.push_back(finish(stream, result.k, group_label(g), ritz));
        s.krylov = krylov_state();
        s.probes = column_store();
        result.groups.back().count = first_counts[g];
        totals.trace += result.weights[g] * s.trace;
        totals.rounding += result.weights[g] * stream.rounding;
        totals.count += first_counts[g];
    }
    return totals;
}

// Each group's cumulative capture through the universal Ritz vectors K_u·U
// (U: coordinates in K_u's first u.n_rows columns): v_jᵀ C_g v_j = (Uᵀ W_g U)_jj.
std::vector<arma::vec> universal_captures(const std::vector<group_state>& states, const arma::mat& u) {
    std::vector<arma::vec> out;
    const std::size_t m = u.n_rows;
    for (const group_state& s : states) {
        const arma::mat w = arma::symmatu(s.capture.submat(0, 0, m - 1, m - 1));
        const arma::vec captured = arma::sum(u % (w * u), 0).t();
        out.push_back(arma::cumsum(captured) / s.trace);  // NaN for an all-zero group
    }
    return out;
}

// How far C_u's last Krylov block (its `streamed` columns, T's and W_g's
// last block column) moved the captures of the top k: the Ritz problem with
// and without it, the largest change over the groups. Krylov steps shrink
// it geometrically, so it estimates the error left (measured on d = 1024 and
// 2048 models of the presets' spectra: the error after a block stayed below
// that block's change).
double capture_change(const std::vector<group_state>& states, const krylov_state& universal, std::size_t k) {
    const std::size_t m = universal.ritz_matrix.n_cols, before = m - universal.streamed;
    if (universal.streamed == 0) return 0;
    if (before < k) return arma::datum::inf;
    auto top = [&](std::size_t size) {
        const ritz_pairs ritz = rayleigh_ritz(universal.ritz_matrix.submat(0, 0, size - 1, size - 1), "universal");
        return universal_captures(states, ritz.coords.head_cols(k));
    };
    const std::vector<arma::vec> now = top(m), earlier = top(before);
    double change = 0;
    for (std::size_t g = 0; g < states.size(); ++g)
        if (states[g].trace > 0) change = std::max(change, std::abs(now[g][k - 1] - earlier[g][k - 1]));
    return change;
}

// A pass that streamed C_u's block Q alone (its image Y = C_u·Q) moves the
// probes kept from the groups' last pass, (I − P)Ω_r, off Q as well: with
// ω ⊥ K before Q, (I − P − QQᵀ)ω = ω − Q(Qᵀω) and C_u of it = C_u·ω − Y·(Qᵀω),
// no probe columns streamed again. They stay (I − P)Ω_r of the same draws,
// independent of K_u: HMT's Lemma 4.1 holds for the grown basis.
void move_probes(const krylov_state& universal, const arma::mat& image, column_store& probes, arma::mat& response) {
    const std::size_t m = universal.basis.cols(), width = universal.streamed;
    arma::mat q(universal.basis.rows(), width), p(probes.rows(), probes.cols());
    universal.basis.copy_columns(m - width, width, q, 0);
    probes.copy_columns(0, probes.cols(), p, 0);
    const arma::mat coefficients = q.t() * p;
    probes = column_store(p - q * coefficients, probes.single());
    response -= image * coefficients;
}

// After C_u's last pass: its Ritz pairs and bound, and the captures.
void finish_universal(const std::vector<group_state>& states, const krylov_state& universal, const column_store& probes,
                      const arma::mat& response, const universal_totals& totals, rsvd_result& result) {
    ritz_pairs ritz;
    const finished_stream stream{universal, response, probes, totals.trace, totals.rounding};
    result.universal = finish(stream, result.k, "universal", ritz);
    result.universal.count = totals.count;
    result.universal_capture = universal_captures(states, ritz.coords.head_cols(result.k));
}

}  // namespace

rsvd_result randomized_eigen(std::size_t dim, std::size_t groups, const std::vector<double>& universal_weights,
                             const rsvd_options& options, const pass_runner& run_pass, const pass_combiner& combine) {
    check_arguments(dim, groups, universal_weights, options, run_pass);
    const std::size_t k = std::min(options.k, dim);
    const std::size_t ell = k + std::min(options.oversample, dim - k);
    const std::size_t r = options.error_probes;
    const std::size_t passes = options.power_iterations + 2;
    const std::size_t extra_passes = std::min(options.universal_extra_passes, dim);  // C_u is whole by then
    const auto krylov_columns = detail::checked_mul(passes + extra_passes, ell);
    const auto elements = krylov_columns ? detail::checked_mul(dim, *krylov_columns + 2 * r) : std::nullopt;
    if (!elements || !detail::checked_mul(*elements, sizeof(double)))
        throw std::invalid_argument(who() + "dim " + std::to_string(dim) + " x " + std::to_string(passes + extra_passes) + " passes x " +
                                    std::to_string(ell) + " sketch columns of float64 overflows the address space");

    // The algebra between passes is small (d×m at most): one-threaded too,
    // so that OpenBLAS's threads never wake to spin.
    const detail::single_threaded_blas threads;

    // Everything random from one generator: Ω here, the probes on the last pass.
    std::mt19937_64 rng(options.seed);

    rsvd_result result;
    result.k = k;
    result.sketch_size = ell;

    std::vector<group_state> states(groups);
    krylov_state universal;
    std::vector<std::uint64_t> first_counts(groups);
    column_store universal_probes;

    // Pass 1 streams Q₀ = qr(Ω) for every group; C_u·Q₀ = Σ w_g C_g·Q₀ needs no columns of its own.
    {  // Ω and Q₀ go once copied: kept, they would add 2·d×ℓ float64 to every pass (10.5 MiB at d = 16384)
        const arma::mat q0 =
            extend_basis(column_store(arma::mat(dim, 0), false), gaussian_matrix(rng, dim, ell), ell, "starting");
        for (auto& g : states) {
            g.krylov.basis = column_store(q0, false);
            g.krylov.streamed = ell;
        }
        universal.basis = column_store(q0, false);
    }

    auto full = [&](const krylov_state& s) { return s.basis.cols() == dim; };
    bool groups_done = false;  // from then on a pass streams C_u's block alone
    universal_totals totals;
    arma::mat universal_response;  // C_u·(I − P)Ω_r, from the groups' last pass on
    for (std::size_t pass = 1;; ++pass) {
        const bool first = pass == 1;
        // Once every basis spans the whole space, one more pass (the last) only adds probes and captures.
        const bool last = !groups_done && (pass == passes || (!first && full(universal) &&
                                                               std::all_of(states.begin(), states.end(), [&](const group_state& g) {
                                                                   return full(g.krylov);
                                                               })));
        prepare_pass(states, universal, first, last ? r : 0, rng, universal_probes);
        pass_visitor::universal_part part;
        if (!first) part = {&universal, last ? &universal_probes : nullptr};
        {  // the pass's buffers go before the bases grow and the groups finish: the peak is the larger phase, not both
            pass_visitor visitor(dim, states, part, result.weights, first, last,
                                  static_cast<std::size_t>(threads.threads_before()));
            run_pass(visitor);
            visitor.flush();
        }
        if (combine) combine_pass(states, universal, first, combine);

        check_counts(states, first_counts, pass);
        if (first) {
            result.weights = universal_weights_of(states, universal_weights, options.trace_weighting);
            seed_universal(states, result.weights, universal);
        } else {
            check_finite(universal.product, pass, "the universal Gram");
        }

        // Each basis takes its streamed block's image into T and, unless last, grows by the next block.
        auto image = [](const krylov_state& s) { return arma::mat(s.product.head_cols(s.streamed)); };
        if (!groups_done)
            for (std::size_t g = 0; g < groups; ++g) {
                krylov_state& s = states[g].krylov;
                absorb_image(s, image(s), s.streamed);
                close_or_grow(s, image(s), s.streamed, last, group_label(g));
            }
        const arma::mat universal_image = image(universal);
        absorb_image(universal, universal_image, universal.streamed);
        if (!last && !groups_done) {
            close_or_grow(universal, universal_image, universal.streamed, false, "universal");
            continue;
        }
        // C_u goes on alone while its last block still moved the captures.
        result.universal_capture_change = capture_change(states, universal, k);
        const bool more = result.universal_extra_passes < extra_passes && !full(universal) &&
                          !(result.universal_capture_change <= options.universal_tolerance);
        if (last) {
            totals = finish_groups(states, first_counts, dim, r, result);
            universal_response = universal.product.tail_cols(r);
            groups_done = true;
        } else {
            move_probes(universal, universal_image, universal_probes, universal_response);
        }
        close_or_grow(universal, universal_image, universal.streamed, !more, "universal");
        if (!more) {
            result.passes = pass;
            break;
        }
        ++result.universal_extra_passes;
    }
    finish_universal(states, universal, universal_probes, universal_response, totals, result);
    return result;
}

}  // namespace adaptk
