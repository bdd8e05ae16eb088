#pragma once
// Incremental Gram (uncentered covariance) accumulator over a stream of
// vector blocks: C += X·Xᵀ for each d×b block X (vectors as columns), upper
// Float blocks are reduced in row panels: rows [r, r + h) of the upper
// triangle (h = panel_rows) by ssyrk on the diagonal square and sgemm right
// of it into a float32 panel, which is added to the float64 accumulator at
// once (the BF16 kernels do the same per 48-row block, one slot of the
// panel per thread). So float32 sums span one block (ssyrk sums a whole block) and never
// compound beyond, and the float32 scratch is h·d, not d×d (2.25 MiB instead
// of 16 at d = 2048; the 1.1B profile's peak is the float64 Gram and one
// block). Double blocks go straight through dsyrk. Raw BF16 blocks, on CPUs
// with a BF16 dot product (AVX512-BF16, Arm FEAT_BF16), skip the float32
// decode: the kernel chosen by gram_kernel.hpp multiplies BF16 pairs exactly
// and sums in float32 at about twice ssyrk's rate, into the same panels (same
// accuracy class); elsewhere they are decoded and take the ssyrk path. Knows
// nothing of files.


#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <armadillo>

#include "adaptk/gram_kernel.hpp"

namespace adaptk {

/// Vectors a float32 partial sum of the randomized eigensolver spans before
/// it is added in float64 (or one block, when a block holds more).
inline constexpr std::size_t float_flush_vectors = 4096;

/// Rows of the accumulator's float32 panel by default: six 48-row slots for
/// the BF16 kernels' threads, 2.25 MiB of float32 at d = 2048.
inline constexpr std::size_t gram_panel_rows = 288;

/// How far rounding may have moved the accumulated Gram C̃ from the exact
/// Gram C of the vectors as given, in the spectral norm, hence (Weyl) every
/// eigenvalue. The bound: each entry is a sum of n products in float32
/// (n ≤ one block) between float64 adds, so |C̃ − C| ≤ (γ_n + γ'_F)·|X||X|ᵀ entrywise
/// (Higham 2002, eq. 3.5; γ_n = nu/(1 − nu), u = 2⁻²⁴, γ' with u = 2⁻⁵³ over
/// F flushes), and ‖|X||X|ᵀ‖₂ ≤ ‖X‖_F² = tr C. The estimate: the same with
/// √n·u (Higham & Mary 2019's probabilistic model), what rounding typically does.
struct gram_rounding {
    double bound = 0;
    double estimate = 0;
};

/// G −= s·sᵀ/n in place, no d×d temporary: turns the Gram of n vectors with
/// sum s into the Gram of the same vectors centered on their mean. d² work.
void center_gram(arma::mat& gram, const arma::vec& sum, std::uint64_t count);

/// What gram_accumulator::operator+= merges, as plain data for a state file or
/// a message between ranks: the upper triangle packed column by column
/// (d(d+1)/2 values: column j holds rows 0..j), Σx (empty unless tracked),
/// the vector count, and what rounding() needs beside the trace: the longest
/// float32 run and the float64 flushes (merged as operator+= merges them).
struct gram_state {
    std::vector<double> upper;
    arma::vec sum;
    std::uint64_t count = 0;
    std::uint64_t longest_float_run = 0;
    std::uint64_t flushes = 0;
};

/// Copies the upper triangle of the square `m` onto its lower one, in place.
void mirror_upper(arma::mat& m);

/// Values in the packed upper triangle of a d×d matrix: d(d+1)/2.
constexpr std::uint64_t packed_upper_size(std::uint64_t dim) noexcept { return dim * (dim + 1) / 2; }

class gram_accumulator {
public:
    /// An empty accumulator for vectors of length `dim`. With `track_sum`, the
    /// running sum is kept so centered() can subtract the mean. Float blocks
    /// go through a float32 panel of `panel_rows` rows (rounded up to a
    /// multiple of 48). The buffers (d×d float64, the panel) are allocated
    /// on first use, so an idle accumulator costs nothing.
    /// Throws usage_error when ADAPTK_GRAM_KERNEL names no kernel this CPU runs.
    explicit gram_accumulator(std::size_t dim, bool track_sum = false, std::size_t panel_rows = gram_panel_rows);

    std::size_t dim() const noexcept { return dim_; }
    std::size_t panel_rows() const noexcept { return panel_rows_; }
    std::uint64_t count() const noexcept { return count_; }
    bool tracks_sum() const noexcept { return track_sum_; }

