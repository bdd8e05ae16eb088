#include "adaptk/vectors.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "adaptk/error.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

// Rows decoded per transpose tile: 16 contiguous values per output column keep
// the scattered writes to whole cache lines.
constexpr std::size_t tile_rows = 16;

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

// `bytes` (nullopt: past 2^64) as a size_t, or a format_error naming the
// matrix when this system's address space (a 32-bit size_t) cannot hold them.
std::size_t addressable(std::optional<std::uint64_t> bytes, const weight_matrix& matrix, const std::string& what) {
    if (!bytes || *bytes > std::numeric_limits<std::size_t>::max() / 2)
        throw format_error(matrix.file != nullptr ? matrix.file->path().string() : std::string("memory"), matrix.name,
                           what + " takes " + (bytes ? std::to_string(*bytes) : std::string("more than 2^64")) +
                               " bytes, more than this system's address space");
    return static_cast<std::size_t>(*bytes);
}

}  // namespace

template <class Real>
vector_stream<Real>::vector_stream(const weight_matrix& matrix, std::size_t block_vectors, std::size_t shares)
    : matrix_(matrix),
      block_vectors_(std::max<std::size_t>(block_vectors, 1)),
      dim_(matrix.vectors_are_rows ? matrix.cols : matrix.rows),
      shares_(std::max<std::size_t>(shares, 1)) {
    if (std::is_same_v<Real, std::uint16_t> && matrix.type != dtype::bf16)
        throw std::invalid_argument("vector_stream: raw bit patterns of '" + matrix.name + "' requested, but it is " +
                                    std::string(dtype_name(matrix.type)) + ", not BF16");
    const std::uint64_t row_bytes = storage_bytes(matrix.type, matrix.stored_cols()).value();
    row_bytes_ = addressable(row_bytes, matrix, "one stored row");
    const auto block_elements = detail::checked_mul(dim_, block_vectors_);
    addressable(block_elements ? detail::checked_mul(*block_elements, sizeof(Real)) : std::nullopt, matrix,
                "a block of " + std::to_string(block_vectors_) + " vectors");
    if (matrix.vectors_are_rows) {
        if (matrix.file != nullptr)
            addressable(detail::checked_mul(row_bytes, block_vectors_), matrix,
                        "a block of " + std::to_string(block_vectors_) + " stored rows");
        return;
    }
    for (staging& share : shares_) share.tile.resize(tile_rows * block_vectors_);
    // Row segments come from pread: start the kernel's read-ahead of the whole
    // tensor into the page cache (not into this process's resident set).
    if (matrix.file != nullptr)
        ::posix_fadvise(matrix.file->descriptor(), static_cast<off_t>(matrix.file_offset),
                        static_cast<off_t>(matrix.stored_bytes), POSIX_FADV_WILLNEED);
}

template <class Real>
void vector_stream<Real>::read_share(std::size_t share, std::size_t count, Real* out) {
    const std::size_t shares = shares_.size();
    if (matrix_.vectors_are_rows) {
        const std::size_t first = count * share / shares, last = count * (share + 1) / shares;
        if (last > first) read_rows(done_ + first, last - first, out + first * dim_, shares_[share]);
        return;
    }
    const auto d = static_cast<std::size_t>(dim_);
    const std::size_t tiles = (d + tile_rows - 1) / tile_rows;
    const std::size_t first_row = tiles * share / shares * tile_rows;
    const std::size_t last_row = std::min(d, tiles * (share + 1) / shares * tile_rows);
    if (last_row > first_row) read_columns(done_, count, first_row, last_row, out, shares_[share]);
}

// Rows: each run of the block's stored rows read with pread, straight into
// `out` for BF16 bit patterns, else staged row_staging_bytes at a time and
// decoded. Nothing is mapped: no page faults and no window to unmap per block
// (llama-3-8b preset with 1 layer, rsvd profile: user 38.1 → 33.4 s, system
// 8.1 → 10.5 s as the copies now count there, peak RSS 98.8 → 93.6 MiB), and
// the resident set holds the block and the staging buffer only.
template <class Real>
void vector_stream<Real>::read_rows(std::uint64_t first, std::size_t count, Real* out, staging& buffers) {
    const std::size_t row_elements = matrix_.stored_cols();
    const std::size_t staged_rows = std::max<std::size_t>(row_staging_bytes / shares_.size() / row_bytes_, 1);
    for_each_run(matrix_.part, first, count, [&](std::uint64_t stored, std::uint64_t offset, std::uint64_t n) {
        Real* target = out + offset * dim_;
        if (matrix_.file == nullptr) {
            read_elements(matrix_.type, matrix_.bytes.data() + stored * row_bytes_, n * row_elements, target);
        } else if constexpr (std::is_same_v<Real, std::uint16_t>) {
            matrix_.file->read(matrix_.file_offset + stored * row_bytes_, n * row_bytes_,
                               reinterpret_cast<std::byte*>(target));
        } else {
            std::vector<std::byte>& segment = buffers.segment;
            segment.resize(std::min<std::uint64_t>(n, staged_rows) * row_bytes_);
            for (std::uint64_t done = 0; done < n; done += staged_rows) {
                const auto rows = static_cast<std::size_t>(std::min<std::uint64_t>(staged_rows, n - done));
                matrix_.file->read(matrix_.file_offset + (stored + done) * row_bytes_, rows * row_bytes_,
                                   segment.data());
                read_elements(matrix_.type, segment.data(), rows * row_elements, target + done * dim_);
            }
        }
        apply_scales(stored * row_elements, n * row_elements, target, buffers.scales);
    });
}

