#define BOOST_TEST_MODULE safetensors
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <ostream>
#include <string>
#include <system_error>
#include <vector>

#include "adaptk/error.hpp"
#include "adaptk/safetensors.hpp"
#include "adaptk/tensor_file.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using adaptk::dtype;
using adaptk::format_error;
using adaptk::test::safetensors_image;

namespace {

const std::string file_name = "bad.safetensors";

// One row of the malformed-file catalogue: a hand-made image with one defect
// and what the user must be told about it.
struct defect_row {
    std::string defect;
    std::vector<std::byte> image;
    std::string message;  ///< what() must contain it (after "<file>: [tensor '<t>': ]")
    std::string tensor;   ///< format_error::tensor()
    std::optional<std::uint64_t> byte_offset;  ///< checked when set
};

std::ostream& operator<<(std::ostream& out, const defect_row& row) { return out << row.defect; }

std::string entry(const std::string& name, const std::string& type, const std::string& shape, std::uint64_t begin,
                  std::uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + type + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(begin) + "," + std::to_string(end) + "]}";
}

std::vector<std::byte> length_prefix_only(std::uint64_t length, std::size_t extra_bytes) {
    std::vector<std::byte> image(8 + extra_bytes, std::byte{' '});
    std::memcpy(image.data(), &length, sizeof length);
    return image;
}

// File offset of data-section byte `at` for a header of `header` text.
std::uint64_t data_at(const std::string& header, std::uint64_t at) { return 8 + header.size() + at; }

std::vector<defect_row> catalogue() {
    std::vector<defect_row> rows;
    auto add = [&](std::string defect, std::vector<std::byte> image, std::string message, std::string tensor = {},
                   std::optional<std::uint64_t> offset = std::nullopt) {
        rows.push_back({std::move(defect), std::move(image), std::move(message), std::move(tensor), offset});
    };
    auto json_row = [&](std::string defect, const std::string& header, std::size_t data_bytes, std::string message,
                        std::string tensor = {}, std::optional<std::uint64_t> offset = std::nullopt) {
        add(std::move(defect), safetensors_image(header, data_bytes), std::move(message), std::move(tensor), offset);
    };

    add("empty file", {}, "empty file: no 8-byte header length");
    add("7-byte file", std::vector<std::byte>(7, std::byte{1}),
        "file is 7 bytes, too short for the 8-byte header length");
    add("header length 0", length_prefix_only(0, 16), "header length is 0", {}, 0);
    add("header length over the limit", length_prefix_only(100'000'001, 16),
        "header length 100000001 exceeds the 100000000-byte limit", {}, 0);
    add("header length far over the limit", length_prefix_only(~std::uint64_t{0}, 16),
        "header length 18446744073709551615 exceeds the 100000000-byte limit", {}, 0);
    add("header length beyond the file", length_prefix_only(100, 10),
        "header length 100 runs past the end of the 18-byte file", {}, 0);
    add("header length one past the file", length_prefix_only(11, 10),
        "header length 11 runs past the end of the 18-byte file", {}, 0);
    // '{' 'n' 'o': the lexer gives up at the 'o', header byte 2 = file byte 10.
    json_row("header not JSON", "{not json}", 0, "header is not valid JSON near byte 10", {}, 10);
    json_row("header JSON cut short", "{\"a\":{}", 0, "header is not valid JSON near byte 15", {}, 15);
    json_row("header JSON followed by junk", "{}x", 0, "header is not valid JSON near byte 10", {}, 10);
    // The 0xff sits at header byte 3 = file byte 11.
    json_row("header not UTF-8", "{\"a\xff\":{}}", 0, "header is not valid UTF-8 near byte 11", {}, 11);
    json_row("header JSON number out of range", "{\"__metadata__\":{\"n\":1e999}}", 0, "header is not valid JSON");
    json_row("header JSON an array", "[1,2]", 0, "header is not a JSON object", {}, 8);
    json_row("header JSON a string", "\"weights\"", 0, "header is not a JSON object", {}, 8);
    json_row("duplicate tensor names",
             "{" + entry("w", "F32", "[1]", 0, 4) + "," + entry("w", "F32", "[1]", 4, 8) + "}", 8,
             "header has duplicate key 'w'");
    json_row("duplicate keys inside an entry",
             "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "header has duplicate key 'dtype'");
    json_row("JSON nested too deep",
             "{\"__metadata__\":{\"x\":" + std::string(30, '[') + std::string(30, ']') + "}}", 0,
             "header JSON nests deeper than 8 levels");
    json_row("entry not an object", "{\"w\":3}", 0, "header entry is not a JSON object", "w");
    json_row("entry without data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
             "header entry has no 'data_offsets'", "w");
    json_row("entry without dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "header entry has no 'dtype'", "w");
    json_row("unknown dtype", "{" + entry("w", "F128", "[1]", 0, 16) + "}", 16, "unknown dtype 'F128'", "w");
    json_row("dtype not a string", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "'dtype' is not a string", "w");
    const std::string not_shape = "'shape' is not a list of non-negative integers";
    json_row("shape not a list", "{" + entry("w", "F32", "4", 0, 16) + "}", 16, not_shape, "w");
    json_row("shape negative", "{" + entry("w", "F32", "[-4]", 0, 16) + "}", 16, not_shape, "w");
    json_row("shape non-integer", "{" + entry("w", "F32", "[\"4\"]", 0, 16) + "}", 16, not_shape, "w");
    json_row("shape float", "{" + entry("w", "F32", "[4.0]", 0, 16) + "}", 16, not_shape, "w");
    json_row("shape beyond 64 bits", "{" + entry("w", "F32", "[18446744073709551616]", 0, 16) + "}", 16, not_shape,
             "w");
    // 2^32 · 2^32 · 16 wraps to 0 in 64-bit arithmetic; it must be caught, not
    // treated as an empty tensor that needs no bytes.
    json_row("element count overflow", "{" + entry("w", "F32", "[4294967296,4294967296,16]", 0, 0) + "}", 0,
             "element count of shape [4294967296, 4294967296, 16] overflows 64 bits", "w");
    // 10^12 elements (4 TB) declared in a 16-byte file: refused before any byte is read.
    json_row("shape of 10^12 elements", "{" + entry("w", "F32", "[1000000,1000000]", 0, 4'000'000'000'000) + "}", 16,
             "data end 4000000000000 exceeds the 16-byte data section", "w");
    json_row("byte count overflow", "{" + entry("w", "F32", "[4611686018427387904]", 0, 0) + "}", 0,
             "data_offsets span 0 bytes but shape [4611686018427387904] of F32 needs more than 2^64", "w");
    const std::string not_pair = "'data_offsets' is not a pair of non-negative integers";
    json_row("data_offsets with one integer", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
             not_pair, "w");
    json_row("data_offsets with three integers",
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, not_pair, "w");
    json_row("data_offsets with a string", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}",
             4, not_pair, "w");
    json_row("data_offsets negative", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
             not_pair, "w");
    json_row("data_offsets not a list", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":4}}", 4,
             not_pair, "w");
    json_row("begin past end", "{" + entry("w", "F32", "[1]", 8, 4) + "}", 8, "data_offsets begin 8 is past end 4",
             "w");
    {
        const std::string header = "{" + entry("w", "F32", "[4]", 0, 16) + "}";
        json_row("end beyond the buffer", header, 8, "data end 16 exceeds the 8-byte data section", "w",
                 data_at(header, 0));
    }
    {
        const std::string header = "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("w", "F32", "[1]", 9000, 9004) + "}";
        json_row("end far beyond the buffer", header, 8, "data end 9004 exceeds the 8-byte data section", "w",
                 data_at(header, 9000));
    }
    json_row("byte length not elements times dtype size", "{" + entry("w", "F32", "[3]", 0, 16) + "}", 16,
             "data_offsets span 16 bytes but shape [3] of F32 needs 12", "w");
    json_row("byte length of a scalar", "{" + entry("s", "I64", "[]", 0, 4) + "}", 4,
             "data_offsets span 4 bytes but shape [] of I64 needs 8", "s");
    {
        const std::string header = "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}";
        json_row("two tensors overlapping", header, 12, "bytes [4, 12) overlap tensor 'a' at [0, 8)", "b",
                 data_at(header, 4));
    }
    {
        const std::string header = "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 0, 8) + "}";
        json_row("two tensors on the same bytes", header, 8, "bytes [0, 8) overlap tensor 'a' at [0, 8)", "b",
                 data_at(header, 0));
    }
    {
        const std::string header = "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 12, 20) + "}";
        json_row("gap between tensors", header, 20, "data section bytes [8, 12) belong to no tensor", {},
                 data_at(header, 8));
    }
    {
        const std::string header = "{" + entry("b", "F32", "[2]", 4, 12) + "}";
        json_row("gap before the first tensor", header, 12, "data section bytes [0, 4) belong to no tensor", {},
                 data_at(header, 0));
    }
    {
        const std::string header = "{" + entry("a", "F32", "[2]", 0, 8) + "}";
        json_row("trailing bytes after the last tensor", header, 12,
                 "data section is 12 bytes but tensors end at 8: 4 trailing bytes belong to no tensor", {},
                 data_at(header, 8));
    }
    {
        const std::string header = "{}";
        json_row("data without tensors", header, 3,
                 "data section is 3 bytes but tensors end at 0: 3 trailing bytes belong to no tensor", {},
                 data_at(header, 0));
    }
    add("Git LFS pointer",
        adaptk::test::to_bytes("version https://git-lfs.github.com/spec/v1\n"
                               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
                               "size 123\n"),
        "is a Git LFS pointer, not the weights (run 'git lfs pull')");
    json_row("__metadata__ a string", "{\"__metadata__\":\"pt\"}", 0, "'__metadata__' is not an object");
    json_row("__metadata__ a list", "{\"__metadata__\":[]}", 0, "'__metadata__' is not an object");
    return rows;
}

