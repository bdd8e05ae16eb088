#include "adaptk/fused.hpp"

#include "adaptk/error.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

struct part_layout {
    weight_type type;
    std::uint64_t count;  ///< rows (Linear) or columns (Conv1D) of the part
    tensor_part where;
};

std::string axis_text(storage_layout layout) { return layout == storage_layout::linear ? "rows" : "columns"; }

}  // namespace

std::vector<weight_matrix> split_fused(const weight_matrix& whole, const model_config& config, std::uint64_t d,
                                       const std::string& file) {
    const bool linear = whole.kind.layout == storage_layout::linear;
    const std::uint64_t in_axis = linear ? whole.cols : whole.rows;
    const std::uint64_t out_axis = linear ? whole.rows : whole.cols;
    const std::string what = "fused " + std::string(class_name(whole.kind));
    auto fail = [&](const std::string& defect) { return format_error(file, whole.name, what + ": " + defect); };
    if (in_axis != d)
        throw fail("input axis " + std::to_string(in_axis) + " is not the hidden size " + std::to_string(d));

    std::vector<part_layout> parts;
    if (whole.kind.fused == fusion::gate_up) {
        if (out_axis % 2 != 0)
            throw fail(std::to_string(out_axis) + " output " + axis_text(whole.kind.layout) +
                       " do not split into equal gate and up halves");
        const std::uint64_t half = out_axis / 2;
        if (config.intermediate_size && *config.intermediate_size != half)
            throw fail("halves of " + std::to_string(half) + " disagree with intermediate_size " +
                       std::to_string(*config.intermediate_size));
        parts = {{weight_type::gate, half, {0, 0, 0, 0}}, {weight_type::up, half, {half, 0, 0, 0}}};
    } else {
        if (!config.num_attention_heads)
            throw fail("splitting it needs num_attention_heads (or n_head) in config.json");
        const std::uint64_t heads = *config.num_attention_heads;
        const std::uint64_t kv_heads = config.num_key_value_heads.value_or(heads);
        if (!config.head_dim && d % heads != 0)
            throw fail("hidden size " + std::to_string(d) + " is not a multiple of num_attention_heads " +
                       std::to_string(heads) + " and config.json has no head_dim");
        const std::uint64_t head_dim = config.head_dim.value_or(d / heads);
        auto size = [&](std::optional<std::uint64_t> checked) {
            if (!checked) throw fail("the config's head counts overflow 64 bits");
            return *checked;
        };
        const std::uint64_t q_count = size(detail::checked_mul(heads, head_dim));
        const std::uint64_t kv_count = size(detail::checked_mul(kv_heads, head_dim));
        const std::uint64_t expected = size(detail::checked_add(q_count, size(detail::checked_mul(kv_count, 2))));
        const std::string config_text = "(num_attention_heads " + std::to_string(heads) + ", num_key_value_heads " +
                                        std::to_string(kv_heads) + ", head_dim " + std::to_string(head_dim) + ")";
        if (whole.kind.fused == fusion::qkv_per_head && kv_heads != heads)
            throw fail("per-head q/k/v needs as many key/value heads as heads " + config_text);
        if (out_axis != expected)
            throw fail(std::to_string(out_axis) + " output " + axis_text(whole.kind.layout) +
                       " do not hold q, k and v of the config's " + std::to_string(q_count) + " + " +
                       std::to_string(kv_count) + " + " + std::to_string(kv_count) + " " + config_text);
        if (whole.kind.fused == fusion::qkv)
            parts = {{weight_type::q, q_count, {0, 0, 0, 0}},
                     {weight_type::k, kv_count, {q_count, 0, 0, 0}},
                     {weight_type::v, kv_count, {q_count + kv_count, 0, 0, 0}}};
        else  // per head: hd rows of q, then of k, then of v
            for (std::uint64_t slot = 0; const weight_type type : {weight_type::q, weight_type::k, weight_type::v})
                parts.push_back({type, q_count, {slot++ * head_dim, head_dim, 3 * head_dim, 0}});
    }

    std::vector<weight_matrix> split;
    for (const auto& p : parts) {
        weight_matrix m = whole;
        m.name = whole.name + "[" + std::string(type_name(p.type)) + "]";
        m.kind = {p.type, group_of(p.type), whole.kind.layer, fusion::none, whole.kind.layout};
        m.rows = linear ? p.count : d;
        m.cols = linear ? d : p.count;
        m.vectors_are_rows = linear;  // the hidden axis is the input axis
        m.part = p.where;
        m.part.stored_cols = whole.cols;
        split.push_back(std::move(m));
    }
    return split;
}

}  // namespace adaptk
