#pragma once
// One weight matrix chosen for analysis: where its bytes are, its shape and
// dtype, which axis holds the hidden-axis vectors, and for a part of a fused
// tensor which rows or columns it takes. The checkpoint makes them; the
// fused-tensor split, the vector stream and the analysis read them.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "adaptk/classify.hpp"
#include "adaptk/dtype.hpp"
#include "adaptk/mapped_file.hpp"

namespace adaptk {

/// Which rows (vectors_are_rows) or columns of a stored tensor a matrix takes
/// when it is one part of a fused tensor: its vector j is stored row or column
/// first + (j / run)·period + j % run. The default takes them all, in order.
struct tensor_part {
    std::uint64_t first = 0;
    std::uint64_t run = 0;          ///< 0: one contiguous run
    std::uint64_t period = 0;       ///< stored rows or columns from one run's start to the next
    std::uint64_t stored_cols = 0;  ///< the stored tensor's row length; 0: cols

    std::uint64_t stored_index(std::uint64_t j) const noexcept {
        return run == 0 ? first + j : first + (j / run) * period + j % run;
    }
};

/// A 2-D floating matrix chosen for analysis, with its hidden axis resolved.
/// Held in memory (`bytes`) or read from its file a block at a time; it shares
/// ownership of the open file, so it stays readable however long the matrix
/// lives, also after its checkpoint is destroyed.
struct weight_matrix {
    std::string name;  ///< the tensor's; a fused part adds "[q]", "[gate]", ...
    tensor_class kind;
    dtype type;
    std::uint64_t rows = 0;  ///< row-major [rows, cols]; a fused part's own shape
    std::uint64_t cols = 0;
    bool vectors_are_rows = true;  ///< false: the hidden-axis vectors are columns (down_proj)
    std::span<const std::byte> bytes;  ///< the whole stored tensor, for a matrix held in memory
    std::shared_ptr<const read_only_file> file;  ///< else the file it is read from (never mapped whole)
    std::uint64_t file_offset = 0;               ///< of the stored tensor's first byte in `file`
    tensor_part part{};
    std::uint64_t stored_bytes = 0;  ///< the whole stored tensor's size in `file`
    /// Q8_GROUPS: values per float32 scale, counted along the flattened stored
    /// tensor, and its scales' first byte counted from the tensor's first byte.
    std::uint64_t scale_group = 0;
    std::uint64_t scales_offset = 0;

    /// Bytes of the whole stored tensor, wherever it is.
    std::uint64_t stored_size() const noexcept { return file ? stored_bytes : bytes.size(); }

    std::uint64_t vector_count() const noexcept { return vectors_are_rows ? rows : cols; }
    std::uint64_t stored_cols() const noexcept { return part.stored_cols != 0 ? part.stored_cols : cols; }
    /// Bytes this matrix's vectors occupy (less than stored_size() for a fused
    /// part): a block type's bytes per block spread over its elements per block,
    /// plus Q8_GROUPS' scales.
    std::uint64_t vector_bytes() const noexcept {
        const std::uint64_t values = rows * cols * dtype_bytes(type) / dtype_block_elements(type);
        return scale_group == 0 ? values : values + rows * cols * sizeof(float) / scale_group;
    }
};

}  // namespace adaptk
