#pragma once
// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}),
// then the data section. The header is validated once, completely, before any
// tensor byte is touched; afterwards every reader may trust the offsets.

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "adaptk/tensor_info.hpp"

namespace adaptk {

/// Largest header accepted, as the reference implementation does (100 MB).
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

struct safetensors_header {
    std::uint64_t header_bytes = 0;  ///< N, the JSON length
    std::uint64_t data_offset = 0;   ///< 8 + N: file offset of the data section
    std::uint64_t data_bytes = 0;    ///< size of the data section
    std::vector<tensor_info> tensors;  ///< in header order
    /// "__metadata__" entries; non-string values are kept as their JSON text.
    std::vector<std::pair<std::string, std::string>> metadata;
};

/// Parses and validates a whole safetensors file image. `file_name` is used in
/// messages only. Throws format_error naming the file, the tensor when there is
/// one, and the defect.
safetensors_header parse_safetensors(std::span<const std::byte> file, const std::string& file_name);
/// The same from the file's first bytes `head` (at least 8 + max_header_bytes
/// of them, or the whole file) and its size: what a reader that never maps a
/// whole file passes.
safetensors_header parse_safetensors(std::span<const std::byte> head, std::uint64_t file_size,
                                     const std::string& file_name);

}  // namespace adaptk
