#define BOOST_TEST_MODULE gguf
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/gguf.hpp"
#include "adaptk/safetensors.hpp"
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
