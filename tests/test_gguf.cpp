#define BOOST_TEST_MODULE gguf
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <ostream>
#include <string>
#include <vector>

#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/gguf.hpp"
#include "adaptk/safetensors.hpp"
#include "adaptk/tables.hpp"
#include "adaptk/tensor_file.hpp"
#include "gguf_writer.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
namespace code = adaptk::test::gguf_code;
using adaptk::dtype;
using adaptk::format_error;
using adaptk::test::byte_builder;
using adaptk::test::gguf_image;
using adaptk::test::gguf_spec;
BOOST_TEST_DONT_PRINT_LOG_VALUE(adaptk::dtype)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<std::uint64_t>)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<int>)

namespace {

const std::string file_name = "bad.gguf";

// A valid little model: an F32 [2, 4] matrix and a Q8_0 [1, 32] row.
gguf_spec valid_spec() {
    gguf_spec spec;
    spec.key_values = {adaptk::test::gguf_kv_string("general.architecture", "llama"),
                       adaptk::test::gguf_kv_u32("general.alignment", 32),
                       adaptk::test::gguf_kv_u32("llama.embedding_length", 4)};
    spec.tensors = {{"a", {4, 2}, code::type_f32, 0}, {"b", {32, 1}, code::type_q8_0, 32}};
    spec.data.resize(66);
    return spec;
}

struct defect_row {
    std::string defect;
    std::vector<std::byte> image;
    std::string message;  ///< what() must contain it
    std::string tensor;   ///< format_error::tensor()
};

std::ostream& operator<<(std::ostream& out, const defect_row& row) { return out << row.defect; }

std::vector<std::byte> nested_arrays(int depth) {
    std::vector<std::byte> value = adaptk::test::gguf_array_value(code::u8, 0, {});
    for (int i = 1; i < depth; ++i) value = adaptk::test::gguf_array_value(code::array, 1, value);
    return byte_builder().text("deep").u32(code::array).append(value).bytes();
}

std::vector<defect_row> catalogue() {
    std::vector<defect_row> rows;
    auto add = [&](std::string defect, const gguf_spec& spec, std::string message, std::string tensor = {}) {
        rows.push_back({std::move(defect), gguf_image(spec), std::move(message), std::move(tensor)});
    };
    auto with = [](auto change) {
        gguf_spec spec = valid_spec();
        change(spec);
        return spec;
    };
    auto tensor_defect = [&](std::string defect, adaptk::test::gguf_tensor_spec bad, std::string message) {
        const std::string name = bad.name;
        add(std::move(defect), with([&](gguf_spec& s) { s.tensors.push_back(bad); }), std::move(message), name);
    };

    rows.push_back({"empty file", {}, "file is 0 bytes, too short for the GGUF magic", {}});
    add("bad magic", with([](gguf_spec& s) { s.magic = "GGML"; }), "bad magic: does not start with \"GGUF\"");
    add("version 1", with([](gguf_spec& s) { s.version = 1; }), "GGUF version 1 is not supported (only 2 and 3)");
    add("big-endian version", with([](gguf_spec& s) { s.version = 0x03000000; }), "looks like a big-endian file");
    {
        auto image = gguf_image(valid_spec());
        rows.push_back({"header cut in the counts", {image.begin(), image.begin() + 12},
                        "header truncated: tensor count needs 8 bytes at byte 8 but the file is 12 bytes", {}});
        rows.push_back({"header cut in a key", {image.begin(), image.begin() + 64},
                        "key 'general.architecture' value length 5 runs past the end of the 64-byte file", {}});
        gguf_spec unpadded = valid_spec();
        unpadded.padding_alignment = 1;
        unpadded.data.clear();
        image = gguf_image(unpadded);
        rows.push_back({"header cut in the tensor infos", {image.begin(), image.end() - 4},
                        "header truncated: data offset needs 8 bytes", "b"});
    }
    add("key length beyond the file",
        with([](gguf_spec& s) { s.key_values.push_back(byte_builder().u64(1'000'000).bytes()); }),
        "key 3 length 1000000 runs past the end");
    add("string value length beyond the file", with([](gguf_spec& s) {
            s.key_values.push_back(byte_builder().text("name").u32(code::string).u64(~std::uint64_t{0}).bytes());
        }),
        "key 'name' value length 18446744073709551615 runs past the end");
    add("array count beyond the file",
        with([](gguf_spec& s) { s.key_values.push_back(adaptk::test::gguf_kv_array("v", code::u32, 1ull << 40, {})); }),
        "key 'v' value of 1099511627776 u32 values runs past the end of the file");
    add("array byte count overflows",
        with([](gguf_spec& s) { s.key_values.push_back(adaptk::test::gguf_kv_array("v", code::u64, 1ull << 62, {})); }),
        "key 'v' value of 4611686018427387904 u64 values runs past the end of the file");
    add("string array count absurd", with([](gguf_spec& s) {
            s.key_values.push_back(adaptk::test::gguf_kv_array("tokens", code::string, 1ull << 50, {}));
        }),
        "key 'tokens' value element count 1125899906842624 is absurd");
    add("arrays nested too deep", with([](gguf_spec& s) { s.key_values.push_back(nested_arrays(9)); }),
        "nests arrays deeper than 8 levels");
    add("unknown value type",
        with([](gguf_spec& s) { s.key_values.push_back(byte_builder().text("x").u32(13).u32(0).bytes()); }),
        "key 'x' value has unknown value type 13");
    add("unknown array element type", with([](gguf_spec& s) {
            s.key_values.push_back(byte_builder().text("x").u32(code::array).u32(99).u64(0).bytes());
        }),
        "unknown value type 99");
    add("key-value count absurd", with([](gguf_spec& s) { s.key_value_count = 1ull << 60; }),
        "key-value count 1152921504606846976 is absurd");
    add("tensor count absurd", with([](gguf_spec& s) { s.tensor_count = ~std::uint64_t{0}; }),
        "tensor count 18446744073709551615 is absurd: they need more than 2^64 bytes");
    add("10^12 tensors declared", with([](gguf_spec& s) { s.tensor_count = 1'000'000'000'000; }),
        "tensor count 1000000000000 is absurd: they need at least 32000000000000 bytes");
    add("duplicate key",
        with([](gguf_spec& s) { s.key_values.push_back(adaptk::test::gguf_kv_u32("llama.embedding_length", 8)); }),
        "duplicate key 'llama.embedding_length'");
    add("alignment 0", with([](gguf_spec& s) { s.key_values[1] = adaptk::test::gguf_kv_u32("general.alignment", 0); }),
        "general.alignment is 0");
    add("alignment not a power of two",
        with([](gguf_spec& s) { s.key_values[1] = adaptk::test::gguf_kv_u32("general.alignment", 48); }),
        "general.alignment 48 is not a power of two");
    add("alignment absurd",
        with([](gguf_spec& s) { s.key_values[1] = adaptk::test::gguf_kv_u64("general.alignment", 1ull << 40); }),
        "general.alignment 1099511627776 exceeds the 1048576-byte limit");
    add("alignment a string",
        with([](gguf_spec& s) { s.key_values[1] = adaptk::test::gguf_kv_string("general.alignment", "32"); }),
        "key 'general.alignment' is not a non-negative integer");
    add("embedding length 0",
        with([](gguf_spec& s) { s.key_values[2] = adaptk::test::gguf_kv_u32("llama.embedding_length", 0); }),
        "key 'llama.embedding_length' is not a positive integer");
    add("embedding length negative",
        with([](gguf_spec& s) { s.key_values[2] = adaptk::test::gguf_kv_i32("llama.embedding_length", -4); }),
        "key 'llama.embedding_length' is not a positive integer");
    add("architecture not a string",
        with([](gguf_spec& s) { s.key_values[0] = adaptk::test::gguf_kv_u32("general.architecture", 1); }),
        "key 'general.architecture' is not a string");
    auto split_keys = [](std::uint16_t number, std::uint16_t count, std::int32_t tensors) {
        return std::vector<std::vector<std::byte>>{adaptk::test::gguf_kv_u16("split.no", number),
                                                   adaptk::test::gguf_kv_u16("split.count", count),
                                                   adaptk::test::gguf_kv_i32("split.tensors.count", tensors)};
    };
    auto with_split = [&](std::vector<std::vector<std::byte>> keys) {
        return with([&](gguf_spec& s) { s.key_values.insert(s.key_values.end(), keys.begin(), keys.end()); });
    };
    add("split.no not below split.count", with_split(split_keys(3, 3, 6)), "split.no 3 is not below split.count 3");
    add("split.count 0", with_split(split_keys(0, 0, 6)), "key 'split.count' is not a positive integer");
    add("split.count without split.no", with_split({split_keys(0, 3, 6)[1], split_keys(0, 3, 6)[2]}),
        "key 'split.count' without 'split.no'");
    add("split.count without split.tensors.count", with_split({split_keys(0, 3, 6)[0], split_keys(0, 3, 6)[1]}),
        "key 'split.count' without 'split.tensors.count'");
    add("split.no without split.count", with_split({split_keys(1, 3, 6)[0]}), "key 'split.no' without 'split.count'");
    add("split.tensors.count negative", with_split(split_keys(0, 3, -1)),
        "key 'split.tensors.count' is not a non-negative integer");
    add("more tensors than split.tensors.count", with_split(split_keys(0, 2, 1)),
        "the file holds 2 tensors, more than split.tensors.count 1 of all the parts together");
    tensor_defect("no dimensions", {"c", {}, code::type_f32, 96}, "n_dims is 0; GGUF tensors have 1 to 4 dimensions");
    tensor_defect("five dimensions", {"c", {1, 1, 1, 1, 1}, code::type_f32, 96}, "n_dims is 5");
    tensor_defect("dimension beyond int64", {"c", {1ull << 63}, code::type_f32, 96},
                  "dimension 9223372036854775808 in dims [9223372036854775808] exceeds 2^63 - 1");
    tensor_defect("element count overflow", {"c", {1ull << 32, 1ull << 32, 16}, code::type_f32, 96},
                  "element count of dims [4294967296, 4294967296, 16] overflows 64 bits");
    tensor_defect("byte count overflow", {"c", {1ull << 62}, code::type_f32, 96},
                  "byte count of dims [4611686018427387904] of F32 overflows 64 bits");
    tensor_defect("unknown ggml type", {"c", {4}, 4, 96}, "unknown ggml type 4");
    tensor_defect("ggml type beyond the table", {"c", {4}, 1000, 96}, "unknown ggml type 1000");
    tensor_defect("Q8_0 row not whole blocks", {"c", {33, 2}, code::type_q8_0, 96},
                  "innermost dimension 33 is not a multiple of Q8_0's 32-element block");
    tensor_defect("offset plus size overflows", {"c", {4}, code::type_f32, ~std::uint64_t{0} - 7},
                  "data offset 18446744073709551608 plus 16 bytes overflows 64 bits");
    tensor_defect("data beyond the file", {"c", {4}, code::type_f32, 96},
                  "data [96, 112) runs past the end of the 66-byte data section");
    tensor_defect("misaligned offset", {"c", {4}, code::type_f32, 68},
                  "data offset 68 is not a multiple of the alignment 32");
    add("overlapping tensors", with([](gguf_spec& s) { s.tensors[0].dims = {4, 4}; }),
        "data [32, 66) overlaps tensor 'a' at [0, 64)", "b");
    add("duplicate tensor names", with([](gguf_spec& s) { s.tensors[1].name = "a"; }),
        "tensor name appears twice in the tensor infos", "a");
    add("tensor name length beyond the file", with([](gguf_spec& s) {
            s.tensors.clear();
            s.tensor_count = 1;
            s.padding_alignment = 1;
            s.data = byte_builder().u64(1'000'000'000).zeros(40).bytes();
        }),
        "tensor info 0 name length 1000000000 runs past the end");
    return rows;
}

}  // namespace

BOOST_DATA_TEST_CASE(malformed_file_is_rejected_with_its_defect, bdata::make(catalogue()), row) {
    const std::string prefix = file_name + ": " + (row.tensor.empty() ? "" : "tensor '" + row.tensor + "': ");
    bool thrown = false;
    try {
        adaptk::parse_gguf(row.image, file_name);
    } catch (const format_error& e) {
        thrown = true;
        const std::string what = e.what();
        BOOST_TEST(what.rfind(prefix, 0) == 0u, "what() = " << what);
        BOOST_TEST(what.find(row.message) != std::string::npos, "what() = " << what);
        BOOST_TEST(what.find('\n') == std::string::npos);
        BOOST_TEST(e.file() == file_name);
        BOOST_TEST(e.tensor() == row.tensor);
        BOOST_TEST(e.byte_offset().has_value());
    }
    BOOST_TEST(thrown, "accepted a file with defect: " << row.defect);
}

// ---- valid files ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(valid_file_reverses_dims_and_places_the_data_section) {
    const auto image = gguf_image(valid_spec());
    const auto header = adaptk::parse_gguf(image, file_name);
    BOOST_TEST(header.version == 3u);
    BOOST_TEST(header.alignment == 32u);
    BOOST_TEST(header.key_value_count == 3u);
    BOOST_TEST(header.data_offset % 32 == 0u);
    BOOST_TEST(header.data_offset + 66 == image.size());
    BOOST_TEST(header.data_bytes == 66u);
    BOOST_TEST(header.model.architecture == "llama");
    BOOST_TEST(header.model.embedding_length == std::optional<std::uint64_t>(4));
    BOOST_TEST(!header.model.block_count.has_value());
    BOOST_TEST_REQUIRE(header.tensors.size() == 2u);
    const auto& a = header.tensors[0];
    BOOST_TEST(a.name == "a");
    BOOST_TEST(a.type == dtype::f32);
    BOOST_TEST(a.shape == (std::vector<std::uint64_t>{2, 4}));  // GGUF dims [4, 2], innermost first
    BOOST_TEST(a.elements == 8u);
    BOOST_TEST(a.begin == 0u);
    BOOST_TEST(a.end == 32u);
    const auto& b = header.tensors[1];
    BOOST_TEST(b.type == dtype::q8_0);
    BOOST_TEST(b.shape == (std::vector<std::uint64_t>{1, 32}));
    BOOST_TEST(b.begin == 32u);
    BOOST_TEST(b.end == 66u);  // one 34-byte block
}

