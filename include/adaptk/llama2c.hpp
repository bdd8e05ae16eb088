#pragma once
// llama2.c checkpoints (`.bin`), as llama2.c's export.py writes them:
//  - legacy (version 0): 7 little-endian int32 (dim, hidden_dim, n_layers,
//    n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the
//    classifier is stored, not shared), then the weights layer-major by kind
//    (embedding, attention norms, wq, wk, wv, wo, ffn norms, w1, w2, w3, final
//    norm), the freq_cis real and imaginary tables [seq_len, head_size/2], and
//    the classifier when not shared;
//  - version 1: a 256-byte header (u32 magic 0x616b3432 "ak42", i32 version,
//    the 7 int32, u8 shared_classifier, zero padding), then the norms, the
//    embedding, wq.. w3 for all layers each, and the classifier when not shared;
//  - version 2: the same header with an int32 group_size at byte 37, the same
//    arrays in the same order, the norms float32 and every matrix Q8_GROUPS:
//    its int8 values, then one float32 scale per group_size values.
// Tensors get the HF Llama names (w1 = gate_proj, w2 = down_proj, w3 = up_proj),
// shapes [out, in]; the file must be exactly as long as the header says.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "adaptk/tensor_info.hpp"

namespace adaptk {

/// The u32 at the start of a versioned export: "ak42" as a little-endian number.
inline constexpr std::uint32_t llama2c_magic = 0x616b3432;
/// Bytes of a versioned export's header.
inline constexpr std::uint64_t llama2c_header_bytes = 256;

struct llama2c_config {
    std::uint32_t version = 0;  ///< 0: legacy
    std::uint64_t dim = 0, hidden_dim = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, seq_len = 0;
    bool shared_classifier = true;  ///< no lm_head.weight stored
    std::uint64_t group_size = 0;   ///< version 2: values per scale
    friend bool operator==(const llama2c_config&, const llama2c_config&) = default;
};

struct llama2c_header {
    llama2c_config config;
    /// In file order; begin/end are file offsets.
    std::vector<tensor_info> tensors;
};

/// True when the file starts with the versioned exports' magic.
bool has_llama2c_magic(std::span<const std::byte> file) noexcept;

/// Parses and validates a llama2.c checkpoint image. Throws format_error naming
/// the file and the defect (with the byte counts for a size mismatch).
llama2c_header parse_llama2c(std::span<const std::byte> file, const std::string& file_name);
/// The same from the file's first bytes `head` (the 256-byte header, or the
/// whole file when shorter) and its size: what a reader that never maps a
/// whole file passes.
llama2c_header parse_llama2c(std::span<const std::byte> head, std::uint64_t file_size, const std::string& file_name);

}  // namespace adaptk