    /// Adds `count` vectors stored column-major as a dim×count block.
    void add(const float* vectors, std::size_t count);
    void add(const double* vectors, std::size_t count);
    /// Adds `count` vectors given as raw BF16 bit patterns, dim×count column-major:
    /// through kernel(): a BF16 dot-product kernel, or decoded and ssyrk (fp32).
    void add(const std::uint16_t* bf16_vectors, std::size_t count);

    /// The kernel BF16 blocks go through; active_gram_kernel() unless use_kernel() chose another.
    gram_kernel kernel() const noexcept { return kernel_; }
    /// Sends later BF16 blocks through `kernel`; throws usage_error when this CPU cannot run it.
    void use_kernel(gram_kernel kernel) { kernel_ = require_runnable(kernel); }

    /// Merges another accumulator of the same dimension (shards, threads,
    /// ranks, state files). Throws std::invalid_argument on a dimension or
    /// track_sum mismatch.
    gram_accumulator& operator+=(const gram_accumulator& other);

    /// The accumulated state, copied out (d(d+1)/2 + d + 3 values).
    gram_state state() const;
    /// An accumulator holding `state` (tracking the sum when it has one).
    /// Throws std::invalid_argument when its sizes do not fit `dim`.
    static gram_accumulator from_state(std::size_t dim, gram_state state);

    /// Σ x xᵀ as a full symmetric matrix.
    arma::mat gram() const;
    /// Σ (x − μ)(x − μ)ᵀ = Σ x xᵀ − s sᵀ / n; needs track_sum.
    arma::mat centered() const;
    /// Σ x, when tracked.
    const arma::vec& sum() const noexcept { return sum_; }
    /// Σ ‖x‖² = trace of the Gram.
    double trace() const { return upper_.n_elem != 0 ? arma::trace(upper_) : 0.0; }

    /// The most vectors one float32 sum has spanned: the largest float (or
    /// BF16) block added; 0 when no float block came.
    std::size_t longest_float_run() const noexcept { return longest_float_run_; }
    /// The rounding of the Gram accumulated so far (gram_rounding), from its
    /// trace and runs; uncentered, as accumulated.
    gram_rounding rounding() const;

    /// Moves the full symmetric Gram out without a copy (centered when `center`,
    /// which needs track_sum). The accumulator is empty afterwards; reset()
    /// makes it usable again.
    arma::mat take(bool center);

    /// The Gram as held: its upper triangle is the Gram's (what LAPACK's 'U'
    /// solvers read); below it are zeros (reset() and adds never write there).
    const arma::mat& upper() const;
    /// Lends the float64 buffer (dim² doubles, holding what upper() showed)
    /// as scratch until reset(), which zeros it; the float32 panel is freed
    /// meanwhile, so the borrower's small buffers fit in it. Empty when there
    /// is no buffer (none yet, or after take()). Until reset(), lend() gives
    /// the same buffer again and any other use throws std::logic_error.
    std::span<std::byte> lend();

    /// Back to zero vectors, keeping the buffers (none after take()).
    void reset();

private:
    /// Allocates the float64 accumulator (zeros) if it is not there.
    void materialize() const;
    /// The float32 panel (panel_rows × d), allocated on first use.
    float* panel();
    /// upper_(i, j) += panel(i, j) for first ≤ i < first + rows, i ≤ j < d
    /// (panel column j at panel + (j − first)·rows): a finished panel of one
    /// block, in float64. Safe from several threads for disjoint rows.
    void add_panel(const float* panel, std::size_t first, std::size_t rows);
    /// The same for columns [begin, end) of the panel only.
    void add_panel_columns(const float* panel, std::size_t first, std::size_t rows, std::size_t begin, std::size_t end);
    /// Books a float or BF16 block of `count` vectors (one float32 run).
    void float_block_added(std::size_t count);
    /// sum_ += Σ of the block's vectors (when tracked).
    template <class Element, class ToDouble>
    void add_to_sum(const Element* vectors, std::size_t count, ToDouble to_double);

    std::size_t dim_;
    bool track_sum_;
    std::size_t panel_rows_;
    std::uint64_t count_ = 0;
    mutable arma::mat upper_;  ///< float64 accumulator; only the upper triangle is meaningful
    std::vector<float> panel_;  ///< float32 sums of one row panel of one block
    bool lent_ = false;  ///< lend() gave the buffer away until reset()
    std::size_t longest_float_run_ = 0;
    std::uint64_t flushes_ = 0;  ///< float64 adds of float32 sums (float blocks), for the rounding bound
    arma::vec sum_;
    gram_kernel kernel_;
    std::vector<std::uint32_t> bf16_pack_;  ///< the BF16 kernel's packed copy of a block
    std::vector<float> bf16_decoded_;       ///< a decoded block, without the BF16 kernel
};

}  // namespace adaptk
