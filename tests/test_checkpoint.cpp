#define BOOST_TEST_MODULE checkpoint
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/safetensors_writer.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using adaptk::checkpoint;
using adaptk::dtype;
using adaptk::format_error;
using adaptk::weight_type;
using adaptk::test::temp_dir;

namespace {

fs::path stories() { return adaptk::test::data_dir() / "stories260K"; }
fs::path single_f32() { return stories() / "hf" / "f32" / "model.safetensors"; }
fs::path sharded_f32() { return stories() / "hf-sharded" / "f32"; }
constexpr const char* index_name = "model.safetensors.index.json";
const std::vector<std::string> shard_names{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                           "model-00003-of-00003.safetensors"};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// name -> raw bytes of every tensor in the checkpoint.
std::map<std::string, std::vector<std::byte>> tensor_bytes(const checkpoint& ck) {
    std::map<std::string, std::vector<std::byte>> out;
    for (const auto& entry : ck.tensors()) {
        out[ck.info(entry).name] = adaptk::test::stored_bytes(ck.files()[entry.file], ck.info(entry));
    }
    return out;
}

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

void copy_shards(const fs::path& to, bool with_index) {
    for (const auto& shard : shard_names) fs::copy_file(sharded_f32() / shard, to / shard);
    if (with_index) fs::copy_file(sharded_f32() / index_name, to / index_name);
}

// Writes a tiny model with hidden size 4 from (name, dtype, shape) rows; the
// float tensors hold 0, 1, 2, ...; other dtypes get zero bytes.
struct spec {
    std::string name;
    dtype type;
    std::vector<std::uint64_t> shape;
};

void write_model(const fs::path& path, const std::vector<spec>& tensors) {
    adaptk::safetensors_writer writer(path);
    for (const auto& t : tensors) writer.declare(t.name, t.type, t.shape);
    for (const auto& t : tensors) {
        std::uint64_t elements = 1;
        for (const auto extent : t.shape) elements *= extent;
        if (elements == 0) continue;  // nothing to write: the writer moves past it
        if (adaptk::is_floating_decodable(t.type)) {
            std::vector<float> values(elements);
            for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
            writer.write_values(std::span<const float>(values));
        } else {
            writer.write(std::vector<std::byte>(elements * adaptk::dtype_bytes(t.type)));
        }
    }
    writer.finish();
}

template <class Check>
void expect_format_error(const fs::path& path, Check check) {
    bool thrown = false;
    try {
        checkpoint ck(path);
    } catch (const format_error& e) {
        thrown = true;
        BOOST_TEST_CONTEXT("what() = " << e.what()) { check(e); }
    }
    BOOST_TEST(thrown, "no format_error for " << path);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_test)

BOOST_AUTO_TEST_CASE(opens_a_single_file_and_its_config) {
    const checkpoint ck(single_f32());
    BOOST_TEST(ck.files().size() == 1u);
    BOOST_TEST(ck.tensors().size() == 48u);
    BOOST_TEST(ck.notes().empty());
    BOOST_TEST(ck.config_path() == single_f32().parent_path() / "config.json");
    const auto& config = ck.config();
    BOOST_TEST((config.hidden_size == std::optional<std::uint64_t>(64)));
    BOOST_TEST((config.num_layers == std::optional<std::uint64_t>(5)));
    BOOST_TEST((config.intermediate_size == std::optional<std::uint64_t>(172)));
    BOOST_TEST((config.vocab_size == std::optional<std::uint64_t>(512)));
    BOOST_TEST((config.num_attention_heads == std::optional<std::uint64_t>(8)));
    BOOST_TEST((config.num_key_value_heads == std::optional<std::uint64_t>(4)));
}

BOOST_AUTO_TEST_CASE(tensor_entries_are_classified) {
    const checkpoint ck(single_f32());
    std::size_t classified = 0;
    for (const auto& entry : ck.tensors()) {
        const auto& name = ck.info(entry).name;
        const bool is_norm = contains(name, "norm");
        BOOST_TEST(entry.kind.has_value() == !is_norm, name);
        classified += entry.kind.has_value();
    }
    BOOST_TEST(classified == 37u);
}

BOOST_AUTO_TEST_CASE(opens_a_sharded_directory_through_its_index) {
    const checkpoint ck(sharded_f32());
    BOOST_TEST(ck.files().size() == 3u);
    BOOST_TEST(ck.tensors().size() == 48u);
    BOOST_TEST(ck.notes().empty());
    BOOST_TEST((ck.config().hidden_size == std::optional<std::uint64_t>(64)));
}

BOOST_AUTO_TEST_CASE(sharded_and_single_file_hold_identical_tensors) {
    const auto single = tensor_bytes(checkpoint(single_f32()));
    const auto sharded = tensor_bytes(checkpoint(sharded_f32()));
    BOOST_TEST_REQUIRE(single.size() == 48u);
    BOOST_TEST_REQUIRE(sharded.size() == 48u);
    for (const auto& [name, bytes] : single) {
        const auto it = sharded.find(name);
        BOOST_TEST_REQUIRE((it != sharded.end()), name);
        BOOST_TEST((it->second == bytes), name);
    }
}

BOOST_AUTO_TEST_CASE(opens_the_index_file_path_itself) {
    const checkpoint by_index(sharded_f32() / index_name);
    BOOST_TEST(by_index.files().size() == 3u);
    BOOST_TEST(by_index.tensors().size() == 48u);
    BOOST_TEST(by_index.config_path() == sharded_f32() / "config.json");
    BOOST_TEST((tensor_bytes(by_index) == tensor_bytes(checkpoint(sharded_f32()))));
}

BOOST_AUTO_TEST_CASE(opens_a_directory_of_shards_without_an_index) {
    temp_dir dir;
    copy_shards(dir.path(), false);
    const checkpoint ck(dir.path());
    BOOST_TEST_REQUIRE(ck.files().size() == 3u);
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(ck.files()[i].path().filename() == shard_names[i]);  // sorted
    BOOST_TEST(ck.tensors().size() == 48u);
    BOOST_TEST(ck.config_path().empty());
    BOOST_TEST(!ck.config().hidden_size.has_value());
    BOOST_TEST((tensor_bytes(ck) == tensor_bytes(checkpoint(single_f32()))));
}

BOOST_AUTO_TEST_CASE(hidden_size_comes_from_config_without_a_note) {
    const checkpoint ck(single_f32());
    std::vector<std::string> notes;
    BOOST_TEST(ck.hidden_size(std::nullopt, notes) == 64u);
    BOOST_TEST(notes.empty());
}

BOOST_AUTO_TEST_CASE(hidden_size_is_inferred_without_config_and_says_so) {
    temp_dir dir;
    fs::copy_file(single_f32(), dir / "model.safetensors");
    const checkpoint ck(dir / "model.safetensors");
    BOOST_TEST(ck.config_path().empty());
    std::vector<std::string> notes;
    BOOST_TEST(ck.hidden_size(std::nullopt, notes) == 64u);
    BOOST_TEST_REQUIRE(notes.size() == 1u);
    BOOST_TEST(contains(notes[0], "hidden size 64 inferred"));
}

BOOST_AUTO_TEST_CASE(hidden_size_of_the_skinny_llama_is_inferred_as_8) {
    temp_dir dir;
    fs::copy_file(adaptk::test::data_dir() / "llama-2-tiny-random" / "hf" / "f16" / "model.safetensors",
                  dir / "model.safetensors");
    const checkpoint ck(dir.path());
    std::vector<std::string> notes;
    BOOST_TEST(ck.hidden_size(std::nullopt, notes) == 8u);
    BOOST_TEST(notes.size() == 1u);
}

BOOST_AUTO_TEST_CASE(hidden_size_request_overrides_config) {
    const checkpoint ck(single_f32());
    std::vector<std::string> notes;
    BOOST_TEST(ck.hidden_size(172, notes) == 172u);
    BOOST_TEST(notes.empty());
}

// No classified tensor: naming rules (--types) are the fix, not a size.
BOOST_AUTO_TEST_CASE(hidden_size_without_any_weight_tensor_points_to_types) {
    temp_dir dir;
    write_model(dir / "norms.safetensors", {{"model.norm.weight", dtype::f32, {4}}});
    const checkpoint ck(dir.path());
    std::vector<std::string> notes;
    for (const std::optional<std::uint64_t> requested : {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{4}})
        BOOST_CHECK_EXCEPTION(ck.hidden_size(requested, notes), format_error, [](const format_error& e) {
            return contains(e.what(), "norms.safetensors") && contains(e.what(), "--types FILE") &&
                   !contains(e.what(), "--hidden-size");
        });
}

// One table row per source of the size: each is checked against the axes.
BOOST_AUTO_TEST_CASE(hidden_size_must_be_an_axis_of_a_non_empty_matrix) {
    temp_dir dir;
    write_model(dir / "empty.safetensors", {{"model.layers.0.self_attn.q_proj.weight", dtype::f32, {0, 64}}});
    const checkpoint empty(dir.path());
    std::vector<std::string> notes;
    BOOST_CHECK_EXCEPTION(empty.hidden_size(std::nullopt, notes), format_error, [](const format_error& e) {
        return contains(e.what(), "is a non-empty matrix, so the hidden size is unknown");
    });

    temp_dir configured;
    write_model(configured / "model.safetensors", {{"model.layers.0.self_attn.q_proj.weight", dtype::f32, {4, 6}}});
    adaptk::test::write_text(configured / "config.json", R"({"hidden_size": 1099511627776})");
    const checkpoint ck(configured.path());
    BOOST_CHECK_EXCEPTION(ck.hidden_size(std::nullopt, notes), format_error, [](const format_error& e) {
        return contains(e.what(), "config.json") &&
               contains(e.what(), "hidden size 1099511627776 is no axis length of the weight matrices (their axes: 4, 6)");
    });
    BOOST_CHECK_EXCEPTION(ck.hidden_size(5, notes), format_error, [](const format_error& e) {
        return contains(e.what(), "--hidden-size 5 is no axis length");
    });
    BOOST_TEST(ck.hidden_size(6, notes) == 6u);
}

// --- errors

BOOST_AUTO_TEST_CASE(missing_path_throws_system_error_naming_it) {
    temp_dir dir;
    const auto missing = dir / "nowhere";
    BOOST_CHECK_EXCEPTION(checkpoint{missing}, std::system_error, [&](const std::system_error& e) {
        return contains(e.what(), missing.string()) && e.code() == std::errc::no_such_file_or_directory;
    });
}

BOOST_AUTO_TEST_CASE(directory_without_weights_is_a_format_error) {
    temp_dir dir;
    adaptk::test::write_text(dir / "README.md", "no weights here");
    expect_format_error(dir.path(), [&](const format_error& e) {
        BOOST_TEST(e.file() == dir.path().string());
        BOOST_TEST(contains(e.what(), "directory holds no .safetensors files and no model.safetensors.index.json"));
    });
}

BOOST_AUTO_TEST_CASE(index_naming_a_missing_shard_names_index_tensor_and_shard) {
    temp_dir dir;
    copy_shards(dir.path(), true);
    fs::remove(dir / shard_names[2]);
    // The first tensor (by name) that the index puts into the missing shard.
    std::set<std::string> in_missing;
    const auto index = read_json(dir / index_name);
    for (const auto& [tensor, shard] : index["weight_map"].items())
        if (shard == shard_names[2]) in_missing.insert(tensor);
    BOOST_TEST_REQUIRE(!in_missing.empty());
    expect_format_error(dir.path(), [&](const format_error& e) {
        BOOST_TEST(e.file() == (dir / index_name).string());
        BOOST_TEST(e.tensor() == *in_missing.begin());
        BOOST_TEST(contains(e.what(), "its shard 'model-00003-of-00003.safetensors' does not exist"));
    });
}

BOOST_AUTO_TEST_CASE(index_tensor_missing_from_its_shard_is_named) {
    temp_dir dir;
    copy_shards(dir.path(), true);
    auto index = read_json(dir / index_name);
    index["weight_map"]["model.layers.9.mlp.up_proj.weight"] = shard_names[0];
    adaptk::test::write_text(dir / index_name, index.dump());
    expect_format_error(dir.path(), [&](const format_error& e) {
        BOOST_TEST(e.file() == (dir / index_name).string());
        BOOST_TEST(e.tensor() == "model.layers.9.mlp.up_proj.weight");
        BOOST_TEST(contains(e.what(), "missing from its shard " + (dir / shard_names[0]).string()));
    });
}

BOOST_AUTO_TEST_CASE(shard_tensors_absent_from_the_index_are_read_with_a_note) {
    temp_dir dir;
    copy_shards(dir.path(), true);
    auto index = read_json(dir / index_name);
    index["weight_map"].erase("model.norm.weight");
    adaptk::test::write_text(dir / index_name, index.dump());
    const checkpoint ck(dir.path());
    BOOST_TEST(ck.tensors().size() == 48u);
    BOOST_TEST_REQUIRE(ck.notes().size() == 1u);
    BOOST_TEST(contains(ck.notes()[0], "1 tensor(s) not listed in the index weight_map"));
}

BOOST_AUTO_TEST_CASE(malformed_index_json_is_a_format_error_with_its_offset) {
    temp_dir dir;
    copy_shards(dir.path(), false);
    adaptk::test::write_text(dir / index_name, "{\"weight_map\": {\"a\": }");  // '}' at byte 21 is the defect
    expect_format_error(dir.path(), [&](const format_error& e) {
        BOOST_TEST(e.file() == (dir / index_name).string());
        BOOST_TEST(contains(e.what(), "not valid JSON near byte 21"));
        BOOST_TEST((e.byte_offset() == std::optional<std::uint64_t>(21)));
    });
}

// nlohmann's parser and destructor keep their own stacks, so nesting costs
// heap, not call stack: 10^6 levels are refused by the shape check, not a crash.
BOOST_AUTO_TEST_CASE(deeply_nested_index_json_is_a_format_error_not_a_crash) {
    temp_dir dir;
    copy_shards(dir.path(), false);
    constexpr std::size_t depth = 1'000'000;
    adaptk::test::write_text(dir / index_name,
                             "{\"weight_map\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
    expect_format_error(dir.path(), [&](const format_error& e) {
        BOOST_TEST(e.file() == (dir / index_name).string());
        BOOST_TEST(contains(e.what(), "has no 'weight_map' object"));
    });
}

BOOST_AUTO_TEST_CASE(index_without_weight_map_is_a_format_error) {
    temp_dir dir;
    copy_shards(dir.path(), false);
    adaptk::test::write_text(dir / index_name, "{\"metadata\": {}}");
    expect_format_error(dir.path(), [&](const format_error& e) {
        BOOST_TEST(e.file() == (dir / index_name).string());
        BOOST_TEST(contains(e.what(), "has no 'weight_map' object"));
    });
}

BOOST_AUTO_TEST_CASE(tensor_stored_in_two_files_is_refused) {
    temp_dir dir;
    fs::copy_file(sharded_f32() / shard_names[0], dir / "a.safetensors");
    fs::copy_file(sharded_f32() / shard_names[0], dir / "b.safetensors");
    expect_format_error(dir.path(), [&](const format_error& e) {
        BOOST_TEST(e.file() == (dir / "b.safetensors").string());
        BOOST_TEST(e.tensor() == "lm_head.weight");  // b's first tensor
        BOOST_TEST(contains(e.what(), "also stored in " + (dir / "a.safetensors").string()));
    });
}

BOOST_AUTO_TEST_CASE(config_with_a_non_integer_hidden_size_is_a_format_error) {
    temp_dir dir;
    fs::copy_file(single_f32(), dir / "model.safetensors");
    adaptk::test::write_text(dir / "config.json", R"({"hidden_size": "abc", "num_hidden_layers": 5})");
    expect_format_error(dir.path(), [&](const format_error& e) {
        BOOST_TEST(e.file() == (dir / "config.json").string());
        BOOST_TEST(contains(e.what(), "'hidden_size' is not a positive integer"));
    });
}

BOOST_DATA_TEST_CASE(config_field_must_be_a_positive_integer,
                     boost::unit_test::data::make({"0", "-64", "64.5", "[64]", "true"}), value) {
    temp_dir dir;
    adaptk::test::write_text(dir / "config.json", std::string(R"({"num_hidden_layers": )") + value + "}");
    BOOST_CHECK_EXCEPTION(adaptk::read_model_config(dir / "config.json"), format_error, [](const format_error& e) {
        return contains(e.what(), "'num_hidden_layers' is not a positive integer");
    });
}

BOOST_AUTO_TEST_CASE(gpt2_config_names_fill_the_same_fields) {
    temp_dir dir;
    adaptk::test::write_text(dir / "config.json",
                             R"({"n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null, "vocab_size": 50257})");
    const auto config = adaptk::read_model_config(dir / "config.json");
    BOOST_TEST((config.hidden_size == std::optional<std::uint64_t>(768)));
    BOOST_TEST((config.num_layers == std::optional<std::uint64_t>(12)));
    BOOST_TEST((config.num_attention_heads == std::optional<std::uint64_t>(12)));
    BOOST_TEST(!config.intermediate_size.has_value());
    BOOST_TEST(!config.num_key_value_heads.has_value());
    BOOST_TEST(!config.tie_word_embeddings);
    // The HF name wins over the GPT-2 alias; head_dim and the tie flag are read.
    adaptk::test::write_text(dir / "config.json",
                             R"({"hidden_size": 64, "n_embd": 32, "head_dim": 8, "tie_word_embeddings": true})");
    const auto both = adaptk::read_model_config(dir / "config.json");
    BOOST_TEST((both.hidden_size == std::optional<std::uint64_t>(64)));
    BOOST_TEST((both.head_dim == std::optional<std::uint64_t>(8)));
    BOOST_TEST(both.tie_word_embeddings);
}

BOOST_DATA_TEST_CASE(config_aliases_and_tie_flag_are_checked_too,
                     boost::unit_test::data::make({R"({"n_head": 0})", R"({"head_dim": -1})",
                                                   R"({"tie_word_embeddings": 1})", R"({"tie_word_embeddings": "yes"})"}),
                     text) {
    temp_dir dir;
    adaptk::test::write_text(dir / "config.json", text);
    BOOST_CHECK_EXCEPTION(adaptk::read_model_config(dir / "config.json"), format_error, [](const format_error& e) {
        return contains(e.what(), "is not a positive integer") || contains(e.what(), "is not true or false");
    });
}

BOOST_AUTO_TEST_CASE(config_that_is_not_an_object_is_a_format_error) {
    temp_dir dir;
    adaptk::test::write_text(dir / "config.json", "[64]");
    BOOST_CHECK_EXCEPTION(adaptk::read_model_config(dir / "config.json"), format_error,
                          [](const format_error& e) { return contains(e.what(), "config is not a JSON object"); });
}

BOOST_AUTO_TEST_CASE(config_null_fields_stay_empty) {
    temp_dir dir;
    adaptk::test::write_text(dir / "config.json", R"({"hidden_size": 16, "vocab_size": null, "other": "x"})");
    const auto config = adaptk::read_model_config(dir / "config.json");
    BOOST_TEST((config.hidden_size == std::optional<std::uint64_t>(16)));
    BOOST_TEST(!config.vocab_size.has_value());
    BOOST_TEST(!config.num_layers.has_value());
}

// --- matrices()

// Its lm_head holds the embedding's bytes (llama2.c shares the classifier): the
// head is left out with a note, so the embedding counts once.
BOOST_AUTO_TEST_CASE(stories260k_has_36_matrices_by_type_then_layer) {
    const checkpoint ck(single_f32());
    std::vector<std::string> notes;
    const auto matrices = ck.matrices(64, notes);
    BOOST_TEST_REQUIRE(notes.size() == 1u);
    BOOST_TEST(contains(notes[0], "'lm_head.weight' holds the same bytes as 'model.embed_tokens.weight'"), notes[0]);
    BOOST_TEST_REQUIRE(matrices.size() == 36u);  // 5 layers x 7 types + embed

    std::size_t i = 0;
    for (const weight_type type : {weight_type::q, weight_type::k, weight_type::v, weight_type::o, weight_type::gate,
                                   weight_type::up, weight_type::down}) {
        for (int layer = 0; layer < 5; ++layer, ++i) {
            BOOST_TEST_CONTEXT("matrix " << i << " " << matrices[i].name) {
                BOOST_TEST((matrices[i].kind.type == type));
                BOOST_TEST((matrices[i].kind.layer == std::optional<int>(layer)));
                BOOST_TEST(matrices[i].vectors_are_rows == (type != weight_type::down));
            }
        }
    }
    BOOST_TEST(matrices[35].name == "model.embed_tokens.weight");
    for (const auto& m : matrices) {
        BOOST_TEST_CONTEXT(m.name) {
            BOOST_TEST(!contains(m.name, "norm"));
            BOOST_TEST((m.type == dtype::f32));
            BOOST_TEST(m.stored_size() == m.rows * m.cols * 4);
            BOOST_TEST(m.bytes.empty());  // read from the file a block at a time, never mapped whole
            BOOST_TEST((m.file.get() == &ck.files()[0].source()));
            BOOST_TEST(m.file_offset + m.stored_size() <= ck.files()[0].source().size());
        }
    }
}

// The matrices share the open file: those of a checkpoint that is already
// gone (a temporary here) still read the file's bytes.
BOOST_AUTO_TEST_CASE(matrices_outlive_a_temporary_checkpoint) {
    std::vector<std::string> notes;
    const auto orphans = checkpoint(single_f32()).matrices(64, notes);
    const checkpoint live(single_f32());
    const auto reference = live.matrices(64, notes);
    BOOST_TEST_REQUIRE(orphans.size() == reference.size());
    for (std::size_t i = 0; i < orphans.size(); ++i) {
        BOOST_TEST_CONTEXT(reference[i].name) {
            BOOST_TEST(orphans[i].file.use_count() >= 1);
            BOOST_TEST_REQUIRE(orphans[i].stored_size() == reference[i].stored_size());
            std::vector<std::byte> orphan(orphans[i].stored_size()), live_bytes(reference[i].stored_size());
            orphans[i].file->read(orphans[i].file_offset, orphan.size(), orphan.data());
            reference[i].file->read(reference[i].file_offset, live_bytes.size(), live_bytes.data());
            BOOST_TEST((orphan == live_bytes));
        }
    }
}

// Q8_0 stores 32 elements in 34 bytes (an fp16 scale and 32 int8).
BOOST_AUTO_TEST_CASE(vector_bytes_of_a_block_type_counts_bytes_per_element) {
    adaptk::weight_matrix m;
    m.type = dtype::q8_0;
    m.rows = 4;
    m.cols = 64;
    BOOST_TEST(m.vector_bytes() == 4u * 64u / 32u * 34u);
    m.type = dtype::bf16;
    BOOST_TEST(m.vector_bytes() == 4u * 64u * 2u);
}

BOOST_AUTO_TEST_CASE(down_proj_vectors_are_its_columns) {
    const checkpoint ck(single_f32());
    std::vector<std::string> notes;
    const auto matrices = ck.matrices(64, notes);
    const auto down = std::find_if(matrices.begin(), matrices.end(),
                                   [](const auto& m) { return m.name == "model.layers.3.mlp.down_proj.weight"; });
    BOOST_TEST_REQUIRE((down != matrices.end()));
    BOOST_TEST(down->rows == 64u);
    BOOST_TEST(down->cols == 172u);
    BOOST_TEST(!down->vectors_are_rows);
    BOOST_TEST(down->vector_count() == 172u);
    const auto up = std::find_if(matrices.begin(), matrices.end(),
                                 [](const auto& m) { return m.name == "model.layers.3.mlp.up_proj.weight"; });
    BOOST_TEST_REQUIRE((up != matrices.end()));
    BOOST_TEST(up->rows == 172u);
    BOOST_TEST(up->vectors_are_rows);
    BOOST_TEST(up->vector_count() == 172u);
}

BOOST_AUTO_TEST_CASE(layers_sort_numerically_not_lexicographically) {
    temp_dir dir;
    write_model(dir / "model.safetensors", {
                                               {"model.layers.10.self_attn.q_proj.weight", dtype::f32, {4, 4}},
                                               {"model.layers.2.self_attn.k_proj.weight", dtype::f16, {2, 4}},
                                               {"model.layers.2.self_attn.q_proj.weight", dtype::bf16, {4, 4}},
                                               {"model.layers.10.mlp.down_proj.weight", dtype::f32, {4, 6}},
                                               {"model.layers.2.mlp.down_proj.weight", dtype::f64, {4, 6}},
                                           });
    const checkpoint ck(dir.path());
    std::vector<std::string> notes;
    const auto matrices = ck.matrices(4, notes);
    BOOST_TEST(notes.empty());
    std::vector<std::string> names;
    for (const auto& m : matrices) names.push_back(m.name);
    const std::vector<std::string> expected{
        "model.layers.2.self_attn.q_proj.weight", "model.layers.10.self_attn.q_proj.weight",
        "model.layers.2.self_attn.k_proj.weight", "model.layers.2.mlp.down_proj.weight",
        "model.layers.10.mlp.down_proj.weight",
    };
    BOOST_TEST(names == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unanalysable_classified_tensors_get_a_note_and_are_left_out) {
    temp_dir dir;
    write_model(dir / "model.safetensors", {
                                               {"model.layers.0.self_attn.q_proj.weight", dtype::f32, {4, 4}},
                                               {"model.layers.0.input_layernorm.weight", dtype::f32, {4}},
                                               {"model.layers.1.self_attn.q_proj.weight", dtype::i8, {4, 4}},
                                               {"model.layers.2.mlp.up_proj.weight", dtype::f32, {4}},
                                               {"model.layers.3.self_attn.v_proj.weight", dtype::f32, {3, 5}},
                                           });
    const checkpoint ck(dir.path());
    std::vector<std::string> notes;
    const auto matrices = ck.matrices(4, notes);
    BOOST_TEST_REQUIRE(matrices.size() == 1u);
    BOOST_TEST(matrices[0].name == "model.layers.0.self_attn.q_proj.weight");
    BOOST_TEST_REQUIRE(notes.size() == 3u);  // the norm is not classified, so no note
    BOOST_TEST(contains(notes[0], "tensor 'model.layers.2.mlp.up_proj.weight': shape 4 is not a matrix; left out"));
    BOOST_TEST(contains(notes[1], "tensor 'model.layers.3.self_attn.v_proj.weight': shape 3x5 has no axis of the "
                                  "hidden size 4; left out"));
    BOOST_TEST(contains(notes[2], "model.safetensors: dtype I8 is not analysed: 1 tensor left out "
                                  "('model.layers.1.self_attn.q_proj.weight')"));
}

BOOST_AUTO_TEST_SUITE_END()