BOOST_AUTO_TEST_CASE(split_keys_are_read_and_absent_without_them) {
    gguf_spec spec = valid_spec();
    BOOST_TEST(!adaptk::parse_gguf(gguf_image(spec), file_name).model.split.has_value());
    spec.key_values.push_back(adaptk::test::gguf_kv_u16("split.no", 1));
    spec.key_values.push_back(adaptk::test::gguf_kv_u16("split.count", 3));
    spec.key_values.push_back(adaptk::test::gguf_kv_i32("split.tensors.count", 5));
    const auto split = adaptk::parse_gguf(gguf_image(spec), file_name).model.split;
    BOOST_TEST_REQUIRE(split.has_value());
    BOOST_TEST(split->number == 1u);
    BOOST_TEST(split->count == 3u);
    BOOST_TEST(split->tensors == 5u);
}

BOOST_AUTO_TEST_CASE(version_2_and_a_wider_alignment_are_read) {
    gguf_spec spec = valid_spec();
    spec.version = 2;
    spec.key_values[1] = adaptk::test::gguf_kv_u32("general.alignment", 64);
    spec.padding_alignment = 64;
    spec.tensors[1].offset = 64;
    spec.data.resize(98);
    const auto header = adaptk::parse_gguf(gguf_image(spec), file_name);
    BOOST_TEST(header.version == 2u);
    BOOST_TEST(header.alignment == 64u);
    BOOST_TEST(header.data_offset % 64 == 0u);
    BOOST_TEST(header.tensors[1].begin == 64u);
}

