#pragma once
// What a model's configuration (config.json, or a GGUF file's key-values)
// says about its shapes: the checkpoint fills it, the fused-tensor split and
// the analysis read it.

#include <cstdint>
#include <optional>

namespace adaptk {

/// The config.json fields the analysis uses; absent ones stay empty. GPT-2's
/// names (n_embd, n_layer, n_inner, n_head) fill the same fields.
struct model_config {
    std::optional<std::uint64_t> hidden_size;
    std::optional<std::uint64_t> num_layers;
    std::optional<std::uint64_t> intermediate_size;
    std::optional<std::uint64_t> vocab_size;
    std::optional<std::uint64_t> num_attention_heads;
    std::optional<std::uint64_t> num_key_value_heads;
    std::optional<std::uint64_t> head_dim;
    bool tie_word_embeddings = false;  ///< true only when the config says so
};

}  // namespace adaptk
