#pragma once
// Hidden-axis vectors of a weight matrix, streamed as column-major d×b blocks
// (each vector contiguous). Rows of W when its second axis is d; columns when
// only its first axis is (down_proj [d, ffn]), read by a tiled transpose.
// Consumed pages are dropped from the resident set as the stream advances.
// vector_stream<std::uint16_t> hands out a BF16 matrix's bit patterns as
// stored, for the accumulator's BF16 kernel (no float32 decode).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "adaptk/weight_matrix.hpp"

namespace adaptk {

template <class Real>
class vector_stream {
public:
    /// Streams `matrix` in blocks of at most `block_vectors` vectors.
    /// `release_pages`: drop the mapping's pages once consumed. The std::uint16_t
    /// stream throws std::invalid_argument unless the matrix is BF16.
    vector_stream(const weight_matrix& matrix, std::size_t block_vectors, bool release_pages = true);

    std::uint64_t dim() const noexcept { return dim_; }
    std::uint64_t vectors_total() const noexcept { return matrix_.vector_count(); }
    std::uint64_t vectors_done() const noexcept { return done_; }

    /// Writes the next vectors into `out` (room for dim() × block_vectors values,
    /// column-major) and returns how many it wrote: 0 once the matrix is done.
    std::size_t next(Real* out);

private:
    void read_rows(std::size_t first, std::size_t count, Real* out) const;
    void read_columns(std::size_t first, std::size_t count, Real* out);

    weight_matrix matrix_;  // a copy: callers may pass a temporary
    std::size_t block_vectors_;
    bool release_pages_;
    std::uint64_t dim_;
    std::size_t row_bytes_;  ///< bytes of one stored row (cols elements; whole Q8_0 blocks)
    std::uint64_t done_ = 0;
    std::vector<Real> tile_;  ///< row segments for the transposing read
};

extern template class vector_stream<float>;
extern template class vector_stream<double>;
extern template class vector_stream<std::uint16_t>;

}  // namespace adaptk