BOOST_AUTO_TEST_CASE(unused_key_values_of_every_type_are_skipped) {
    namespace t = adaptk::test;
    gguf_spec spec = valid_spec();
    const auto strings = byte_builder().text("<unk>").text("<s>").text("").bytes();
    const auto floats = byte_builder().scalar(1.5f).scalar(-2.0f).bytes();
    const auto inner = t::gguf_array_value(code::u16, 2, byte_builder().scalar<std::uint16_t>(1).scalar<std::uint16_t>(2).bytes());
    const auto inner_empty = t::gguf_array_value(code::string, 0, {});
    const auto nested = byte_builder().append(inner).append(inner_empty).bytes();
    const auto heads = byte_builder().u32(8).u32(4).bytes();
    spec.key_values.push_back(t::gguf_kv_array("tokenizer.ggml.tokens", code::string, 3, strings));
    spec.key_values.push_back(t::gguf_kv_array("tokenizer.ggml.scores", code::f32, 2, floats));
    spec.key_values.push_back(t::gguf_kv_array("nested", code::array, 2, nested));
    spec.key_values.push_back(t::gguf_kv_f32("llama.rope.freq_base", 10000.0f));
    spec.key_values.push_back(byte_builder().text("flag").u32(code::boolean).scalar<std::uint8_t>(1).bytes());
    spec.key_values.push_back(byte_builder().text("ratio").u32(code::f64).scalar(0.5).bytes());
    spec.key_values.push_back(t::gguf_kv_i32("signed", -7));
    // Some architectures list head counts per layer: left unread, not an error.
    spec.key_values.push_back(t::gguf_kv_array("llama.attention.head_count", code::u32, 2, heads));
    spec.key_values.push_back(t::gguf_kv_u64("llama.attention.head_count_kv", 4));
    spec.key_values.push_back(t::gguf_kv_u32("llama.block_count", 5));
    spec.key_values.push_back(t::gguf_kv_u32("llama.feed_forward_length", 172));
    const auto header = adaptk::parse_gguf(gguf_image(spec), file_name);
    BOOST_TEST(header.key_value_count == 14u);
    BOOST_TEST(!header.model.head_count.has_value());
    BOOST_TEST(header.model.head_count_kv == std::optional<std::uint64_t>(4));
    BOOST_TEST(header.model.block_count == std::optional<std::uint64_t>(5));
    BOOST_TEST(header.model.feed_forward_length == std::optional<std::uint64_t>(172));
    BOOST_TEST(header.tensors.size() == 2u);
}

