#define BOOST_TEST_MODULE classify
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "adaptk/classify.hpp"

namespace bdata = boost::unit_test::data;
using adaptk::weight_group;
using adaptk::weight_type;

namespace {

struct named_weight {
    std::string name;
    weight_type type;
    weight_group group;
    std::optional<int> layer;
};

std::ostream& operator<<(std::ostream& out, const named_weight& row) { return out << row.name; }

// Every analysed Llama tensor name, as HF transformers spells it.
std::vector<named_weight> llama_names() {
    return {
        {"model.layers.0.self_attn.q_proj.weight", weight_type::q, weight_group::attention, 0},
        {"model.layers.1.self_attn.k_proj.weight", weight_type::k, weight_group::attention, 1},
        {"model.layers.2.self_attn.v_proj.weight", weight_type::v, weight_group::attention, 2},
        {"model.layers.3.self_attn.o_proj.weight", weight_type::o, weight_group::attention, 3},
        {"model.layers.4.mlp.gate_proj.weight", weight_type::gate, weight_group::mlp, 4},
        {"model.layers.12.mlp.up_proj.weight", weight_type::up, weight_group::mlp, 12},
        {"model.layers.79.mlp.down_proj.weight", weight_type::down, weight_group::mlp, 79},
        {"model.embed_tokens.weight", weight_type::embed, weight_group::embedding, std::nullopt},
        {"lm_head.weight", weight_type::head, weight_group::embedding, std::nullopt},
        // Other prefixes of the same family keep their layer.
        {"layers.7.self_attn.q_proj.weight", weight_type::q, weight_group::attention, 7},
        {"language_model.model.layers.5.mlp.down_proj.weight", weight_type::down, weight_group::mlp, 5},
    };
}

// The same tensors as llama.cpp's GGUF files name them.
std::vector<named_weight> gguf_names() {
    return {
        {"blk.0.attn_q.weight", weight_type::q, weight_group::attention, 0},
        {"blk.1.attn_k.weight", weight_type::k, weight_group::attention, 1},
        {"blk.2.attn_v.weight", weight_type::v, weight_group::attention, 2},
        {"blk.3.attn_output.weight", weight_type::o, weight_group::attention, 3},
        {"blk.4.ffn_gate.weight", weight_type::gate, weight_group::mlp, 4},
        {"blk.12.ffn_up.weight", weight_type::up, weight_group::mlp, 12},
        {"blk.79.ffn_down.weight", weight_type::down, weight_group::mlp, 79},
        {"token_embd.weight", weight_type::embed, weight_group::embedding, std::nullopt},
        {"output.weight", weight_type::head, weight_group::embedding, std::nullopt},
    };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(classify_test)

BOOST_DATA_TEST_CASE(llama_weight_names_map_to_type_group_and_layer, bdata::make(llama_names()), row) {
    const auto kind = adaptk::classify(row.name);
    BOOST_TEST_REQUIRE(kind.has_value());
    BOOST_TEST((kind->type == row.type));
    BOOST_TEST((kind->group == row.group));
    BOOST_TEST((kind->layer == row.layer));
}

BOOST_DATA_TEST_CASE(gguf_weight_names_map_to_type_group_and_layer, bdata::make(gguf_names()), row) {
    const auto kind = adaptk::classify(row.name);
    BOOST_TEST_REQUIRE(kind.has_value());
    BOOST_TEST((kind->type == row.type));
    BOOST_TEST((kind->group == row.group));
    BOOST_TEST((kind->layer == row.layer));
}

BOOST_DATA_TEST_CASE(gguf_norms_and_biases_are_not_classified,
                     bdata::make({"blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight",
                                  "blk.0.attn_q.bias", "rope_freqs.weight"}),
                     name) {
    BOOST_TEST(!adaptk::classify(name).has_value());
}

BOOST_DATA_TEST_CASE(norms_biases_and_rotary_tables_are_not_classified,
                     bdata::make({"model.layers.0.input_layernorm.weight",
                                  "model.layers.0.post_attention_layernorm.weight", "model.norm.weight",
                                  "model.layers.0.self_attn.q_proj.bias", "model.layers.3.mlp.down_proj.bias",
                                  "model.layers.0.self_attn.rotary_emb.inv_freq", "lm_head.bias",
                                  "model.layers.0.self_attn.q_proj.lora_a", "model.layers.0.self_attn.q_proj",
                                  "q_proj_weight", "", "weight", ".weight"}),
                     name) {
    BOOST_TEST(!adaptk::classify(name).has_value());
}

BOOST_AUTO_TEST_CASE(layer_is_parsed_as_a_number) {
    const auto kind = adaptk::classify("model.layers.12.mlp.up_proj.weight");
    BOOST_TEST_REQUIRE(kind.has_value());
    BOOST_TEST((kind->layer == std::optional<int>(12)));
    const auto big = adaptk::classify("model.layers.1023.self_attn.o_proj.weight");
    BOOST_TEST_REQUIRE(big.has_value());
    BOOST_TEST((big->layer == std::optional<int>(1023)));
}

BOOST_DATA_TEST_CASE(malformed_layer_components_give_no_layer,
                     bdata::make({"model.xlayers.3.self_attn.q_proj.weight", "model.layers.x3.self_attn.q_proj.weight",
                                  "model.layers.3x.self_attn.q_proj.weight", "model.layers..self_attn.q_proj.weight",
                                  "model.layers.-3.self_attn.q_proj.weight",
                                  "model.layers.99999999999999999999.self_attn.q_proj.weight",
                                  "model.self_attn.q_proj.weight"}),
                     name) {
    const auto kind = adaptk::classify(name);
    BOOST_TEST_REQUIRE(kind.has_value());  // still a q projection
    BOOST_TEST((kind->type == weight_type::q));
    BOOST_TEST(!kind->layer.has_value());
}

BOOST_AUTO_TEST_CASE(embeddings_have_no_layer) {
    BOOST_TEST(!adaptk::classify("lm_head.weight")->layer.has_value());
    BOOST_TEST(!adaptk::classify("model.embed_tokens.weight")->layer.has_value());
}

BOOST_AUTO_TEST_CASE(type_names_round_trip_in_report_order) {
    const std::vector<std::string> expected{"q", "k", "v", "o", "gate", "up", "down", "embed", "head"};
    BOOST_TEST_REQUIRE(adaptk::all_weight_types.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const weight_type type = adaptk::all_weight_types[i];
        BOOST_TEST(adaptk::type_name(type) == expected[i]);
        BOOST_TEST((adaptk::parse_type(expected[i]) == std::optional<weight_type>(type)));
    }
    BOOST_TEST(!adaptk::parse_type("q_proj").has_value());
    BOOST_TEST(!adaptk::parse_type("").has_value());
}

BOOST_AUTO_TEST_CASE(groups_have_names_and_cover_the_types) {
    BOOST_TEST(adaptk::group_name(weight_group::attention) == "attention");
    BOOST_TEST(adaptk::group_name(weight_group::mlp) == "mlp");
    BOOST_TEST(adaptk::group_name(weight_group::embedding) == "embedding");
    BOOST_TEST((adaptk::group_of(weight_type::o) == weight_group::attention));
    BOOST_TEST((adaptk::group_of(weight_type::gate) == weight_group::mlp));
    BOOST_TEST((adaptk::group_of(weight_type::head) == weight_group::embedding));
}

BOOST_AUTO_TEST_SUITE_END()
