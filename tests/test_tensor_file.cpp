#define BOOST_TEST_MODULE tensor_file
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "adaptk/error.hpp"
#include "adaptk/safetensors.hpp"
#include "adaptk/tensor_file.hpp"
#include "gguf_writer.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using adaptk::tensor_file;

BOOST_AUTO_TEST_SUITE(tensor_file_test)

BOOST_AUTO_TEST_CASE(safetensors_files_keep_their_catalogue_and_offsets) {
    adaptk::test::temp_dir dir;
    const std::string header = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
    std::vector<std::byte> data(24);
    const float values[6] = {1, 2, 3, 4, 5, 6};
    std::memcpy(data.data(), values, sizeof values);
    adaptk::test::write_bytes(dir / "m.safetensors", adaptk::test::safetensors_image(header, data));
    const tensor_file file(dir / "m.safetensors");
    BOOST_TEST((file.format() == tensor_file::file_format::safetensors));
    BOOST_TEST(!file.gguf().has_value());
    BOOST_TEST_REQUIRE(file.tensors().size() == 1u);
    const auto& w = file.tensors()[0];
    BOOST_TEST(w.shape == (std::vector<std::uint64_t>{2, 3}));
    BOOST_TEST(file.file_offset(w) == 8 + header.size());
    BOOST_TEST(std::memcmp(adaptk::test::stored_bytes(file, w).data(), values, sizeof values) == 0);
}

// The magic decides, whatever the name; the bytes are where the header says.
BOOST_AUTO_TEST_CASE(gguf_is_recognised_by_its_magic) {
    adaptk::test::temp_dir dir;
    const std::vector<adaptk::test::gguf_model_tensor> tensors{
        {"a", {2, 2}, {1, 2, 3, 4}}, {"b", {3}, {5, 6, 7}}};
    adaptk::test::write_bytes(dir / "weights.bin", adaptk::test::gguf_model_image(tensors, {}));
    const tensor_file file(dir / "weights.bin");
    BOOST_TEST((file.format() == tensor_file::file_format::gguf));
    BOOST_TEST_REQUIRE(file.gguf().has_value());
    BOOST_TEST(file.gguf()->architecture.empty());
    BOOST_TEST_REQUIRE(file.tensors().size() == 2u);
    const auto& b = file.tensors()[1];
    BOOST_TEST(file.file_offset(b) % 32 == 0u);
    float read[3];
    std::memcpy(read, adaptk::test::stored_bytes(file, b).data(), sizeof read);
    BOOST_TEST(read[0] == 5.0f);
    BOOST_TEST(read[2] == 7.0f);
}

BOOST_AUTO_TEST_CASE(a_safetensors_file_named_gguf_is_reported_as_a_bad_gguf) {
    adaptk::test::temp_dir dir;
    adaptk::test::write_bytes(dir / "m.gguf", adaptk::test::safetensors_image("{}"));
    BOOST_CHECK_EXCEPTION(tensor_file{dir / "m.gguf"}, adaptk::format_error, [](const adaptk::format_error& e) {
        return e.defect() == "bad magic: does not start with \"GGUF\"";
    });
}

BOOST_AUTO_TEST_CASE(shape_string_joins_extents_with_x) {
    BOOST_TEST(adaptk::shape_string({2048, 5632}) == "2048x5632");
    BOOST_TEST(adaptk::shape_string({7}) == "7");
    BOOST_TEST(adaptk::shape_string({}) == "");
}

BOOST_AUTO_TEST_SUITE_END()