BOOST_AUTO_TEST_CASE(alignment_defaults_to_32_and_tensors_may_be_empty) {
    gguf_spec spec = valid_spec();
    spec.key_values.erase(spec.key_values.begin() + 1);
    spec.tensors.push_back({"empty", {0, 3}, code::type_q8_0, 64});  // zero bytes inside the section: fine
    const auto header = adaptk::parse_gguf(gguf_image(spec), file_name);
    BOOST_TEST(header.alignment == adaptk::gguf_default_alignment);
    BOOST_TEST(header.tensors[2].elements == 0u);
    BOOST_TEST(header.tensors[2].bytes() == 0u);
}

// ---- real files -------------------------------------------------------------------------------

namespace {

fs::path data(const std::string& relative) { return adaptk::test::data_dir() / relative; }

const adaptk::tensor_info& find(const std::vector<adaptk::tensor_info>& tensors, const std::string& name) {
    for (const auto& tensor : tensors)
        if (tensor.name == name) return tensor;
    throw std::runtime_error("no tensor " + name);
}

}  // namespace

// The numbers of stories260K/PROVENANCE.md.
BOOST_AUTO_TEST_CASE(stories260K_header_matches_its_provenance) {
    const adaptk::tensor_file file(data("stories260K/stories260K.gguf"));
    BOOST_TEST((file.format() == adaptk::tensor_file::file_format::gguf));
    BOOST_TEST(file.file_offset(file.tensors().front()) == 14176u);
    BOOST_TEST(file.tensors().size() == 48u);
    BOOST_TEST_REQUIRE(file.gguf().has_value());
    const auto& model = *file.gguf();
    BOOST_TEST(model.architecture == "llama");
    BOOST_TEST(model.embedding_length == std::optional<std::uint64_t>(64));
    BOOST_TEST(model.block_count == std::optional<std::uint64_t>(5));
    BOOST_TEST(model.feed_forward_length == std::optional<std::uint64_t>(172));
    BOOST_TEST(model.head_count == std::optional<std::uint64_t>(8));
    BOOST_TEST(model.head_count_kv == std::optional<std::uint64_t>(4));
    std::uint64_t weights = 0;
    for (const auto& tensor : file.tensors()) {
        BOOST_TEST(tensor.type == dtype::f32);
        weights += tensor.elements;
    }
    BOOST_TEST(weights == 292800u);
    BOOST_TEST(find(file.tensors(), "blk.0.attn_k.weight").shape == (std::vector<std::uint64_t>{32, 64}));
    BOOST_TEST(find(file.tensors(), "blk.4.ffn_down.weight").shape == (std::vector<std::uint64_t>{64, 172}));
}