fs::path samples() { return adaptk::test::data_dir() / "safetensors-samples"; }

const adaptk::tensor_info& find(const adaptk::safetensors_header& header, const std::string& name) {
    const auto it = std::find_if(header.tensors.begin(), header.tensors.end(),
                                 [&](const adaptk::tensor_info& t) { return t.name == name; });
    BOOST_TEST_REQUIRE((it != header.tensors.end()), "no tensor " << name);
    return *it;
}

struct expected_tensor {
    std::string name;
    dtype type;
    std::vector<std::uint64_t> shape;
    std::uint64_t begin;
    std::uint64_t end;
};

void check_table(const adaptk::safetensors_header& header, const std::vector<expected_tensor>& table) {
    BOOST_TEST_REQUIRE(header.tensors.size() == table.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
        const auto& got = header.tensors[i];
        const auto& want = table[i];
        BOOST_TEST_CONTEXT("tensor " << i << " " << want.name) {
            BOOST_TEST(got.name == want.name);
            BOOST_TEST((got.type == want.type));
            BOOST_TEST(got.shape == want.shape, boost::test_tools::per_element());
            BOOST_TEST(got.begin == want.begin);
            BOOST_TEST(got.end == want.end);
        }
    }
}

// A small test file mapped whole beside its parsed header, which holds what
// tensor_file does not keep (metadata, header size).
class safetensors_file {
public:
    explicit safetensors_file(const fs::path& path)
        : mapping_(path), header_(adaptk::parse_safetensors({mapping_.data(), mapping_.size()}, path.string())) {}
    const adaptk::safetensors_header& header() const noexcept { return header_; }
    const adaptk::mapped_file& mapping() const noexcept { return mapping_; }
    std::span<const std::byte> bytes(const adaptk::tensor_info& tensor) const noexcept {
        return {mapping_.data() + header_.data_offset + tensor.begin, static_cast<std::size_t>(tensor.bytes())};
    }
    std::uint64_t file_offset(const adaptk::tensor_info& tensor) const noexcept {
        return header_.data_offset + tensor.begin;
    }

private:
    adaptk::mapped_file mapping_;
    adaptk::safetensors_header header_;
};

