#define BOOST_TEST_MODULE classify
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "adaptk/classify.hpp"
#include "adaptk/error.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
using adaptk::fusion;
using adaptk::storage_layout;
using adaptk::type_rules;
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

struct family_weight {
    std::string name;
    std::string class_name;  ///< as inspect prints it
    weight_type type;
    std::optional<int> layer;
    fusion fused;
    storage_layout layout;
};

std::ostream& operator<<(std::ostream& out, const family_weight& row) { return out << row.name; }

constexpr auto linear = storage_layout::linear;
constexpr auto conv1d = storage_layout::conv1d;

// GPT-2, GPT-NeoX / Pythia and Phi-3 weight names as their HF checkpoints spell them.
std::vector<family_weight> family_names() {
    return {
        // GPT-2, with and without the "transformer." prefix; Conv1D [in, out].
        {"h.0.attn.c_attn.weight", "qkv", weight_type::q, 0, fusion::qkv, conv1d},
        {"transformer.h.11.attn.c_attn.weight", "qkv", weight_type::q, 11, fusion::qkv, conv1d},
        {"h.3.attn.c_proj.weight", "o", weight_type::o, 3, fusion::none, conv1d},
        {"transformer.h.3.mlp.c_fc.weight", "up", weight_type::up, 3, fusion::none, conv1d},
        {"h.5.mlp.c_proj.weight", "down", weight_type::down, 5, fusion::none, conv1d},
        {"wte.weight", "embed", weight_type::embed, std::nullopt, fusion::none, linear},
        {"transformer.wte.weight", "embed", weight_type::embed, std::nullopt, fusion::none, linear},
        // GPT-NeoX / Pythia.
        {"gpt_neox.layers.2.attention.query_key_value.weight", "qkv_heads", weight_type::q, 2, fusion::qkv_per_head,
         linear},
        {"gpt_neox.layers.2.attention.dense.weight", "o", weight_type::o, 2, fusion::none, linear},
        {"gpt_neox.layers.4.mlp.dense_h_to_4h.weight", "up", weight_type::up, 4, fusion::none, linear},
        {"gpt_neox.layers.4.mlp.dense_4h_to_h.weight", "down", weight_type::down, 4, fusion::none, linear},
        {"gpt_neox.embed_in.weight", "embed", weight_type::embed, std::nullopt, fusion::none, linear},
        {"embed_out.weight", "head", weight_type::head, std::nullopt, fusion::none, linear},
        // Phi-3.
        {"model.layers.6.self_attn.qkv_proj.weight", "qkv", weight_type::q, 6, fusion::qkv, linear},
        {"model.layers.6.mlp.gate_up_proj.weight", "gate_up", weight_type::gate, 6, fusion::gate_up, linear},
        {"model.layers.6.self_attn.o_proj.weight", "o", weight_type::o, 6, fusion::none, linear},
    };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(classify_test)

BOOST_DATA_TEST_CASE(other_families_map_to_the_same_types, bdata::make(family_names()), row) {
    const auto kind = adaptk::classify(row.name);
    BOOST_TEST_REQUIRE(kind.has_value());
    BOOST_TEST((kind->type == row.type));
    BOOST_TEST((kind->group == adaptk::group_of(row.type)));
    BOOST_TEST((kind->layer == row.layer));
    BOOST_TEST((kind->fused == row.fused));
    BOOST_TEST((kind->layout == row.layout));
    BOOST_TEST(adaptk::class_name(*kind) == row.class_name);
}

BOOST_DATA_TEST_CASE(other_families_biases_norms_and_positions_are_not_classified,
                     bdata::make({"h.0.attn.bias", "h.0.attn.c_attn.bias", "transformer.h.0.ln_1.weight",
                                  "wpe.weight", "ln_f.weight", "gpt_neox.layers.0.attention.query_key_value.bias",
                                  "gpt_neox.layers.0.attention.rotary_emb.inv_freq",
                                  "gpt_neox.layers.0.input_layernorm.weight", "gpt_neox.final_layer_norm.weight",
                                  "model.layers.0.self_attn.qkv_proj.bias", "h.0.mlp.c_proj.bias",
                                  "h.0.attn.c_attnx.weight", "h.0.xattn.c_proj.weight"}),
                     name) {
    BOOST_TEST(!adaptk::classify(name).has_value());
}

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

// --- user rules (--types FILE)

namespace {

const std::string rules_text =
    "# type,layout,regex\n"
    "q,linear,blocks\\.(\\d+)\\.wq\\.weight\n"
    "qkv, conv1d ,blocks\\.(\\d+)\\.wqkv\\.weight\r\n"
    "\n"
    "down,,blocks\\.(\\d+)\\.w2\\.weight\n"
    "none,linear,.*\\.lora_[ab]\\.weight\n"
    "head,linear,model\\.layers\\.0\\.self_attn\\.q_proj\\.weight\n"
    "embed,linear,tok(_|-)embeddings\\.weight\n"
    "up,linear,(ab){1,2}\\.weight\n";

}  // namespace

BOOST_AUTO_TEST_CASE(user_rules_classify_their_names_and_capture_the_layer) {
    const type_rules rules = type_rules::parse(rules_text, "rules.csv");
    BOOST_TEST(rules.size() == 7u);
    const auto q = rules.classify("blocks.12.wq.weight");
    BOOST_TEST_REQUIRE(q.has_value());
    BOOST_TEST((q->type == weight_type::q && q->group == weight_group::attention));
    BOOST_TEST((q->layer == std::optional<int>(12)));
    BOOST_TEST((q->fused == fusion::none && q->layout == linear));

    const auto qkv = rules.classify("blocks.3.wqkv.weight");
    BOOST_TEST_REQUIRE(qkv.has_value());
    BOOST_TEST((qkv->fused == fusion::qkv && qkv->layout == conv1d && qkv->layer == std::optional<int>(3)));

    const auto down = rules.classify("blocks.0.w2.weight");
    BOOST_TEST_REQUIRE(down.has_value());
    BOOST_TEST((down->type == weight_type::down && down->layout == linear));

    // A capture group that is not a layer number gives no layer; a regex
    // without one neither; and the regex must match the whole name.
    const auto embed = rules.classify("tok_embeddings.weight");
    BOOST_TEST_REQUIRE(embed.has_value());
    BOOST_TEST(!embed->layer.has_value());
    BOOST_TEST(!rules.classify("xblocks.1.wq.weight").has_value());
    BOOST_TEST(!rules.classify("blocks.1.wq.weight.extra").has_value());
    // Commas inside the regex belong to it.
    BOOST_TEST(rules.classify("abab.weight").has_value());
    BOOST_TEST(!rules.classify("ababab.weight").has_value());
}

BOOST_AUTO_TEST_CASE(user_rules_come_before_the_built_in_ones) {
    const type_rules rules = type_rules::parse(rules_text, "rules.csv");
    // Overridden: a built-in q name the file calls head.
    const auto head = rules.classify("model.layers.0.self_attn.q_proj.weight");
    BOOST_TEST_REQUIRE(head.has_value());
    BOOST_TEST((head->type == weight_type::head));
    BOOST_TEST(!head->layer.has_value());
    // Excluded: "none" leaves out what a built-in rule would take.
    BOOST_TEST(adaptk::classify("model.layers.0.mlp.up_proj.lora_a.weight").has_value() == false);
    BOOST_TEST(!rules.classify("model.layers.0.lora_a.weight").has_value());
    BOOST_TEST(adaptk::classify("x.lm_head.lora_b.weight").has_value() == false);
    // Unmatched names fall through to the built-in table.
    const auto k = rules.classify("model.layers.1.self_attn.k_proj.weight");
    BOOST_TEST_REQUIRE(k.has_value());
    BOOST_TEST((k->type == weight_type::k && k->layer == std::optional<int>(1)));
    BOOST_TEST(!rules.classify("model.norm.weight").has_value());
}

BOOST_AUTO_TEST_CASE(none_hides_a_built_in_name) {
    const type_rules rules = type_rules::parse("none,,lm_head\\.weight\n", "r.csv");
    BOOST_TEST(adaptk::classify("lm_head.weight").has_value());
    BOOST_TEST(!rules.classify("lm_head.weight").has_value());
}

namespace {

struct bad_rules {
    std::string text;
    std::string message;
};
std::ostream& operator<<(std::ostream& out, const bad_rules& c) { return out << c.message; }

std::vector<bad_rules> bad_rule_files() {
    return {
        {"q,linear,a\n\nqq,linear,b\n",
         "rules.csv: line 3: unknown type 'qq' (expected q, k, v, o, gate, up, down, embed, head, qkv, qkv_heads, "
         "gate_up or none)"},
        {"# only a comment\nq,transposed,a\n",
         "rules.csv: line 2: unknown layout 'transposed' (expected linear, conv1d or nothing)"},
        {"q,a\n", "rules.csv: line 1: expected TYPE,LAYOUT,REGEX"},
        {"q\n", "rules.csv: line 1: expected TYPE,LAYOUT,REGEX"},
        {"q,linear,\n", "rules.csv: line 1: empty regular expression"},
        {"", "rules.csv: holds no rules (expected lines TYPE,LAYOUT,REGEX)"},
        {"# nothing\n\n", "rules.csv: holds no rules (expected lines TYPE,LAYOUT,REGEX)"},
    };
}

}  // namespace

BOOST_DATA_TEST_CASE(bad_rule_files_name_the_file_and_line, bdata::make(bad_rule_files()), c) {
    try {
        (void)type_rules::parse(c.text, "rules.csv");
        BOOST_ERROR("no format_error for: " << c.text);
    } catch (const adaptk::format_error& e) {
        BOOST_TEST(std::string(e.what()) == c.message);
        BOOST_TEST(e.file() == "rules.csv");
    }
}

BOOST_AUTO_TEST_CASE(an_invalid_regex_names_the_line_and_the_pattern) {
    try {
        (void)type_rules::parse("q,linear,ok\nk,linear,layers\\.(\\d+\n", "rules.csv");
        BOOST_ERROR("no format_error");
    } catch (const adaptk::format_error& e) {
        const std::string message = e.what();
        BOOST_TEST(message.starts_with("rules.csv: line 2: invalid regular expression 'layers\\.(\\d+': "), message);
        BOOST_TEST(message.find('\n') == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(read_parses_a_file_and_names_a_missing_one) {
    adaptk::test::temp_dir dir;
    adaptk::test::write_text(dir / "rules.csv", rules_text);
    BOOST_TEST(type_rules::read(dir / "rules.csv").size() == 7u);
    BOOST_CHECK_EXCEPTION(type_rules::read(dir / "absent.csv"), std::system_error, [&](const std::system_error& e) {
        return std::string(e.what()).find((dir / "absent.csv").string()) != std::string::npos;
    });
}

BOOST_AUTO_TEST_SUITE_END()