// Tensors the converter did not permute are byte-identical to the safetensors copies.
BOOST_AUTO_TEST_CASE(stories260K_tensors_equal_the_safetensors_copy) {
    const adaptk::tensor_file gguf(data("stories260K/stories260K.gguf"));
    const adaptk::tensor_file st(data("stories260K/hf/f32/model.safetensors"));
    const std::vector<std::pair<std::string, std::string>> pairs{
        {"token_embd.weight", "model.embed_tokens.weight"},
        {"output.weight", "lm_head.weight"},
        {"blk.2.attn_v.weight", "model.layers.2.self_attn.v_proj.weight"},
        {"blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight"},
        {"blk.4.ffn_gate.weight", "model.layers.4.mlp.gate_proj.weight"},
    };
    for (const auto& [gguf_name, st_name] : pairs) {
        const auto& g = find(gguf.tensors(), gguf_name);
        const auto& s = find(st.tensors(), st_name);
        BOOST_TEST(g.shape == s.shape, gguf_name);
        BOOST_TEST((adaptk::test::stored_bytes(gguf, g) == adaptk::test::stored_bytes(st, s)), gguf_name);
    }
}

// F16 matrices, F32 norms; hf/f16 holds the same F16 bits.
BOOST_AUTO_TEST_CASE(llama_2_tiny_random_f16_equals_the_safetensors_copy) {
    const adaptk::tensor_file gguf(data("llama-2-tiny-random/llama-2-tiny-random.gguf"));
    const adaptk::tensor_file st(data("llama-2-tiny-random/hf/f16/model.safetensors"));
    BOOST_TEST(gguf.tensors().size() == 12u);
    BOOST_TEST(gguf.gguf()->embedding_length == std::optional<std::uint64_t>(8));
    const auto& g = find(gguf.tensors(), "output.weight");
    const auto& s = find(st.tensors(), "lm_head.weight");
    BOOST_TEST(g.type == dtype::f16);
    BOOST_TEST(g.shape == (std::vector<std::uint64_t>{32000, 8}));
    BOOST_TEST((adaptk::test::stored_bytes(gguf, g) == adaptk::test::stored_bytes(st, s)));
    BOOST_TEST(find(gguf.tensors(), "output_norm.weight").type == dtype::f32);
}

