#include "adaptk/classify.hpp"

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <system_error>

#include "adaptk/error.hpp"

namespace adaptk {
namespace {

struct name_rule {
    std::string_view module;  ///< the name's trailing dotted components before ".weight"
    weight_type type;
    fusion fused;
    storage_layout layout;
};

constexpr name_rule linear(std::string_view module, weight_type type) {
    return {module, type, fusion::none, storage_layout::linear};
}
constexpr name_rule conv1d(std::string_view module, weight_type type) {
    return {module, type, fusion::none, storage_layout::conv1d};
}
constexpr name_rule fused(std::string_view module, weight_type first, fusion how, storage_layout layout) {
    return {module, first, how, layout};
}

// HF transformers module names. The fused layouts, as the modeling files split
// them (fused.hpp turns them into parts):
//   Phi-3 qkv_proj    Linear [(H + 2·Hkv)·hd, d]: rows [q; k; v], q H·hd, k and v Hkv·hd each.
//   Phi-3 gate_up_proj Linear [2·ffn, d]: rows [gate; up] (chunk(2) of the output).
//   NeoX query_key_value Linear [3·H·hd, d]: the output viewed as [H, 3·hd], so
//                     rows run head by head, each [q | k | v] of hd rows.
//   GPT-2 c_attn      Conv1D [d, 3d] = [in, out]: columns [q | k | v] (split(d) of the output).
// GPT-2's Conv1D stores every projection transposed, [in, out]. Llama-family
// GGUF files use llama.cpp's names (blk.N.attn_q.weight, token_embd.weight, ...).
constexpr std::array<name_rule, 31> name_rules{{
    // Llama family (Llama, Mistral, Qwen2, TinyLlama, ...); Phi-3 shares o/down/embed/head.
    linear("q_proj", weight_type::q),
    linear("k_proj", weight_type::k),
    linear("v_proj", weight_type::v),
    linear("o_proj", weight_type::o),
    linear("gate_proj", weight_type::gate),
    linear("up_proj", weight_type::up),
    linear("down_proj", weight_type::down),
    linear("embed_tokens", weight_type::embed),
    linear("lm_head", weight_type::head),
    // Phi-3.
    fused("qkv_proj", weight_type::q, fusion::qkv, storage_layout::linear),
    fused("gate_up_proj", weight_type::gate, fusion::gate_up, storage_layout::linear),
    // GPT-NeoX / Pythia.
    fused("attention.query_key_value", weight_type::q, fusion::qkv_per_head, storage_layout::linear),
    linear("attention.dense", weight_type::o),
    linear("mlp.dense_h_to_4h", weight_type::up),
    linear("mlp.dense_4h_to_h", weight_type::down),
    linear("embed_in", weight_type::embed),
    linear("embed_out", weight_type::head),
    // GPT-2 (names with or without the "transformer." prefix).
    fused("attn.c_attn", weight_type::q, fusion::qkv, storage_layout::conv1d),
    conv1d("attn.c_proj", weight_type::o),
    conv1d("mlp.c_fc", weight_type::up),
    conv1d("mlp.c_proj", weight_type::down),
    linear("wte", weight_type::embed),  // an Embedding [vocab, d], not a Conv1D; lm_head as Llama
    // llama.cpp GGUF names of the Llama family.
    linear("attn_q", weight_type::q),
    linear("attn_k", weight_type::k),
    linear("attn_v", weight_type::v),
    linear("attn_output", weight_type::o),
    linear("ffn_gate", weight_type::gate),
    linear("ffn_up", weight_type::up),
    linear("ffn_down", weight_type::down),
    linear("token_embd", weight_type::embed),
    linear("output", weight_type::head),
}};

constexpr std::array<std::string_view, 9> type_names{"q", "k", "v", "o", "gate", "up", "down", "embed", "head"};
constexpr std::array<std::string_view, 3> group_names{"attention", "mlp", "embedding"};

struct fused_name {
    fusion fused;
    weight_type first;
    std::string_view name;
};
constexpr std::array<fused_name, 3> fused_names{{
    {fusion::qkv, weight_type::q, "qkv"},
    {fusion::qkv_per_head, weight_type::q, "qkv_heads"},
    {fusion::gate_up, weight_type::gate, "gate_up"},
}};

std::optional<int> parse_layer(std::string_view digits) noexcept {
    int layer = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), layer);
    if (error != std::errc{} || end != digits.data() + digits.size() || digits.empty() || layer < 0)
        return std::nullopt;
    return layer;
}