template <class Real>
std::pair<const std::byte*, std::size_t> vector_stream<Real>::row_segment(std::uint64_t row, std::uint64_t first,
                                                                           std::size_t count,
                                                                           std::vector<std::byte>& segment) {
    if (matrix_.file == nullptr) return {matrix_.bytes.data() + row * row_bytes_, first};
    const std::uint64_t block = dtype_block_elements(matrix_.type);
    const std::uint64_t first_block = first / block;
    const std::uint64_t blocks = (first + count + block - 1) / block - first_block;
    const auto bytes = static_cast<std::size_t>(blocks * dtype_bytes(matrix_.type));  // within one row
    if (segment.size() < bytes) segment.resize(bytes);
    matrix_.file->read(matrix_.file_offset + row * row_bytes_ + first_block * dtype_bytes(matrix_.type), bytes,
                       segment.data());
    return {segment.data(), static_cast<std::size_t>(first - first_block * block)};
}

// The scales of groups first / g .. (first + count − 1) / g: in memory, or
// read from the file (4 bytes per g values, beside the run's values).
template <class Real>
void vector_stream<Real>::apply_scales(std::uint64_t first, std::size_t count, Real* values,
                                       std::vector<std::byte>& scales_read) {
    if constexpr (!std::is_same_v<Real, std::uint16_t>) {  // the raw stream is BF16 only
        const std::uint64_t group = matrix_.scale_group;
        if (group == 0) return;
        const std::uint64_t first_group = first / group;
        const std::uint64_t at = matrix_.scales_offset + first_group * sizeof(float);
        const std::byte* scales = nullptr;
        if (matrix_.file == nullptr) {
            scales = matrix_.bytes.data() + at;
        } else {
            const auto bytes = static_cast<std::size_t>(((first + count - 1) / group + 1 - first_group) * sizeof(float));
            if (scales_read.size() < bytes) scales_read.resize(bytes);
            matrix_.file->read(matrix_.file_offset + at, bytes, scales_read.data());
            scales = scales_read.data();
        }
        // group_size < 2^30 (the parser checks), so both fit a 32-bit size_t
        apply_group_scales(scales, static_cast<std::size_t>(group), static_cast<std::size_t>(first % group), count,
                           values);
    }
}

// out(r, j) = W[r, stored column of vector first + j] for first_row ≤ r <
// last_row, j < count: decode tile_rows row segments (one per run of stored
// columns), then write each output column's tile_rows values contiguously.
// Only the block's own bytes are touched (and never mapped): columns of a
// [d, ffn] down_proj cost one block's pages, not the whole tensor's.
template <class Real>
void vector_stream<Real>::read_columns(std::uint64_t first, std::size_t count, std::size_t first_row,
                                       std::size_t last_row, Real* out, staging& buffers) {
    const auto d = static_cast<std::size_t>(dim_);
    Real* tile = buffers.tile.data();
    for (std::size_t r0 = first_row; r0 < last_row; r0 += tile_rows) {
        const std::size_t rows = std::min(tile_rows, last_row - r0);
        for (std::size_t i = 0; i < rows; ++i) {
            for_each_run(matrix_.part, first, count, [&](std::uint64_t stored, std::uint64_t offset, std::uint64_t n) {
                const auto [segment, from] = row_segment(r0 + i, stored, n, buffers.segment);
                read_range(matrix_.type, segment, from, n, tile + i * count + offset);
                apply_scales((r0 + i) * matrix_.stored_cols() + stored, n, tile + i * count + offset, buffers.scales);
            });
        }
        for (std::size_t j = 0; j < count; ++j) {
            Real* column = out + j * d + r0;
            for (std::size_t i = 0; i < rows; ++i) column[i] = tile[i * count + j];
        }
    }
}

template class vector_stream<float>;
template class vector_stream<double>;
template class vector_stream<std::uint16_t>;

}  // namespace adaptk