// ---- the catalogue over GGUF ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(checkpoint_takes_the_config_from_the_key_values) {
    const adaptk::checkpoint model(data("stories260K/stories260K.gguf"));
    BOOST_TEST(model.config_path() == data("stories260K/stories260K.gguf"));
    BOOST_TEST(model.config().num_layers == std::optional<std::uint64_t>(5));
    BOOST_TEST(model.config().intermediate_size == std::optional<std::uint64_t>(172));
    BOOST_TEST(model.config().num_key_value_heads == std::optional<std::uint64_t>(4));
    std::vector<std::string> notes;
    BOOST_TEST(model.hidden_size(std::nullopt, notes) == 64u);
    BOOST_TEST(notes.empty());
    const auto matrices = model.matrices(64, notes);
    // output.weight holds token_embd's bytes (llama2.c shares them): counted once, with a note.
    BOOST_TEST(matrices.size() == 36u);
    BOOST_TEST_REQUIRE(notes.size() == 1u);
    BOOST_TEST(notes[0].find("output.weight") != std::string::npos, notes[0]);
    BOOST_TEST(matrices.front().name == "blk.0.attn_q.weight");
    BOOST_TEST(matrices.front().kind.layer == std::optional<int>(0));
    BOOST_TEST(matrices.back().name == "token_embd.weight");
}

// Types without a decoder are listed by inspect and left out with one note per
// dtype and its count; a head left out that way is not "tied" or "absent".
BOOST_AUTO_TEST_CASE(undecodable_types_are_counted_in_one_note_and_a_skipped_head_is_not_called_tied) {
    constexpr std::uint32_t iq2_xxs = 16, tq1_0 = 34;  // 256-element blocks of 66 and 54 bytes
    adaptk::test::temp_dir dir;
    gguf_spec spec;
    spec.key_values = {adaptk::test::gguf_kv_string("general.architecture", "llama"),
                       adaptk::test::gguf_kv_u32("llama.embedding_length", 32)};
    spec.tensors = {{"token_embd.weight", {32, 8}, code::type_f32, 0},
                    {"output.weight", {256, 32}, iq2_xxs, 1024},
                    {"blk.0.attn_q.weight", {256, 32}, iq2_xxs, 3136},
                    {"blk.0.attn_k.weight", {256, 32}, tq1_0, 5248},
                    {"blk.0.attn_v.weight", {256, 32}, code::type_q4_k, 6976}};  // decoded: 32 blocks of 144 bytes
    spec.data.resize(6976 + 32 * 144);
    adaptk::test::write_bytes(dir / "model.gguf", gguf_image(spec));
    const adaptk::checkpoint model(dir / "model.gguf");
    BOOST_TEST(adaptk::dtype_name(model.info(model.tensors()[1]).type) == "IQ2_XXS");
    BOOST_TEST(adaptk::dtype_name(model.info(model.tensors()[3]).type) == "TQ1_0");
    std::vector<std::string> notes;
    const auto matrices = model.matrices(32, notes);
    BOOST_TEST_REQUIRE(matrices.size() == 2u);
    BOOST_TEST(matrices[0].type == dtype::q4_k);
    BOOST_TEST(matrices[1].name == "token_embd.weight");
    BOOST_TEST_REQUIRE(notes.size() == 2u);
    BOOST_TEST(notes[0].find("model.gguf: dtype IQ2_XXS is not analysed: 2 tensors left out ('output.weight', "
                             "'blk.0.attn_q.weight')") != std::string::npos,
               notes[0]);
    BOOST_TEST(notes[1].find("dtype TQ1_0 is not analysed: 1 tensor left out ('blk.0.attn_k.weight')") !=
                   std::string::npos,
               notes[1]);
    for (const auto& note : notes) BOOST_TEST(note.find("tied") == std::string::npos, note);
}

BOOST_AUTO_TEST_CASE(a_gguf_named_file_without_the_magic_is_a_gguf_error) {
    adaptk::test::temp_dir dir;
    adaptk::test::write_text(dir / "model.gguf", "version https://git-lfs.github.com/spec/v1\n");
    BOOST_CHECK_EXCEPTION(adaptk::checkpoint{dir / "model.gguf"}, format_error, [&](const format_error& e) {
        return std::string(e.what()).find("bad magic") != std::string::npos;
    });
}

// ---- split GGUF (llama.cpp's gguf-split layout, generated here) -------------------------------

