#pragma once
// Splitting the analysed matrices between processes (MPI ranks, the parts of
// `accumulate --part I/N`) so each streams about the same number of bytes.
// Parts are contiguous runs of the list, which is grouped by type and layer,
// so a part touches few types and few shards.

#include <cstddef>
#include <vector>

#include "adaptk/weight_matrix.hpp"

namespace adaptk {

/// The part (0-based, < parts) of every matrix: matrix m goes to the part
/// whose equal byte range [p·B/parts, (p+1)·B/parts) holds the middle byte of
/// m's vectors, B the total. Deterministic; a part may be empty when one
/// matrix outweighs a share. Throws std::invalid_argument for parts = 0.
/// Cost: one pass over the list.
std::vector<std::size_t> split_by_bytes(const std::vector<weight_matrix>& matrices, std::size_t parts);

}  // namespace adaptk
