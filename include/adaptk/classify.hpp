#pragma once
// Tensor name -> (type, group, layer). All naming rules live in one table in
// classify.cpp so other architectures are a matter of adding rows.

#include <array>
#include <optional>
#include <string_view>

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

struct tensor_class {
    weight_type type;
    weight_group group;
    std::optional<int> layer;  ///< from "layers.N."; none for embeddings
};

/// Classifies a weight tensor by name; nullopt for norms, biases and anything
/// else that stays out of the analysis.
std::optional<tensor_class> classify(std::string_view tensor_name) noexcept;

}  // namespace adaptk