namespace {

using adaptk::test::gguf_model_tensor;
using key_values = std::vector<std::vector<std::byte>>;

struct split_part {
    std::string file;
    std::vector<gguf_model_tensor> tensors;
    key_values keys;
};

// A llama-shaped model, d = 16, two layers, six F32 tensors of seeded values.
std::vector<gguf_model_tensor> split_model_tensors() {
    std::mt19937 random(14);
    std::normal_distribution<float> normal;
    auto tensor = [&](std::string name, std::uint64_t rows, std::uint64_t cols) {
        gguf_model_tensor t{std::move(name), {rows, cols}, std::vector<float>(rows * cols), code::type_f32};
        for (auto& v : t.values) v = normal(random);
        return t;
    };
    return {tensor("token_embd.weight", 40, 16),   tensor("blk.0.attn_q.weight", 16, 16),
            tensor("blk.0.ffn_up.weight", 24, 16), tensor("blk.1.attn_q.weight", 16, 16),
            tensor("blk.1.ffn_up.weight", 24, 16), tensor("output.weight", 40, 16)};
}

key_values model_keys() {
    return {adaptk::test::gguf_kv_string("general.architecture", "llama"),
            adaptk::test::gguf_kv_u32("llama.embedding_length", 16),
            adaptk::test::gguf_kv_u32("llama.block_count", 2)};
}

key_values split_keys(std::uint16_t number, std::uint16_t count, std::int32_t tensors) {
    return {adaptk::test::gguf_kv_u16("split.no", number), adaptk::test::gguf_kv_u16("split.count", count),
            adaptk::test::gguf_kv_i32("split.tensors.count", tensors)};
}

// As gguf-split writes them: the first part carries the model's key-values,
// every part the split keys, two tensors each.
std::vector<split_part> split_parts() {
    const auto tensors = split_model_tensors();
    std::vector<split_part> parts;
    for (std::uint16_t i = 0; i < 3; ++i) {
        split_part part{"m-0000" + std::to_string(i + 1) + "-of-00003.gguf",
                        {tensors.begin() + 2 * i, tensors.begin() + 2 * i + 2}, i == 0 ? model_keys() : key_values{}};
        const auto keys = split_keys(i, 3, 6);
        part.keys.insert(part.keys.end(), keys.begin(), keys.end());
        parts.push_back(std::move(part));
    }
    return parts;
}

void write_parts(const fs::path& dir, const std::vector<split_part>& parts) {
    for (const auto& part : parts)
        adaptk::test::write_bytes(dir / part.file, adaptk::test::gguf_model_image(part.tensors, part.keys));
}

adaptk::table profile_of(const adaptk::checkpoint& model) {
    std::vector<std::string> notes;
    const auto d = model.hidden_size(std::nullopt, notes);
    return adaptk::profile_table(adaptk::analyse(model.matrices(d, notes), d, {}), adaptk::default_thresholds);
}

struct split_defect {
    std::string defect;
    std::function<void(std::vector<split_part>&)> change;
    std::string opened;  ///< the file the checkpoint is opened at
    std::string named;   ///< the file the message starts with
    std::string message;
};

std::ostream& operator<<(std::ostream& out, const split_defect& row) { return out << row.defect; }

std::vector<split_defect> split_catalogue() {
    const std::string first = "m-00001-of-00003.gguf", second = "m-00002-of-00003.gguf", third = "m-00003-of-00003.gguf";
    return {
        {"missing part", [](auto& parts) { parts.pop_back(); }, first, third,
         "part 3 of 3 of the split GGUF "},
        {"part without split keys", [](auto& parts) { parts[1].keys.clear(); }, first, second,
         "has no split keys (split.count), but it is named as part 2 of 3"},
        {"split.count disagrees", [](auto& parts) { parts[2].keys = split_keys(2, 4, 6); }, first, third,
         "split.count 4 disagrees with the 3 of "},
        {"split.no out of place", [](auto& parts) { parts[1].keys = split_keys(2, 3, 6); }, first, second,
         "split.no 2 says part 3, but it is named as part 2 of 3"},
        {"split.tensors.count disagrees", [](auto& parts) { parts[1].keys = split_keys(1, 3, 7); }, first, second,
         "split.tensors.count 7 disagrees with the 6 of "},
        {"architecture disagrees",
         [](auto& parts) { parts[2].keys.push_back(adaptk::test::gguf_kv_string("general.architecture", "qwen2")); },
         first, third, "architecture 'qwen2' disagrees with the 'llama' of "},
        {"hidden size disagrees",
         [](auto& parts) {
             parts[1].keys.push_back(adaptk::test::gguf_kv_string("general.architecture", "llama"));
             parts[1].keys.push_back(adaptk::test::gguf_kv_u32("llama.embedding_length", 32));
         },
         first, second, "llama.embedding_length 32 disagrees with the 16 of "},
        {"a tensor in two parts", [](auto& parts) { parts[2].tensors[0].name = "blk.0.attn_q.weight"; }, first, third,
         "tensor 'blk.0.attn_q.weight': also stored in "},
        {"fewer tensors than split.tensors.count", [](auto& parts) { parts[2].tensors.pop_back(); }, first, first,
         "the 3 parts of the split GGUF hold 5 tensors together, but split.tensors.count is 6"},
        {"name without the part numbers", [](auto& parts) { parts[0].file = "m.gguf"; }, "m.gguf", "m.gguf",
         "is part 1 of 3 of a split GGUF (split.no, split.count), but its name does not end in -NNNNN-of-NNNNN.gguf"},
        {"name and keys disagree", [](auto& parts) { std::swap(parts[0].file, parts[1].file); }, second, second,
         "its name says part 2 of 3 but its keys say part 1 of 3 (split.no, split.count)"},
    };
}

}  // namespace

