#pragma once
// Tensor name -> (type, group, layer, storage). All built-in naming rules live
// in one table in classify.cpp so other architectures are a matter of adding
// rows; a user's --types file (type_rules) is tried before them.

#include <array>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace adaptk {

enum class weight_type { q, k, v, o, gate, up, down, embed, head };
enum class weight_group { attention, mlp, embedding };

/// Every type, in report order.
inline constexpr std::array<weight_type, 9> all_weight_types{
    weight_type::q,    weight_type::k,  weight_type::v,    weight_type::o,    weight_type::gate,
    weight_type::up,   weight_type::down, weight_type::embed, weight_type::head,
};
inline constexpr std::array<weight_group, 3> all_weight_groups{
    weight_group::attention, weight_group::mlp, weight_group::embedding};

std::string_view type_name(weight_type t) noexcept;
std::string_view group_name(weight_group g) noexcept;
weight_group group_of(weight_type t) noexcept;
/// Inverse of type_name ("q", "gate", ...).
std::optional<weight_type> parse_type(std::string_view name) noexcept;

/// How a tensor stores one matrix: torch Linear [out, in], or the transposed
/// [in, out] of GPT-2's Conv1D.
enum class storage_layout { linear, conv1d };

/// Several matrices concatenated along one tensor's output axis; split by
/// fused.hpp using config.json.
enum class fusion {
    none,
    qkv,           ///< [q; k; v] contiguous (Phi-3 qkv_proj, GPT-2 c_attn)
    qkv_per_head,  ///< per head [q | k | v] (GPT-NeoX query_key_value)
    gate_up,       ///< [gate; up] halves (Phi-3 gate_up_proj)
};

struct tensor_class {
    weight_type type;  ///< for a fused tensor, its first part (q or gate)
    weight_group group;
    std::optional<int> layer;  ///< from "layers.N." or "h.N."; none for embeddings
    fusion fused = fusion::none;
    storage_layout layout = storage_layout::linear;
};

/// What inspect prints and a --types file names: a type_name, or "qkv",
/// "qkv_heads", "gate_up" for fused tensors.
std::string_view class_name(const tensor_class& kind) noexcept;

/// Classifies a weight tensor by name with the built-in rules; nullopt for
/// norms, biases and anything else that stays out of the analysis.
std::optional<tensor_class> classify(std::string_view tensor_name) noexcept;

/// A user's naming rules (--types FILE), tried in file order before the
/// built-in ones. The file is CSV without quoting: one rule a line,
/// `TYPE,LAYOUT,REGEX`, where TYPE is a class_name or "none" (leave the
/// tensor out), LAYOUT is "linear", "conv1d" or empty (linear), and REGEX
/// (ECMAScript, everything after the second comma, commas included) must
/// match the whole tensor name; its first capture group, when it matched
/// digits, is the layer. Blank lines and lines starting with '#' are skipped.
class type_rules {
public:
    type_rules() = default;

    /// Reads and checks a rules file. Throws std::system_error when it cannot
    /// be read, format_error naming the file and the line for a bad rule.
    static type_rules read(const std::filesystem::path& file);
    /// The same from text; `file_name` is for messages only.
    static type_rules parse(std::string_view text, const std::string& file_name);

    std::size_t size() const noexcept { return rules_.size(); }

    /// The first matching user rule decides; else the built-in rules.
    std::optional<tensor_class> classify(std::string_view tensor_name) const;

private:
    struct rule {
        std::regex pattern;
        std::optional<tensor_class> kind;  ///< nullopt: TYPE none
    };
    std::vector<rule> rules_;
};

}  // namespace adaptk
