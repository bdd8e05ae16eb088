#include "adaptk/classify.hpp"

#include <charconv>

namespace adaptk {
namespace {

struct name_rule {
    std::string_view module;  ///< the dotted component before ".weight"
    weight_type type;
};

// Llama family (Llama, Mistral, Qwen2, TinyLlama, ...): HF module names,
// then llama.cpp's GGUF names (blk.N.attn_q.weight, token_embd.weight, ...).
constexpr std::array<name_rule, 18> name_rules{{
    {"q_proj", weight_type::q},       {"k_proj", weight_type::k},
    {"v_proj", weight_type::v},       {"o_proj", weight_type::o},
    {"gate_proj", weight_type::gate}, {"up_proj", weight_type::up},
    {"down_proj", weight_type::down}, {"embed_tokens", weight_type::embed},
    {"lm_head", weight_type::head},
    {"attn_q", weight_type::q},       {"attn_k", weight_type::k},
    {"attn_v", weight_type::v},       {"attn_output", weight_type::o},
    {"ffn_gate", weight_type::gate},  {"ffn_up", weight_type::up},
    {"ffn_down", weight_type::down},  {"token_embd", weight_type::embed},
    {"output", weight_type::head},
}};

constexpr std::array<std::string_view, 9> type_names{"q", "k", "v", "o", "gate", "up", "down", "embed", "head"};
constexpr std::array<std::string_view, 3> group_names{"attention", "mlp", "embedding"};

// Components that introduce a layer number: HF "layers.12.", GGUF "blk.12.".
constexpr std::array<std::string_view, 2> layer_markers{"layers.", "blk."};

// "...layers.12.self_attn..." -> 12; the first such component wins.
std::optional<int> layer_index(std::string_view name) noexcept {
    for (const std::string_view marker : layer_markers)
        for (std::size_t at = name.find(marker); at != std::string_view::npos; at = name.find(marker, at + 1)) {
            if (at != 0 && name[at - 1] != '.') continue;
            const char* first = name.data() + at + marker.size();
            const char* last = name.data() + name.size();
            int layer = 0;
            const auto [end, error] = std::from_chars(first, last, layer);
            if (error == std::errc{} && end != first && (end == last || *end == '.') && layer >= 0) return layer;
        }
    return std::nullopt;
}

}  // namespace

std::string_view type_name(weight_type t) noexcept { return type_names[static_cast<std::size_t>(t)]; }
std::string_view group_name(weight_group g) noexcept { return group_names[static_cast<std::size_t>(g)]; }

weight_group group_of(weight_type t) noexcept {
    switch (t) {
    case weight_type::q:
    case weight_type::k:
    case weight_type::v:
    case weight_type::o: return weight_group::attention;
    case weight_type::gate:
    case weight_type::up:
    case weight_type::down: return weight_group::mlp;
    case weight_type::embed:
    case weight_type::head: break;
    }
    return weight_group::embedding;
}

std::optional<weight_type> parse_type(std::string_view name) noexcept {
    for (std::size_t i = 0; i < type_names.size(); ++i)
        if (type_names[i] == name) return all_weight_types[i];
    return std::nullopt;
}

std::optional<tensor_class> classify(std::string_view tensor_name) noexcept {
    constexpr std::string_view suffix = ".weight";
    if (!tensor_name.ends_with(suffix)) return std::nullopt;
    const std::string_view stem = tensor_name.substr(0, tensor_name.size() - suffix.size());
    const std::size_t dot = stem.rfind('.');
    const std::string_view module = dot == std::string_view::npos ? stem : stem.substr(dot + 1);
    for (const auto& rule : name_rules)
        if (rule.module == module) return tensor_class{rule.type, group_of(rule.type), layer_index(stem)};
    return std::nullopt;
}

}  // namespace adaptk
