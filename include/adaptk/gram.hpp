#pragma once
// Incremental Gram (uncentered covariance) accumulator over a stream of
// vector blocks: C += X·Xᵀ for each d×b block X (vectors as columns), upper
// triangle only: b·d(d+1)/2 multiply-adds per block (ssyrk/dsyrk).
// Float blocks are reduced by ssyrk in float32 and added to the float64
// accumulator after every block, so float32 rounding never compounds across
// blocks; double blocks go straight through dsyrk. Knows nothing of files.

#include <cstddef>
#include <cstdint>

#include <armadillo>

namespace adaptk {

class gram_accumulator {
public:
    /// An empty accumulator for vectors of length `dim`. With `track_sum`, the
    /// running sum is kept so centered() can subtract the mean.
    explicit gram_accumulator(std::size_t dim, bool track_sum = false);

    std::size_t dim() const noexcept { return dim_; }
    std::uint64_t count() const noexcept { return count_; }

    /// Adds `count` vectors stored column-major as a dim×count block.
    void add(const float* vectors, std::size_t count);
    void add(const double* vectors, std::size_t count);

    /// Merges another accumulator of the same dimension (shards, threads).
    /// Throws std::invalid_argument on a dimension or track_sum mismatch.
    gram_accumulator& operator+=(const gram_accumulator& other);

    /// Σ x xᵀ as a full symmetric matrix.
    arma::mat gram() const;
    /// Σ (x − μ)(x − μ)ᵀ = Σ x xᵀ − s sᵀ / n; needs track_sum.
    arma::mat centered() const;
    /// Σ x, when tracked.
    const arma::vec& sum() const noexcept { return sum_; }
    /// Σ ‖x‖² = trace of the Gram.
    double trace() const { return arma::trace(upper_); }

    /// Moves the full symmetric Gram out without a copy (centered when `center`,
    /// which needs track_sum). The accumulator is empty afterwards; reset()
    /// makes it usable again.
    arma::mat take(bool center);

    /// Back to zero vectors (re-allocating the accumulator after take()).
    void reset();

private:
    std::size_t dim_;
    bool track_sum_;
    std::uint64_t count_ = 0;
    arma::mat upper_;    ///< float64 accumulator; only the upper triangle is meaningful
    arma::fmat block_;   ///< float32 ssyrk output of the current block, allocated on first use
    arma::vec sum_;
};

}  // namespace adaptk