template <class T>
std::vector<T> load_all(const safetensors_file& file, const adaptk::tensor_info& tensor) {
    const auto bytes = file.bytes(tensor);
    std::vector<T> values(bytes.size() / sizeof(T));
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
    return values;
}

template <class Real>
std::vector<Real> decode_all(const safetensors_file& file, const adaptk::tensor_info& tensor) {
    std::vector<Real> values(tensor.elements);
    adaptk::decode(tensor.type, file.bytes(tensor).data(), values.size(), values.data());
    return values;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors_test)

BOOST_DATA_TEST_CASE(malformed_file_is_rejected_with_its_defect, bdata::make(catalogue()), row) {
    const std::string prefix = file_name + ": " + (row.tensor.empty() ? "" : "tensor '" + row.tensor + "': ");
    bool thrown = false;
    try {
        adaptk::parse_safetensors(row.image, file_name);
    } catch (const format_error& e) {
        thrown = true;
        const std::string what = e.what();
        BOOST_TEST(what.rfind(prefix, 0) == 0u, "what() = " << what);
        BOOST_TEST(what.find(row.message) != std::string::npos, "what() = " << what);
        BOOST_TEST(e.defect().find(row.message) != std::string::npos, "defect() = " << e.defect());
        BOOST_TEST(e.file() == file_name);
        BOOST_TEST(e.tensor() == row.tensor);
        if (row.byte_offset) {
            BOOST_TEST_REQUIRE(e.byte_offset().has_value(), "no byte offset; what() = " << what);
            BOOST_TEST(*e.byte_offset() == *row.byte_offset);
        }
    }
    BOOST_TEST(thrown, "no format_error");
}

