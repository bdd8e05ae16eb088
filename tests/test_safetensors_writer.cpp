#define BOOST_TEST_MODULE safetensors_writer
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "adaptk/safetensors.hpp"
#include "adaptk/safetensors_writer.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using adaptk::dtype;
using adaptk::safetensors_writer;
using adaptk::test::temp_dir;

namespace {

template <class T>
std::vector<std::byte> raw(const std::vector<T>& values) {
    std::vector<std::byte> bytes(values.size() * sizeof(T));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
}

std::vector<double> decoded(const std::vector<std::byte>& file, const adaptk::safetensors_header& header,
                            const adaptk::tensor_info& tensor) {
    std::vector<double> values(tensor.elements);
    const std::size_t size = adaptk::dtype_bytes(tensor.type);
    for (std::size_t i = 0; i < values.size(); ++i)
        values[i] = adaptk::test::reference_value(tensor.type, file.data() + header.data_offset + tensor.begin + i * size);
    return values;
}

// A header whose unpadded JSON is not a multiple of 8 bytes long after the
// 8-byte prefix, so alignment 8 has something to pad.
void write_small(const fs::path& path, std::size_t alignment) {
    safetensors_writer writer(path, alignment);
    writer.declare("abc", dtype::f32, {3});
    writer.write_values(std::vector<float>{1, 2, 3});
    writer.finish();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors_writer_test)

BOOST_AUTO_TEST_CASE(round_trips_names_dtypes_shapes_and_values) {
    temp_dir dir;
    const auto path = dir / "w.safetensors";
    const std::vector<float> f32{1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, -7.0f};
    const std::vector<float> f16{0.5f, -65504.0f, 6.103515625e-05f, 1024.0f};  // all exact in binary16
    const std::vector<float> bf16{1.0f, -3.0f, 0.375f, 65536.0f, -0.5f, 2.0f};  // all exact in bfloat16
    const std::vector<double> f64{0.1, -1e300, 2.0};
    const std::vector<std::int32_t> i32{-1, 7, 1 << 30};
    {
        safetensors_writer writer(path);
        writer.metadata("format", "pt");
        writer.metadata("note", "round trip");
        writer.declare("model.layers.0.self_attn.q_proj.weight", dtype::f32, {2, 3});
        writer.declare("half", dtype::f16, {4});
        writer.declare("brain", dtype::bf16, {3, 2});
        writer.declare("double", dtype::f64, {3});
        writer.declare("ints", dtype::i32, {3});
        writer.declare("scalar", dtype::i64, {});
        writer.declare("empty", dtype::f32, {0, 5});
        writer.write_values(std::span<const float>(f32));
        writer.write_values(std::span<const float>(f16));
        writer.write_values(std::span<const float>(bf16));
        writer.write_values(std::span<const double>(f64));
        writer.write(raw(i32));
        writer.write(raw(std::vector<std::int64_t>{42}));
        writer.finish();
    }
    const auto file = adaptk::test::read_bytes(path);
    const auto header = adaptk::parse_safetensors(file, path.string());
    BOOST_TEST_REQUIRE(header.tensors.size() == 7u);
    const std::vector<std::string> names{"model.layers.0.self_attn.q_proj.weight", "half", "brain", "double", "ints",
                                         "scalar", "empty"};
    const std::vector<dtype> types{dtype::f32, dtype::f16, dtype::bf16, dtype::f64, dtype::i32, dtype::i64, dtype::f32};
    const std::vector<std::vector<std::uint64_t>> shapes{{2, 3}, {4}, {3, 2}, {3}, {3}, {}, {0, 5}};
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto& t = header.tensors[i];
        BOOST_TEST_CONTEXT(names[i]) {
            BOOST_TEST(t.name == names[i]);
            BOOST_TEST((t.type == types[i]));
            BOOST_TEST(t.shape == shapes[i], boost::test_tools::per_element());
            BOOST_TEST(t.begin == offset);  // laid out in declaration order
            offset = t.end;
        }
    }
    BOOST_TEST(offset == header.data_bytes);

    const auto widen = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    BOOST_TEST(decoded(file, header, header.tensors[0]) == widen(f32), boost::test_tools::per_element());
    BOOST_TEST(decoded(file, header, header.tensors[1]) == widen(f16), boost::test_tools::per_element());
    BOOST_TEST(decoded(file, header, header.tensors[2]) == widen(bf16), boost::test_tools::per_element());
    BOOST_TEST(decoded(file, header, header.tensors[3]) == f64, boost::test_tools::per_element());
    std::vector<std::int32_t> ints(3);
    std::memcpy(ints.data(), file.data() + header.data_offset + header.tensors[4].begin, 12);
    BOOST_TEST(ints == i32, boost::test_tools::per_element());
    std::int64_t scalar = 0;
    std::memcpy(&scalar, file.data() + header.data_offset + header.tensors[5].begin, 8);
    BOOST_TEST(scalar == 42);

