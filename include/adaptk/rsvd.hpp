#pragma once
// Out-of-core randomized eigensolver for Gram matrices C_g = Σ x xᵀ (one per
// group g, e.g. per weight type) that exist only as a stream of vector blocks:
// randomized block Krylov iteration (Musco & Musco 2015, Alg. 2; HMT 2011
// §4.6) with the Rayleigh–Ritz step on the whole Krylov basis
// K = [Q₀ … Q_{q+1}], span{Ω, CΩ, …, C^{q+1}Ω}. The same passes run it for
// the universal Gram C_u = Σ_g w_g C_g.
//
// The engine never sees files, dtypes or mappings: the caller's pass_runner
// streams every block once per pass into a block_visitor. Memory per group:
// its Krylov basis, d×(q+2)ℓ (ℓ = min(k + oversample, d) columns per block;
// never more than d), in float32 when every block of the group is float (in
// float64 once one is double), one d×(ℓ + r) float64 product and two m×m
// float64 matrices (m = (q+2)ℓ); never a d×d matrix.
// Passes: q + 2, fewer when every basis reaches d columns earlier, and up to
// universal_extra_passes more for C_u alone while its captures still move.
// Cost per streamed vector: 2·d·m multiply-adds, m = ℓ on the first pass and
// 2ℓ on the others (group + universal blocks); the last pass adds 2r probe
// columns and d·(q+2)ℓ multiply-adds projecting onto the universal basis.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include <armadillo>