BOOST_AUTO_TEST_CASE(accepts_an_empty_header_without_data) {
    const auto header = adaptk::parse_safetensors(safetensors_image("{}"), "x");
    BOOST_TEST(header.tensors.empty());
    BOOST_TEST(header.header_bytes == 2u);
    BOOST_TEST(header.data_offset == 10u);
    BOOST_TEST(header.data_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(accepts_zero_byte_tensors_anywhere_inside_the_data) {
    const std::string header = "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("empty", "F16", "[0,5]", 4, 4) +
                               "," + entry("end", "BF16", "[3,0]", 8, 8) + "}";
    const auto parsed = adaptk::parse_safetensors(safetensors_image(header, 8), "x");
    BOOST_TEST_REQUIRE(parsed.tensors.size() == 3u);
    BOOST_TEST(parsed.tensors[1].elements == 0u);
    BOOST_TEST(parsed.tensors[1].bytes() == 0u);
    BOOST_TEST(parsed.tensors[2].shape == (std::vector<std::uint64_t>{3, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(keeps_tensors_in_header_order_and_metadata_as_text) {
    const std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"n\":3,\"o\":{\"k\":true}}," +
                               entry("z", "F32", "[1]", 4, 8) + "," + entry("a", "F32", "[1]", 0, 4) + "}";
    const auto parsed = adaptk::parse_safetensors(safetensors_image(header, 8), "x");
    BOOST_TEST_REQUIRE(parsed.tensors.size() == 2u);
    BOOST_TEST(parsed.tensors[0].name == "z");
    BOOST_TEST(parsed.tensors[1].name == "a");
    BOOST_TEST_REQUIRE(parsed.metadata.size() == 3u);
    BOOST_TEST(parsed.metadata[0].first == "format");
    BOOST_TEST(parsed.metadata[0].second == "pt");
    BOOST_TEST(parsed.metadata[1].second == "3");
    BOOST_TEST(parsed.metadata[2].second == "{\"k\":true}");
}

// Entries named in descending order, so a key-sorted map would reverse them.
// Also a guard against quadratic parsing: ordered_json's linear key search,
// and later nlohmann's parse callback (it scans the parent object at every
// entry's end), each made this case take minutes; it now takes well under one.
BOOST_AUTO_TEST_CASE(keeps_the_header_order_of_a_hundred_thousand_tensors) {
    constexpr std::size_t count = 100'000;
    std::string header = "{";
    for (std::size_t i = 0; i < count; ++i)
        header += (i == 0 ? "" : ",") + entry("t" + std::to_string(count - i), "F32", "[1]", 4 * i, 4 * i + 4);
    header += "}";
    const auto parsed = adaptk::parse_safetensors(safetensors_image(header, 4 * count), "x");
    BOOST_TEST_REQUIRE(parsed.tensors.size() == count);
    std::size_t out_of_order = 0;
    for (std::size_t i = 0; i < count; ++i)
        out_of_order += parsed.tensors[i].name != "t" + std::to_string(count - i) || parsed.tensors[i].begin != 4 * i;
    BOOST_TEST(out_of_order == 0u);
}

BOOST_AUTO_TEST_CASE(accepts_nesting_up_to_the_depth_limit) {
    // Root object (depth 0), __metadata__ (1), then arrays at depths 2..7.
    const std::string header = "{\"__metadata__\":{\"x\":" + std::string(6, '[') + std::string(6, ']') + "}}";
    BOOST_CHECK_NO_THROW(adaptk::parse_safetensors(safetensors_image(header), "x"));
}

// The largest header the limit admits, 100 MB of JSON, parses (one long
// metadata string here; README "Limits worth knowing" has the time and memory
// of the costliest such header, 1.8 million tensor entries).
BOOST_AUTO_TEST_CASE(accepts_a_header_of_exactly_the_length_limit) {
    const std::string open = "{\"__metadata__\":{\"note\":\"", close = "\"}}";
    const std::size_t filler = adaptk::max_header_bytes - open.size() - close.size();
    const std::string header = open + std::string(filler, 'x') + close;
    BOOST_TEST_REQUIRE(header.size() == adaptk::max_header_bytes);
    const auto parsed = adaptk::parse_safetensors(safetensors_image(header), "x");
    BOOST_TEST(parsed.header_bytes == adaptk::max_header_bytes);
    BOOST_TEST_REQUIRE(parsed.metadata.size() == 1u);
    BOOST_TEST(parsed.metadata[0].second.size() == filler);
    BOOST_TEST(parsed.tensors.empty());
}

BOOST_AUTO_TEST_CASE(missing_file_throws_system_error_naming_it) {
    adaptk::test::temp_dir dir;
    const auto missing = dir / "missing.safetensors";
    BOOST_CHECK_EXCEPTION(safetensors_file{missing}, std::system_error, [&](const std::system_error& e) {
        return std::string(e.what()).find(missing.string()) != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(lfs_pointer_on_disk_is_named_in_the_error) {
    adaptk::test::temp_dir dir;
    const auto pointer = dir / "model.safetensors";
    adaptk::test::write_text(pointer, "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 123\n");
    BOOST_CHECK_EXCEPTION(safetensors_file{pointer}, format_error, [&](const format_error& e) {
        return e.file() == pointer.string() && std::string(e.what()).find("git lfs pull") != std::string::npos;
    });
}

// --- real files written by other writers (tables from safetensors-samples/PROVENANCE.md)

BOOST_AUTO_TEST_CASE(reads_the_hf_numpy_sample_with_its_unpadded_header) {
    const safetensors_file file(samples() / "hf-safetensors-numpy-overall.safetensors");
    const auto& header = file.header();
    BOOST_TEST(file.mapping().size() == 702u);
    BOOST_TEST(header.header_bytes == 526u);
    BOOST_TEST(header.data_offset == 534u);
    BOOST_TEST(header.data_bytes == 168u);
    BOOST_TEST_REQUIRE(header.metadata.size() == 1u);
    BOOST_TEST(header.metadata[0].first == "test");
    BOOST_TEST(header.metadata[0].second == "a");
    check_table(header, {
                            {"B", dtype::u8, {6}, 0, 6},
                            {"H", dtype::u16, {6}, 6, 18},
                            {"I", dtype::u32, {6}, 18, 42},
                            {"b", dtype::i8, {6}, 42, 48},
                            {"d", dtype::f64, {6}, 48, 96},
                            {"e", dtype::f16, {6}, 96, 108},
                            {"f", dtype::f32, {6}, 108, 132},
                            {"h", dtype::i16, {6}, 132, 144},
                            {"i", dtype::i32, {6}, 144, 168},
                        });
    for (const auto& tensor : header.tensors) BOOST_TEST(tensor.elements == 6u, tensor.name);
}

BOOST_AUTO_TEST_CASE(decodes_the_hf_numpy_sample_floats_from_unaligned_offsets) {
    const safetensors_file file(samples() / "hf-safetensors-numpy-overall.safetensors");
    const std::vector<double> expected{-3, -2, -1, 0, 1, 2};
    // The data section starts at 534, so these are misaligned in the mapping.
    BOOST_TEST(file.file_offset(find(file.header(), "d")) == 582u);
    BOOST_TEST(file.file_offset(find(file.header(), "f")) == 642u);
    BOOST_TEST(file.file_offset(find(file.header(), "i")) == 678u);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(file.bytes(find(file.header(), "d")).data()) % 8 != 0u);
    for (const char* name : {"d", "f", "e"}) {
        const auto& tensor = find(file.header(), name);
        const auto as_double = decode_all<double>(file, tensor);
        const auto as_float = decode_all<float>(file, tensor);
        BOOST_TEST(as_double == expected, boost::test_tools::per_element());
        for (std::size_t i = 0; i < expected.size(); ++i) BOOST_TEST(as_float[i] == static_cast<float>(expected[i]));
    }
}

BOOST_AUTO_TEST_CASE(reads_the_hf_numpy_sample_integers_as_stored) {
    const safetensors_file file(samples() / "hf-safetensors-numpy-overall.safetensors");
    const auto& header = file.header();
    BOOST_TEST(load_all<std::uint8_t>(file, find(header, "B")) == (std::vector<std::uint8_t>{253, 254, 255, 0, 1, 2}),
               boost::test_tools::per_element());
    BOOST_TEST(load_all<std::int8_t>(file, find(header, "b")) == (std::vector<std::int8_t>{-3, -2, -1, 0, 1, 2}),
               boost::test_tools::per_element());
    BOOST_TEST(load_all<std::uint16_t>(file, find(header, "H")) ==
                   (std::vector<std::uint16_t>{65533, 65534, 65535, 0, 1, 2}),
               boost::test_tools::per_element());
    BOOST_TEST(load_all<std::int16_t>(file, find(header, "h")) == (std::vector<std::int16_t>{-3, -2, -1, 0, 1, 2}),
               boost::test_tools::per_element());
    BOOST_TEST(load_all<std::int32_t>(file, find(header, "i")) == (std::vector<std::int32_t>{-3, -2, -1, 0, 1, 2}),
               boost::test_tools::per_element());
    BOOST_TEST(load_all<std::uint32_t>(file, find(header, "I")) ==
                   (std::vector<std::uint32_t>{4294967293u, 4294967294u, 4294967295u, 0, 1, 2}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(reads_the_mlx_file_with_null_metadata_and_shuffled_offsets) {
    const safetensors_file file(samples() / "mlx-lora-adapters.safetensors");
    const auto& header = file.header();
    BOOST_TEST(file.mapping().size() == 1'181'371u);
    BOOST_TEST(header.header_bytes == 1715u);
    BOOST_TEST(header.data_offset == 1723u);
    BOOST_TEST(header.metadata.empty());  // "__metadata__": null
    BOOST_TEST_REQUIRE(header.tensors.size() == 16u);

    std::vector<std::string> expected_names;
    for (int layer = 36; layer <= 39; ++layer)
        for (const char* proj : {"q_proj", "v_proj"})
            for (const char* half : {"lora_a", "lora_b"})
                expected_names.push_back("model.layers." + std::to_string(layer) + ".self_attn." + proj + "." + half);
    bool offsets_shuffled = false;
    for (std::size_t i = 0; i < header.tensors.size(); ++i) {
        const auto& tensor = header.tensors[i];
        BOOST_TEST(tensor.name == expected_names[i]);
        BOOST_TEST((tensor.type == dtype::f32));
        const bool is_a = tensor.name.ends_with("lora_a");
        BOOST_TEST(tensor.shape == (is_a ? std::vector<std::uint64_t>{2304, 8} : std::vector<std::uint64_t>{8, 2304}),
                   boost::test_tools::per_element());
        BOOST_TEST(tensor.bytes() == 73'728u);
        if (i > 0 && tensor.begin < header.tensors[i - 1].begin) offsets_shuffled = true;
    }
    BOOST_TEST(offsets_shuffled);
    // First entry in the header holds the last bytes of the file.
    BOOST_TEST(header.tensors[0].begin == 1'105'920u);
    BOOST_TEST(header.tensors[0].end == 1'179'648u);

    std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
    for (const auto& tensor : header.tensors) spans.emplace_back(tensor.begin, tensor.end);
    std::sort(spans.begin(), spans.end());
    std::uint64_t covered = 0;
    for (const auto& [begin, end] : spans) {
        BOOST_TEST(begin == covered);
        covered = end;
    }
    BOOST_TEST(covered == 1'179'648u);
    BOOST_TEST(header.data_bytes == 1'179'648u);
}

BOOST_AUTO_TEST_CASE(reads_the_burn_file_with_a_scalar_i64) {
    const safetensors_file file(samples() / "burn-torch-multi_layer.safetensors");
    const auto& header = file.header();
    BOOST_TEST(file.mapping().size() == 17'624u);
    BOOST_TEST(header.header_bytes == 648u);
    BOOST_TEST(header.data_offset % 8 == 0u);
    BOOST_TEST(header.metadata.empty());
    check_table(header, {
                            {"norm1.num_batches_tracked", dtype::i64, {}, 0, 8},
                            {"conv1.bias", dtype::f32, {4}, 8, 24},
                            {"conv1.weight", dtype::f32, {4, 3, 3, 3}, 24, 456},
                            {"fc1.bias", dtype::f32, {16}, 456, 520},
                            {"fc1.weight", dtype::f32, {16, 256}, 520, 16904},
                            {"norm1.bias", dtype::f32, {4}, 16904, 16920},
                            {"norm1.running_mean", dtype::f32, {4}, 16920, 16936},
                            {"norm1.running_var", dtype::f32, {4}, 16936, 16952},
                            {"norm1.weight", dtype::f32, {4}, 16952, 16968},
                        });
    const auto& scalar = header.tensors[0];
    BOOST_TEST(scalar.shape.empty());
    BOOST_TEST(scalar.elements == 1u);
    BOOST_TEST(load_all<std::int64_t>(file, scalar) == std::vector<std::int64_t>{1}, boost::test_tools::per_element());
    BOOST_TEST(header.tensors[2].elements == 108u);
    // running_var of a freshly trained BatchNorm is positive.
    for (const float v : decode_all<float>(file, find(header, "norm1.running_var"))) BOOST_TEST(v > 0.0f);
}

// --- our own converted Llama files: one model, several dtypes

void check_same_catalogue(const adaptk::safetensors_header& a, const adaptk::safetensors_header& b) {
    BOOST_TEST_REQUIRE(a.tensors.size() == b.tensors.size());
    for (std::size_t i = 0; i < a.tensors.size(); ++i) {
        BOOST_TEST(a.tensors[i].name == b.tensors[i].name);
        BOOST_TEST(a.tensors[i].shape == b.tensors[i].shape, boost::test_tools::per_element());
    }
}

BOOST_AUTO_TEST_CASE(stories260k_bf16_is_the_f32_rounded_to_nearest_even) {
    const auto dir = adaptk::test::data_dir() / "stories260K" / "hf";
    const safetensors_file f32(dir / "f32" / "model.safetensors");
    const safetensors_file bf16(dir / "bf16" / "model.safetensors");
    BOOST_TEST(f32.header().tensors.size() == 48u);
    BOOST_TEST(f32.header().data_offset % 8 == 0u);
    check_same_catalogue(f32.header(), bf16.header());
    std::size_t checked = 0;
    for (std::size_t i = 0; i < f32.header().tensors.size(); ++i) {
        const auto& t32 = f32.header().tensors[i];
        const auto& t16 = bf16.header().tensors[i];
        BOOST_TEST_REQUIRE((t32.type == dtype::f32));
        BOOST_TEST_REQUIRE((t16.type == dtype::bf16));
        const auto wide = load_all<float>(f32, t32);
        const auto narrow = load_all<std::uint16_t>(bf16, t16);
        BOOST_TEST_REQUIRE(wide.size() == narrow.size());
        std::size_t mismatches = 0;
        for (std::size_t k = 0; k < wide.size(); ++k) mismatches += adaptk::float_to_bf16(wide[k]) != narrow[k];
        BOOST_TEST(mismatches == 0u, t32.name);
        checked += wide.size();
    }
    BOOST_TEST(checked == 292'800u);  // every weight of the model, norms included
}

BOOST_AUTO_TEST_CASE(llama2_tiny_f16_f32_bf16_hold_the_same_values) {
    const auto dir = adaptk::test::data_dir() / "llama-2-tiny-random" / "hf";
    const safetensors_file f32(dir / "f32" / "model.safetensors");
    const safetensors_file f16(dir / "f16" / "model.safetensors");
    const safetensors_file bf16(dir / "bf16" / "model.safetensors");
    BOOST_TEST(f32.header().tensors.size() == 12u);
    check_same_catalogue(f32.header(), f16.header());
    check_same_catalogue(f32.header(), bf16.header());
    for (std::size_t i = 0; i < f32.header().tensors.size(); ++i) {
        const auto& t32 = f32.header().tensors[i];
        const auto wide = load_all<float>(f32, t32);
        const auto from_f16 = decode_all<float>(f16, f16.header().tensors[i]);
        const auto narrow = load_all<std::uint16_t>(bf16, bf16.header().tensors[i]);
        std::size_t f16_mismatches = 0;
        std::size_t bf16_mismatches = 0;
        for (std::size_t k = 0; k < wide.size(); ++k) {
            f16_mismatches += from_f16[k] != wide[k];  // F16 -> F32 was exact
            bf16_mismatches += adaptk::float_to_bf16(wide[k]) != narrow[k];
        }
        BOOST_TEST(f16_mismatches == 0u, t32.name);
        BOOST_TEST(bf16_mismatches == 0u, t32.name);
    }
}

BOOST_AUTO_TEST_SUITE_END()