    BOOST_TEST_REQUIRE(header.metadata.size() == 2u);
    BOOST_TEST(header.metadata[0].first == "format");
    BOOST_TEST(header.metadata[0].second == "pt");
    BOOST_TEST(header.metadata[1].first == "note");
    BOOST_TEST(header.metadata[1].second == "round trip");
}

BOOST_AUTO_TEST_CASE(f16_and_bf16_values_are_rounded_to_nearest_even) {
    temp_dir dir;
    const auto path = dir / "r.safetensors";
    const std::vector<float> values{1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 0.1f};  // ties in binary16, then 0.1
    {
        safetensors_writer writer(path);
        writer.declare("h", dtype::f16, {3});
        writer.declare("b", dtype::bf16, {3});
        writer.write_values(std::span<const float>(values));
        writer.write_values(std::span<const float>(values));
        writer.finish();
    }
    const auto file = adaptk::test::read_bytes(path);
    const auto header = adaptk::parse_safetensors(file, path.string());
    std::vector<std::uint16_t> h(3), b(3);
    std::memcpy(h.data(), file.data() + header.data_offset, 6);
    std::memcpy(b.data(), file.data() + header.data_offset + 6, 6);
    BOOST_TEST(h[0] == 0x3c00u);  // 1 + 2^-11 ties to even 1.0
    BOOST_TEST(h[1] == 0x3c02u);  // 1 + 3·2^-11 ties to even 1 + 2^-9
    BOOST_TEST(h[2] == 0x2e66u);  // 0.1 rounds to 0x2e66
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(b[i] == adaptk::float_to_bf16(values[i]));
}