BOOST_AUTO_TEST_CASE(split_gguf_opened_at_any_part_equals_the_unsplit_file) {
    adaptk::test::temp_dir dir;
    const auto tensors = split_model_tensors();
    adaptk::test::write_bytes(dir / "whole.gguf", adaptk::test::gguf_model_image(tensors, model_keys()));
    write_parts(dir.path(), split_parts());
    const adaptk::checkpoint whole(dir / "whole.gguf");
    const auto expected = profile_of(whole);
    BOOST_TEST_REQUIRE(expected.rows.size() == 4u);  // embed, head, q, up
    for (const std::string opened : {"m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"}) {
        const adaptk::checkpoint split(dir / opened);
        BOOST_TEST_REQUIRE(split.files().size() == 3u);
        for (std::size_t i = 0; i < 3; ++i)
            BOOST_TEST(split.files()[i].path() == dir / ("m-0000" + std::to_string(i + 1) + "-of-00003.gguf"));
        BOOST_TEST(split.config_path() == dir / "m-00001-of-00003.gguf");
        BOOST_TEST(split.config().num_layers == std::optional<std::uint64_t>(2));
        BOOST_TEST_REQUIRE(split.tensors().size() == whole.tensors().size());
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            const auto& a = split.info(split.tensors()[i]);
            const auto& b = whole.info(whole.tensors()[i]);
            BOOST_TEST(a.name == b.name);
            BOOST_TEST(a.shape == b.shape);
            const auto bytes_a = adaptk::test::stored_bytes(split.files()[split.tensors()[i].file], a);
            const auto bytes_b = adaptk::test::stored_bytes(whole.files()[0], b);
            BOOST_TEST_REQUIRE(bytes_a.size() == bytes_b.size());
            BOOST_TEST(std::memcmp(bytes_a.data(), bytes_b.data(), bytes_a.size()) == 0, a.name);
        }
        const auto table = profile_of(split);
        BOOST_TEST(table.columns == expected.columns);
        BOOST_TEST((table.rows == expected.rows), opened);
    }
}

BOOST_AUTO_TEST_CASE(a_one_part_split_file_is_an_ordinary_file) {
    adaptk::test::temp_dir dir;
    auto keys = model_keys();
    const auto split = split_keys(0, 1, 6);
    keys.insert(keys.end(), split.begin(), split.end());
    adaptk::test::write_bytes(dir / "single.gguf", adaptk::test::gguf_model_image(split_model_tensors(), keys));
    const adaptk::checkpoint model(dir / "single.gguf");
    BOOST_TEST(model.files().size() == 1u);
    BOOST_TEST(model.tensors().size() == 6u);
}

BOOST_DATA_TEST_CASE(malformed_split_gguf_is_refused_naming_the_part, bdata::make(split_catalogue()), row) {
    adaptk::test::temp_dir dir;
    auto parts = split_parts();
    row.change(parts);
    write_parts(dir.path(), parts);
    bool thrown = false;
    try {
        adaptk::checkpoint model(dir / row.opened);
    } catch (const format_error& e) {
        thrown = true;
        const std::string what = e.what();
        BOOST_TEST(what.rfind((dir / row.named).string() + ": ", 0) == 0u, "what() = " << what);
        BOOST_TEST(what.find(row.message) != std::string::npos, "what() = " << what);
        BOOST_TEST(what.find('\n') == std::string::npos);
    }
    BOOST_TEST(thrown, "accepted a split GGUF with defect: " << row.defect);
}