// "...layers.12.self_attn...", GPT-2's "h.12.attn..." or GGUF's "blk.12.attn_q"
// -> 12; the first such component wins.
std::optional<int> layer_index(std::string_view name) noexcept {
    for (const std::string_view marker : {"layers.", "h.", "blk."}) {
        for (std::size_t at = name.find(marker); at != std::string_view::npos; at = name.find(marker, at + 1)) {
            if (at != 0 && name[at - 1] != '.') continue;
            const std::string_view rest = name.substr(at + marker.size());
            if (const auto layer = parse_layer(rest.substr(0, rest.find('.')))) return layer;
        }
    }
    return std::nullopt;
}

// A rules-file TYPE: a class_name, or "none" (nullopt inside).
std::optional<std::optional<tensor_class>> parse_class(std::string_view name) {
    if (name == "none") return std::optional<tensor_class>{};
    if (const auto type = parse_type(name)) return tensor_class{*type, group_of(*type), std::nullopt};
    for (const auto& f : fused_names)
        if (f.name == name) return tensor_class{f.first, group_of(f.first), std::nullopt, f.fused};
    return std::nullopt;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
    return text;
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

std::string_view class_name(const tensor_class& kind) noexcept {
    for (const auto& f : fused_names)
        if (f.fused == kind.fused) return f.name;
    return type_name(kind.type);
}

std::optional<tensor_class> classify(std::string_view tensor_name) noexcept {
    constexpr std::string_view suffix = ".weight";
    if (!tensor_name.ends_with(suffix)) return std::nullopt;
    const std::string_view stem = tensor_name.substr(0, tensor_name.size() - suffix.size());
    for (const auto& rule : name_rules) {
        const bool whole = stem == rule.module;
        const bool tail = stem.size() > rule.module.size() && stem.ends_with(rule.module) &&
                          stem[stem.size() - rule.module.size() - 1] == '.';
        if (whole || tail) return tensor_class{rule.type, group_of(rule.type), layer_index(stem), rule.fused, rule.layout};
    }
    return std::nullopt;
}

type_rules type_rules::read(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::system_error(errno, std::generic_category(), file.string() + ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), file.string());
}

type_rules type_rules::parse(std::string_view text, const std::string& file_name) {
    type_rules parsed;
    std::size_t line_number = 0;
    while (!text.empty()) {
        ++line_number;
        const std::size_t end = text.find('\n');
        const std::string_view line = trim(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (line.empty() || line.front() == '#') continue;

        auto fail = [&](const std::string& defect) -> format_error {
            return format_error(file_name, "", "line " + std::to_string(line_number) + ": " + defect);
        };
        const std::size_t first_comma = line.find(',');
        const std::size_t second_comma = first_comma == std::string_view::npos ? first_comma : line.find(',', first_comma + 1);
        if (second_comma == std::string_view::npos) throw fail("expected TYPE,LAYOUT,REGEX");
        const std::string_view type = trim(line.substr(0, first_comma));
        const std::string_view layout = trim(line.substr(first_comma + 1, second_comma - first_comma - 1));
        const std::string pattern(line.substr(second_comma + 1));

        auto kind = parse_class(type);
        if (!kind)
            throw fail("unknown type '" + std::string(type) +
                       "' (expected q, k, v, o, gate, up, down, embed, head, qkv, qkv_heads, gate_up or none)");
        if (layout == "conv1d") {
            if (*kind) (*kind)->layout = storage_layout::conv1d;
        } else if (!layout.empty() && layout != "linear") {
            throw fail("unknown layout '" + std::string(layout) + "' (expected linear, conv1d or nothing)");
        }
        if (pattern.empty()) throw fail("empty regular expression");
        try {
            parsed.rules_.push_back({std::regex(pattern, std::regex::ECMAScript), *kind});
        } catch (const std::regex_error& e) {
            throw fail("invalid regular expression '" + pattern + "': " + e.what());
        }
    }
    if (parsed.rules_.empty()) throw format_error(file_name, "", "holds no rules (expected lines TYPE,LAYOUT,REGEX)");
    return parsed;
}

std::optional<tensor_class> type_rules::classify(std::string_view tensor_name) const {
    std::match_results<std::string_view::const_iterator> match;
    for (const auto& rule : rules_) {
        if (!std::regex_match(tensor_name.begin(), tensor_name.end(), match, rule.pattern)) continue;
        if (!rule.kind) return std::nullopt;
        tensor_class kind = *rule.kind;
        if (match.size() > 1 && match[1].matched) kind.layer = parse_layer(std::string_view(match[1].first, match[1].second));
        return kind;
    }
    return adaptk::classify(tensor_name);
}

}  // namespace adaptk
