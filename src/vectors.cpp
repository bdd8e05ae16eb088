#include "adaptk/vectors.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace adaptk {
namespace {

// Rows decoded per transpose tile: 16 contiguous values per output column keep
// the scattered writes to whole cache lines.
constexpr std::size_t tile_rows = 16;

// Linux's default fault_around_bytes.
constexpr std::size_t fault_around_bytes = 64 * 1024;

// Decoded values, or for std::uint16_t the BF16 bit patterns as they are.
template <class Real>
void read_elements(dtype type, const std::byte* source, std::size_t count, Real* out) noexcept {
    if constexpr (std::is_same_v<Real, std::uint16_t>)
        std::memcpy(out, source, count * sizeof(Real));
    else
        decode(type, source, count, out);
}

// Elements [first, first + count) of one stored row, likewise; decode_range
// serves ranges that cut through a Q8_0 block.
template <class Real>
void read_range(dtype type, const std::byte* row, std::size_t first, std::size_t count, Real* out) noexcept {
    if constexpr (std::is_same_v<Real, std::uint16_t>)
        std::memcpy(out, row + first * sizeof(Real), count * sizeof(Real));
    else
        decode_range(type, row, first, count, out);
}

// Calls visit(stored_first, offset, count) for each run of consecutive stored
// rows or columns that vectors [first, first + count) occupy; `offset` counts
// from `first`. One call for a whole tensor or a range part.
template <class Visit>
void for_each_run(const tensor_part& part, std::uint64_t first, std::uint64_t count, Visit&& visit) {
    for (std::uint64_t offset = 0; offset < count;) {
        const std::uint64_t j = first + offset;
        const std::uint64_t left_in_run = part.run == 0 ? count - offset : part.run - j % part.run;
        const std::uint64_t n = std::min(left_in_run, count - offset);
        visit(part.stored_index(j), offset, n);
        offset += n;
    }
}

}  // namespace

template <class Real>
vector_stream<Real>::vector_stream(const weight_matrix& matrix, std::size_t block_vectors, bool release_pages)
    : matrix_(matrix),
      block_vectors_(std::max<std::size_t>(block_vectors, 1)),
      release_pages_(release_pages),
      dim_(matrix.vectors_are_rows ? matrix.cols : matrix.rows),
      row_bytes_(storage_bytes(matrix.type, matrix.stored_cols()).value()) {
    if (std::is_same_v<Real, std::uint16_t> && matrix.type != dtype::bf16)
        throw std::invalid_argument("vector_stream: raw bit patterns of '" + matrix.name + "' requested, but it is " +
                                    std::string(dtype_name(matrix.type)) + ", not BF16");
    if (!matrix.vectors_are_rows) tile_.resize(tile_rows * block_vectors_);
    if (matrix.mapping != nullptr)
        matrix.mapping->advise(mapped_file::access::sequential, matrix.file_offset, matrix.bytes.size());
}

template <class Real>
std::size_t vector_stream<Real>::next(Real* out) {
    const std::uint64_t left = vectors_total() - done_;
    const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(left, block_vectors_));
    if (count == 0) return 0;
    if (matrix_.mapping != nullptr) {
        // Rows: this block's bytes. Columns: the whole tensor, once, on the first block.
        if (matrix_.vectors_are_rows)
            for_each_run(matrix_.part, done_, count, [&](std::uint64_t stored, std::uint64_t, std::uint64_t n) {
                matrix_.mapping->populate(matrix_.file_offset + stored * row_bytes_, n * row_bytes_);
            });
        else if (done_ == 0)
            matrix_.mapping->populate(matrix_.file_offset, matrix_.bytes.size());
    }
    if (matrix_.vectors_are_rows)
        read_rows(done_, count, out);
    else
        read_columns(done_, count, out);
    done_ += count;

    if (release_pages_ && matrix_.mapping != nullptr) {
        std::size_t first_byte = 0, bytes = 0;
        if (matrix_.vectors_are_rows) {
            // The block's stored rows are consumed for good (a fused part's span
            // also holds its siblings' rows: they come back from the page cache).
            const std::uint64_t first_row = matrix_.part.stored_index(done_ - count);
            first_byte = matrix_.file_offset + first_row * row_bytes_;
            bytes = (matrix_.part.stored_index(done_ - 1) + 1 - first_row) * row_bytes_;
        } else if (done_ == vectors_total()) {
            // A column block touches every row: the pages are free only at the end.
            first_byte = matrix_.file_offset;
            bytes = matrix_.bytes.size();
        }
        // The kernel's fault-around maps the whole aligned 64 KiB window of each
        // faulted page, so faults near the block's edges also map pages on either
        // side of it that were already released or are next: release those too,
        // or they pile up, a few per block (measured: +6% RSS at 44 layers).
        if (bytes > 0) {
            const std::size_t low = std::min<std::size_t>(first_byte, fault_around_bytes);
            matrix_.mapping->release(first_byte - low, bytes + low + fault_around_bytes);
        }
    }
    return count;
}

template <class Real>
void vector_stream<Real>::read_rows(std::size_t first, std::size_t count, Real* out) const {
    const std::size_t row_elements = matrix_.stored_cols();
    for_each_run(matrix_.part, first, count, [&](std::uint64_t stored, std::uint64_t offset, std::uint64_t n) {
        read_elements(matrix_.type, matrix_.bytes.data() + stored * row_bytes_, n * row_elements, out + offset * dim_);
    });
}

// out(r, j) = W[r, stored column of vector first + j] for r < d, j < count:
// decode tile_rows row segments (one per run of stored columns), then write
// each output column's tile_rows values contiguously.
template <class Real>
void vector_stream<Real>::read_columns(std::size_t first, std::size_t count, Real* out) {
    const std::size_t d = dim_;
    for (std::size_t r0 = 0; r0 < d; r0 += tile_rows) {
        const std::size_t rows = std::min(tile_rows, d - r0);
        for (std::size_t i = 0; i < rows; ++i) {
            const std::byte* row = matrix_.bytes.data() + (r0 + i) * row_bytes_;
            for_each_run(matrix_.part, first, count, [&](std::uint64_t stored, std::uint64_t offset, std::uint64_t n) {
                read_range(matrix_.type, row, stored, n, tile_.data() + i * count + offset);
            });
        }
        for (std::size_t j = 0; j < count; ++j) {
            Real* column = out + j * d + r0;
            for (std::size_t i = 0; i < rows; ++i) column[i] = tile_[i * count + j];
        }
    }
}

template class vector_stream<float>;
template class vector_stream<double>;
template class vector_stream<std::uint16_t>;

}  // namespace adaptk