namespace adaptk {

struct rsvd_options {
    std::size_t k = 32;                ///< eigenpairs per group and for the universal Gram (≥ 1; clamped to dim)
    std::size_t oversample = 10;       ///< extra sketch columns: ℓ = min(k + oversample, dim)
    std::size_t power_iterations = 2;  ///< q; the solver makes q + 2 passes, Krylov degree q + 1
    /// C_u, a sum of the groups' Grams, has the flattest spectrum: after the
    /// groups' last pass, while its Krylov basis is not the whole space and
    /// its last block moved some group's capture of the top k (universal_capture[g][k−1])
    /// by more than universal_tolerance, one more pass streams C_u's next block
    /// alone (2·d·ℓ multiply-adds per vector), at most this many times. Two:
    /// at d = 4096 (llama-3-8b preset, 1 layer) q's r2_universal was 0.0052
    /// off after one, 0.0007 after two (BENCHMARKS, "Large hidden sizes").
    std::size_t universal_extra_passes = 2;
    double universal_tolerance = 0.0025;  ///< on the capture's change; half the 0.005 the tool promises
    std::size_t error_probes = 20;     ///< r ∈ [1, 64] Gaussian probes of the error bound (more: tighter, dearer last pass)
    bool trace_weighting = false;      ///< C_u = Σ C_g / tr(C_g) (an all-zero group gets weight 0)
    std::uint64_t seed = 0;            ///< Ω and the probes come from mt19937_64(seed): same seed, same bits
};

/// Receives the blocks of one pass. A block is `count` vectors of length dim,
/// column-major (dim×count), of group `group` ∈ [0, groups). Float blocks are
/// multiplied in float32 (partial sums added to float64 every
/// float_flush_vectors vectors, or every block when a block is larger),
/// double blocks in float64. Throws std::invalid_argument for a group out of
/// range or a null block with count > 0. Blocks of a group may come in any
/// order and sizes, interleaved with other groups, but every pass must stream
/// the same vectors.
class block_visitor {
public:
    virtual void operator()(std::size_t group, const float* block, std::size_t count) = 0;
    virtual void operator()(std::size_t group, const double* block, std::size_t count) = 0;
    /// Ends a float32 run: its partial sums go to float64 now. Called after
    /// each matrix, it makes the sums independent of which matrices share a
    /// process (a partitioned run adds the same float32 sums as one process).
    virtual void end_run() = 0;

protected:
    ~block_visitor() = default;
};

/// Streams all vectors of all groups once into the visitor. Called at most
/// q + 2 + universal_extra_passes times.
using pass_runner = std::function<void(block_visitor&)>;

enum class combine_op { sum, max };
/// A stream split over several processes (MPI ranks), each passing its share
/// to run_pass: called after every pass with each partial result (products,
/// counts, traces); replaces `values` in place by their elementwise sum (or
/// maximum) over all processes, every process getting the same bits. The
/// processes then carry on with identical states.
using pass_combiner = std::function<void(std::span<double> values, combine_op op)>;

/// The top-k eigenpairs of one Gram matrix C and how far they can be off.
///
/// With Q the final d×m orthonormal Krylov basis and T = QᵀCQ, values are the
/// Ritz values θ_i of T: θ_i ≤ λ_i(C) by Cauchy interlacing, up to `rounding`.
/// value_errors[i] bounds |λ_i − θ_i| for the i-th largest eigenvalue λ_i of C
/// (see src/rsvd.cpp for the derivation: Ritz residuals + Li & Li 2005
/// quadratic bound + HMT §4.3 probes + a rounding allowance). It holds except
/// with probability 1e-10 per matrix (union bound: (groups + 1)·1e-10 for the
/// whole result). It is quadratic in the residual (close to the true error)
/// for θ_i well above tail_norm, and about tail_norm − θ_i + residual_norm
/// below it: loose for flat spectra, where no Ritz value clears the tail.
struct rsvd_group_result {
    arma::vec values;        ///< k Ritz values θ_i, descending, ≥ 0
    arma::mat vectors;       ///< d×k orthonormal Ritz vectors; column i belongs to values[i]
    arma::vec value_errors;  ///< k bounds: |λ_i − θ_i| ≤ value_errors[i]
    /// k estimates (not bounds) of λ_i − θ_i: how much θ_i grew with the last
    /// Krylov block. Krylov errors shrink geometrically, so the last step's
    /// gain is about the error left when the rate is ≤ 1/2; informative where
    /// value_errors are vacuous (flat spectra). Zero when the basis is the space.
    arma::vec value_changes;
    double error_estimate = 0;  ///< max(value_errors): bounds max_{i<k} |λ_i − θ_i|
    double residual_norm = 0;   ///< ‖CQ − QT‖₂ = ‖(I − QQᵀ)CQ‖₂, from the last pass's remainder
    double tail_norm = 0;       ///< ≥ ‖(I−QQᵀ)C(I−QQᵀ)‖₂: min(α·√(2/π)·max_i ‖(I−QQᵀ)C(I−QQᵀ)ω_i‖, tr C − Σθ), α = 10^(10/r) (HMT Lemma 4.1)
    double range_error = 0;     ///< √(residual² + tail²) ≥ ‖(I − QQᵀ)C‖₂, HMT's a-posteriori quantity
    double trace = 0;           ///< tr C = Σ‖x‖², summed exactly in float64 on the first pass (Σ_g w_g tr C_g for C_u)
    std::uint64_t count = 0;    ///< vectors per pass (all groups for C_u)
    std::size_t basis_size = 0; ///< m, columns of the final Krylov basis: ≤ min((q + 2)ℓ, d), C_u's ≤ min((q + 2 + extra)ℓ, d)
    double rounding = 0;        ///< how far float rounding may move a value, included in value_errors
    /// ‖KᵀK − I‖_F of the stored basis: ≈ u·√m for a float32 basis (u = 2⁻²⁴),
    /// ~1e-15 for a float64 one; `rounding` includes 3·basis_loss·tr C per column.
    double basis_loss = 0;
};

struct rsvd_result {
    std::size_t k = 0;            ///< after clamping to dim
    std::size_t sketch_size = 0;  ///< ℓ = min(k + oversample, dim), columns per Krylov block
    std::size_t passes = 0;       ///< passes made: q + 2 (fewer once every basis spans the space), + C_u's extra ones
    std::size_t universal_extra_passes = 0;  ///< of them, streaming C_u's block alone
    /// How much C_u's last Krylov block moved the captures (max over groups of
    /// |Δ universal_capture[g][k−1]|): an estimate, not a bound, of their error.
    double universal_capture_change = 0;
    std::vector<double> weights;  ///< w_g of C_u = Σ_g w_g C_g
    std::vector<rsvd_group_result> groups;
    rsvd_group_result universal;  ///< of C_u
    /// Per group, k cumulative fractions: [j] = tr(V_{0..j}ᵀ C_g V_{0..j}) / tr(C_g),
    /// the energy of C_g inside the first j + 1 universal Ritz vectors (NaN when
    /// tr C_g = 0). Exact for the returned universal vectors; no extra pass.
    std::vector<arma::vec> universal_capture;
};

/// Top-k eigenpairs of every group's Gram C_g and of C_u = Σ_g w_g C_g, from
/// at most q + 2 + universal_extra_passes calls of `run_pass`. `universal_weights` is empty (w_g = 1, or
/// 1/tr C_g with options.trace_weighting) or holds one finite w_g ≥ 0 per group.
/// Deterministic: the same inputs and seed give bitwise identical results
/// (for a fixed BLAS thread count).
/// Throws std::invalid_argument for dim = 0, groups = 0, k = 0, error_probes
/// outside [1, 64], bad weights, an empty run_pass, or a pass that streams a
/// different number of vectors than the first; numerical_error if LAPACK
/// fails or the data hold NaN/Inf. Cost: q + 2 (+ extra) passes, see the file comment,
/// plus O(groups·d·ℓ²) for the QR factorizations and Ritz problems, which
/// with `combine` run on every process alike (each needs the new bases for
/// its next pass; sending them would cost as many bytes as the products).
/// With `combine`, every process gets the result of the whole stream.
rsvd_result randomized_eigen(std::size_t dim, std::size_t groups, const std::vector<double>& universal_weights,
                             const rsvd_options& options, const pass_runner& run_pass,
                             const pass_combiner& combine = {});

}  // namespace adaptk
