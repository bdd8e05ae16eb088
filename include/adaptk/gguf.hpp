#pragma once
// GGUF (llama.cpp's format), versions 2 and 3, little-endian: magic "GGUF",
// u32 version, u64 tensor count, u64 key-value count; typed key-values
// (strings and arrays length-prefixed by u64, arrays may nest); tensor infos
// (name, n_dims, dims innermost first, ggml type, offset into the data
// section); padding to general.alignment (default 32); the data section.
// Like the safetensors reader, the whole header is validated before any
// tensor byte is touched; afterwards every reader may trust the offsets.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adaptk/tensor_info.hpp"

namespace adaptk {

/// Alignment of the data section and of every tensor when general.alignment is absent.
inline constexpr std::uint64_t gguf_default_alignment = 32;
/// Largest general.alignment accepted (real files use 32).
inline constexpr std::uint64_t gguf_max_alignment = 1 << 20;
/// Most dimensions a GGUF tensor may have (ggml's GGML_MAX_DIMS).
inline constexpr std::uint32_t gguf_max_dims = 4;

/// llama.cpp's gguf-split keys: this file is part `number` (0-based split.no) of
/// `count` (split.count) files that hold `tensors` (split.tensors.count) tensors together.
struct gguf_split {
    std::uint64_t number = 0;
    std::uint64_t count = 0;
    std::uint64_t tensors = 0;
};

/// The model hyper-parameters the tool reads from the key-values; absent ones stay empty.
struct gguf_model {
    std::string architecture;                          ///< general.architecture ("llama", ...)
    std::optional<std::uint64_t> embedding_length;     ///< <arch>.embedding_length: the hidden size
    std::optional<std::uint64_t> block_count;          ///< <arch>.block_count: layers
    std::optional<std::uint64_t> feed_forward_length;  ///< <arch>.feed_forward_length
    std::optional<std::uint64_t> head_count;           ///< <arch>.attention.head_count
    std::optional<std::uint64_t> head_count_kv;        ///< <arch>.attention.head_count_kv
    /// Present when the file carries split.count (validated: split.no below it, its own
    /// tensors at most split.tensors.count); the checkpoint finds and checks the other parts.
    std::optional<gguf_split> split;
};

struct gguf_header {
    std::uint32_t version = 0;
    std::uint64_t alignment = gguf_default_alignment;
    std::uint64_t data_offset = 0;  ///< file offset of the (aligned) data section
    std::uint64_t data_bytes = 0;   ///< bytes from data_offset to the end of the file
    std::uint64_t key_value_count = 0;
    gguf_model model;
    /// In header order; shapes reversed from GGUF's innermost-first dims to
    /// row-major [out, in]; begin/end relative to the data section.
    std::vector<tensor_info> tensors;
};

/// The four bytes every GGUF file starts with.
bool has_gguf_magic(std::span<const std::byte> file) noexcept;

/// Parses and validates a whole GGUF file image. `file_name` is used in
/// messages only. Throws format_error naming the file, the tensor when there
/// is one, and the defect.
gguf_header parse_gguf(std::span<const std::byte> file, const std::string& file_name);
/// The same from the file's first bytes `head` and its size: a header that
/// runs past `head` (but not past the file) is refused as too large.
gguf_header parse_gguf(std::span<const std::byte> head, std::uint64_t file_size, const std::string& file_name);

}  // namespace adaptk
