#pragma once
// Hidden-axis vectors of a weight matrix, streamed as column-major d×b blocks
// (each vector contiguous). Rows of W when its second axis is d; columns when
// only its first axis is (down_proj [d, ffn]), read by a tiled transpose.
// A file-backed matrix is never mapped: a block of rows is read with pread
// (through a staging buffer of row_staging_bytes when it is decoded), a block
// of columns row segment by row segment. No file pages stay resident, and a
// 32-bit process reads tensors past 4 GiB.
// A block can be read in shares from several threads (rows by vectors,
// columns by rows of d), each share with its own staging buffers.
// vector_stream<std::uint16_t> hands out a BF16 matrix's bit patterns as
// stored, for the accumulator's BF16 kernel (no float32 decode). A Q8_GROUPS
// matrix's scales, stored apart from its values, are read beside each run.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "adaptk/weight_matrix.hpp"

namespace adaptk {

/// Stored rows read per pread before they are decoded (at least one row),
/// split between the shares of a block read by several threads.
inline constexpr std::size_t row_staging_bytes = 256 << 10;

template <class Real>
class vector_stream {
public:
    /// Streams `matrix` in blocks of at most `block_vectors` vectors. The
    /// std::uint16_t stream throws std::invalid_argument unless the matrix is
    /// BF16; format_error when a block (or one stored row) of a file-backed
    /// matrix exceeds this system's address space. `shares` (≥ 1): how many
    /// threads may read one block, each with staging buffers of its own (rows:
    /// row_staging_bytes / shares each; columns: a tile of 16 × block_vectors).
    vector_stream(const weight_matrix& matrix, std::size_t block_vectors, std::size_t shares = 1);

    std::uint64_t dim() const noexcept { return dim_; }
    std::uint64_t vectors_total() const noexcept { return matrix_.vector_count(); }
    std::uint64_t vectors_done() const noexcept { return done_; }

    /// Writes the next vectors into `out` (room for dim() × block_vectors values,
    /// column-major) and returns how many it wrote: 0 once the matrix is done.
    std::size_t next(Real* out) {
        return next(out, [](std::size_t shares, const auto& read) {
            for (std::size_t share = 0; share < shares; ++share) read(share);
        });
    }
    /// next(), the block read in shares: run(shares, read) must call read(s)
    /// once for every s < shares, on any threads, and return when all are done.
    template <class Run>
    std::size_t next(Real* out, Run&& run) {
        const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(vectors_total() - done_, block_vectors_));
        if (count == 0) return 0;
        run(shares_.size(), [this, out, count](std::size_t share) { read_share(share, count, out); });
        done_ += count;
        return count;
    }

private:
    /// Each share's staging: no two threads write the same buffer.
    struct staging {
        std::vector<Real> tile;          ///< row segments for the transposing read
        std::vector<std::byte> segment;  ///< stored bytes read from the file: one row segment, or staged rows
        std::vector<std::byte> scales;   ///< Q8_GROUPS: the scales of one run, read from the file
    };
    /// Share `share` of the block of `count` vectors from done_ on: its vectors
    /// (rows), or its rows of d in whole transpose tiles (columns).
    void read_share(std::size_t share, std::size_t count, Real* out);
    void read_rows(std::uint64_t first, std::size_t count, Real* out, staging& buffers);
    void read_columns(std::uint64_t first, std::size_t count, std::size_t first_row, std::size_t last_row, Real* out,
                      staging& buffers);
    /// Stored row `row` from the storage block holding element `first` through
    /// element first + count − 1: a pointer into memory, or the bytes read from
    /// the file into the segment buffer; and `first`'s index counted from that pointer.
    std::pair<const std::byte*, std::size_t> row_segment(std::uint64_t row, std::uint64_t first, std::size_t count,
                                                         std::vector<std::byte>& segment);
    /// Q8_GROUPS: multiplies `count` decoded values, stored from element `first`
    /// of the flattened stored tensor on, by their groups' scales.
    void apply_scales(std::uint64_t first, std::size_t count, Real* values, std::vector<std::byte>& scales);

    weight_matrix matrix_;  // a copy: callers may pass a temporary
    std::size_t block_vectors_;
    std::uint64_t dim_;
    std::size_t row_bytes_;  ///< bytes of one stored row (cols elements; whole Q8_0 blocks)
    std::uint64_t done_ = 0;
    std::vector<staging> shares_;
};

extern template class vector_stream<float>;
extern template class vector_stream<double>;
extern template class vector_stream<std::uint16_t>;

}  // namespace adaptk