BOOST_AUTO_TEST_CASE(alignment_8_pads_the_header_with_spaces) {
    temp_dir dir;
    write_small(dir / "a8.safetensors", 8);
    const auto file = adaptk::test::read_bytes(dir / "a8.safetensors");
    const auto header = adaptk::parse_safetensors(file, "a8");
    BOOST_TEST(header.data_offset % 8 == 0u);
    const std::string text(reinterpret_cast<const char*>(file.data()) + 8, header.header_bytes);
    const auto close = text.find_last_of('}');
    BOOST_TEST(close < text.size() - 1);  // padding present
    BOOST_TEST(text.find_first_not_of(' ', close + 1) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(alignment_1_writes_the_header_unpadded) {
    temp_dir dir;
    write_small(dir / "a1.safetensors", 1);
    const auto file = adaptk::test::read_bytes(dir / "a1.safetensors");
    const auto header = adaptk::parse_safetensors(file, "a1");
    const std::string text(reinterpret_cast<const char*>(file.data()) + 8, header.header_bytes);
    BOOST_TEST(text.back() == '}');
    BOOST_TEST_REQUIRE(header.data_offset % 8 != 0u);  // else the case above would prove nothing
    BOOST_TEST(header.tensors.size() == 1u);
}

BOOST_DATA_TEST_CASE(data_offset_is_a_multiple_of_the_alignment, bdata::make({1, 2, 8, 16, 64, 4096}), alignment) {
    temp_dir dir;
    write_small(dir / "a.safetensors", static_cast<std::size_t>(alignment));
    const auto file = adaptk::test::read_bytes(dir / "a.safetensors");
    const auto header = adaptk::parse_safetensors(file, "a");
    BOOST_TEST(header.data_offset % static_cast<std::uint64_t>(alignment) == 0u);
    BOOST_TEST(header.data_bytes == 12u);
}

BOOST_AUTO_TEST_CASE(file_appears_only_after_finish) {
    temp_dir dir;
    const auto path = dir / "late.safetensors";
    const fs::path temp = path.string() + "." + std::to_string(::getpid()) + ".tmp";
    safetensors_writer writer(path);
    writer.declare("w", dtype::f32, {2});
    BOOST_TEST(!fs::exists(path));
    writer.write_values(std::vector<float>{1, 2});
    BOOST_TEST(!fs::exists(path));
    BOOST_TEST(fs::exists(temp));
    writer.finish();
    BOOST_TEST(fs::exists(path));
    BOOST_TEST(!fs::exists(temp));
    BOOST_TEST(fs::file_size(path) == adaptk::parse_safetensors(adaptk::test::read_bytes(path), "late").data_offset + 8);
}

BOOST_AUTO_TEST_CASE(unfinished_writer_removes_its_temporary) {
    temp_dir dir;
    const auto path = dir / "never.safetensors";
    const fs::path temp = path.string() + "." + std::to_string(::getpid()) + ".tmp";
    {
        safetensors_writer writer(path);
        writer.declare("w", dtype::f32, {4});
        writer.write_values(std::vector<float>{1, 2});  // half the tensor
        BOOST_TEST_REQUIRE(fs::exists(temp));
    }
    BOOST_TEST(!fs::exists(temp));
    BOOST_TEST(!fs::exists(path));
}

BOOST_AUTO_TEST_CASE(finish_replaces_an_existing_file_whole) {
    temp_dir dir;
    const auto path = dir / "old.safetensors";
    adaptk::test::write_text(path, "old contents");
    write_small(path, 8);
    BOOST_TEST(adaptk::parse_safetensors(adaptk::test::read_bytes(path), "old").tensors.size() == 1u);
}

BOOST_AUTO_TEST_CASE(writing_too_many_bytes_throws) {
    temp_dir dir;
    safetensors_writer writer(dir / "w.safetensors");
    writer.declare("w", dtype::f32, {2});
    BOOST_CHECK_THROW(writer.write(std::vector<std::byte>(12)), std::logic_error);
    writer.write(std::vector<std::byte>(8));
    BOOST_CHECK_THROW(writer.write(std::vector<std::byte>(1)), std::logic_error);
    BOOST_CHECK_THROW(writer.write_values(std::vector<float>{1}), std::logic_error);
    BOOST_CHECK_NO_THROW(writer.finish());
}

BOOST_AUTO_TEST_CASE(write_crossing_a_tensor_end_throws) {
    temp_dir dir;
    safetensors_writer writer(dir / "w.safetensors");
    writer.declare("a", dtype::f32, {1});
    writer.declare("b", dtype::f32, {1});
    BOOST_CHECK_EXCEPTION(writer.write(std::vector<std::byte>(8)), std::logic_error, [](const std::logic_error& e) {
        return std::string(e.what()).find("tensor 'a'") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(finish_with_an_incomplete_tensor_throws_and_leaves_no_file) {
    temp_dir dir;
    const auto path = dir / "short.safetensors";
    {
        safetensors_writer writer(path);
        writer.declare("a", dtype::f32, {2});
        writer.declare("b", dtype::f32, {2});
        writer.write_values(std::vector<float>{1, 2});
        BOOST_CHECK_EXCEPTION(writer.finish(), std::logic_error, [](const std::logic_error& e) {
            return std::string(e.what()).find("tensor 'b' is incomplete") != std::string::npos;
        });
    }
    BOOST_TEST(!fs::exists(path));
    BOOST_TEST(!fs::exists(path.string() + "." + std::to_string(::getpid()) + ".tmp"));
}

BOOST_AUTO_TEST_CASE(declare_after_data_throws) {
    temp_dir dir;
    safetensors_writer writer(dir / "w.safetensors");
    writer.declare("a", dtype::f32, {1});
    writer.write_values(std::vector<float>{1});
    BOOST_CHECK_THROW(writer.declare("b", dtype::f32, {1}), std::logic_error);
    BOOST_CHECK_THROW(writer.metadata("k", "v"), std::logic_error);
}

BOOST_AUTO_TEST_CASE(write_values_into_an_integer_tensor_throws) {
    temp_dir dir;
    safetensors_writer writer(dir / "w.safetensors");
    writer.declare("ints", dtype::i32, {2});
    BOOST_CHECK_THROW(writer.write_values(std::vector<float>{1, 2}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(zero_alignment_is_rejected) {
    temp_dir dir;
    BOOST_CHECK_THROW(safetensors_writer(dir / "w.safetensors", 0), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(duplicate_tensor_names_are_rejected) {
    // A JSON object holds one entry per name: a second "w" would silently
    // replace the first and leave a file the reader refuses.
    temp_dir dir;
    safetensors_writer writer(dir / "w.safetensors");
    writer.declare("w", dtype::f32, {1});
    BOOST_CHECK_THROW(writer.declare("w", dtype::f32, {1}), std::invalid_argument);
    BOOST_CHECK_THROW(writer.declare("__metadata__", dtype::f32, {1}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(shape_whose_byte_count_overflows_is_rejected) {
    temp_dir dir;
    safetensors_writer writer(dir / "w.safetensors");
    BOOST_CHECK_THROW(writer.declare("w", dtype::f32, {4294967296, 4294967296, 16}), std::invalid_argument);
    BOOST_CHECK_THROW(writer.declare("v", dtype::f32, {4611686018427387904}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(file_without_tensors_is_valid) {
    temp_dir dir;
    {
        safetensors_writer writer(dir / "empty.safetensors");
        writer.finish();
    }
    const auto header = adaptk::parse_safetensors(adaptk::test::read_bytes(dir / "empty.safetensors"), "empty");
    BOOST_TEST(header.tensors.empty());
    BOOST_TEST(header.data_bytes == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
