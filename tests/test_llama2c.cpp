#define BOOST_TEST_MODULE llama2c
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/llama2c.hpp"
#include "adaptk/tensor_file.hpp"
#include "generated_weights.hpp"
#include "llama2c_writer.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using adaptk::format_error;
using adaptk::test::llama2c_spec;
using adaptk::test::llama2c_tensor;
BOOST_TEST_DONT_PRINT_LOG_VALUE(adaptk::dtype)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<std::uint64_t>)
BOOST_TEST_DONT_PRINT_LOG_VALUE(adaptk::tensor_file::file_format)

namespace {

const std::string file_name = "bad.bin";

llama2c_spec small_spec(int version, bool shared) {
    return {16, 48, 2, 4, 2, 11, 8, shared, version, version == 2 ? 8 : 0};
}

// Each array gets its own generated values (seeded by its position).
std::vector<std::byte> small_image(const llama2c_spec& spec) {
    std::uint64_t seed = 100;
    return adaptk::test::llama2c_image(spec, [&](const llama2c_tensor& t) {
        return adaptk::test::generated_matrix(seed++, t.rows, t.cols == 0 ? 1 : t.cols);
    });
}

struct defect_row {
    std::string defect;
    std::vector<std::byte> image;
    std::string message;
};
std::ostream& operator<<(std::ostream& out, const defect_row& row) { return out << row.defect; }

template <class T>
std::vector<std::byte> patched(std::vector<std::byte> image, std::size_t at, T value) {
    std::memcpy(image.data() + at, &value, sizeof value);
    return image;
}

std::vector<defect_row> catalogue() {
    const auto v1 = small_image(small_spec(1, true));
    const auto legacy = small_image(small_spec(0, false));
    const auto v2 = small_image(small_spec(2, true));
    std::vector<defect_row> rows;
    rows.push_back({"versioned header cut short", {v1.begin(), v1.begin() + 100},
                    "file is 100 bytes, shorter than the 256-byte llama2.c header"});
    rows.push_back({"version 7", patched(v1, 4, std::int32_t{7}),
                    "llama2.c version 7 is not supported (only the legacy layout and versions 1 and 2)"});
    rows.push_back({"version 2 header on a version 1 file", patched(patched(v1, 4, std::int32_t{2}), 37, std::int32_t{8}),
                    "bytes but a llama2.c version 2 checkpoint with dim 16, group_size 8,"});
    rows.push_back({"magic off by one: read as a legacy header", patched(v2, 0, std::uint32_t{0x616b3433}),
                    "dim is 1634415667; expected a positive count below 2^30"});
    rows.push_back({"group size 0", patched(v2, 37, std::int32_t{0}),
                    "group_size is 0; expected a positive count below 2^30"});
    rows.push_back({"negative group size", patched(v2, 37, std::int32_t{-64}), "group_size is -64"});
    rows.push_back({"group size not dividing dim", patched(v2, 37, std::int32_t{6}), "group_size 6 does not divide dim 16"});
    rows.push_back({"group size 4 on a file written with 8", patched(v2, 37, std::int32_t{4}),
                    "bytes but a llama2.c version 2 checkpoint with dim 16, group_size 4, hidden_dim 48, 2 layers, "
                    "vocab 11 (shared classifier) takes"});
    auto scales_cut = v2;
    scales_cut.resize(v2.size() - 4);
    rows.push_back({"last scale missing", scales_cut,
                    "file is " + std::to_string(scales_cut.size()) + " bytes but a llama2.c version 2 checkpoint with "
                    "dim 16, group_size 8, hidden_dim 48, 2 layers, vocab 11 (shared classifier) takes " +
                    std::to_string(v2.size())});
    rows.push_back({"dim 0", patched(v1, 8, std::int32_t{0}), "dim is 0; expected a positive count below 2^30"});
    rows.push_back({"negative seq_len", patched(legacy, 24, std::int32_t{-5}), "seq_len is -5"});
    rows.push_back({"n_layers above 2^30", patched(legacy, 8, (std::int32_t{1} << 30) + 1), "n_layers is 1073741825"});
    rows.push_back({"heads do not divide dim", patched(v1, 8 + 12, std::int32_t{3}),
                    "dim 16 is not a multiple of n_heads 3"});
    rows.push_back({"kv heads do not divide heads", patched(v1, 8 + 16, std::int32_t{3}),
                    "n_heads 4 is not a multiple of n_kv_heads 3"});
    rows.push_back({"shared flag 2", patched(v1, 36, std::uint8_t{2}), "shared_classifier flag is 2, not 0 or 1"});
    rows.push_back({"legacy header cut short", {legacy.begin(), legacy.begin() + 20},
                    "file is 20 bytes, too short for a llama2.c header"});
    auto truncated = v1;
    truncated.resize(v1.size() - 4);
    rows.push_back({"last float missing", truncated,
                    "file is " + std::to_string(truncated.size()) + " bytes but a llama2.c version 1 checkpoint with "
                    "dim 16, hidden_dim 48, 2 layers, vocab 11 (shared classifier) takes " + std::to_string(v1.size())});
    auto trailing = legacy;
    trailing.resize(legacy.size() + 4);
    rows.push_back({"trailing bytes", trailing, "legacy checkpoint with dim 16, hidden_dim 48, 2 layers, vocab 11 "
                                                "(own classifier) takes " + std::to_string(legacy.size())});
    rows.push_back({"sizes past 2^64", patched(patched(legacy, 0, std::int32_t{1} << 29), 8, std::int32_t{1} << 29),
                    "takes more than 2^64 bytes"});
    return rows;
}

}  // namespace

BOOST_DATA_TEST_CASE(malformed_file_is_rejected_with_its_defect, bdata::make(catalogue()), row) {
    bool thrown = false;
    try {
        adaptk::parse_llama2c(row.image, file_name);
    } catch (const format_error& e) {
        thrown = true;
        const std::string what = e.what();
        BOOST_TEST(what.rfind(file_name + ": ", 0) == 0u, "what() = " << what);
        BOOST_TEST(what.find(row.message) != std::string::npos, "what() = " << what);
        BOOST_TEST(what.find('\n') == std::string::npos);
    }
    BOOST_TEST(thrown, "accepted a file with defect: " << row.defect);
}

// Every weight array comes out under its HF name and shape, with the bytes
// the writer put there; the legacy freq_cis tables are skipped; version 2's
// matrices are int8 groups with their scales, its norms float32.
BOOST_DATA_TEST_CASE(valid_files_map_to_hf_names_shapes_and_bytes,
                     bdata::make({0, 1, 2}) * bdata::make({true, false}), version, shared) {
    const llama2c_spec spec = small_spec(version, shared);
    const auto image = small_image(spec);
    const auto header = adaptk::parse_llama2c(image, "ok.bin");
    BOOST_TEST(header.config.version == std::uint32_t(version));
    BOOST_TEST(header.config.shared_classifier == shared);
    BOOST_TEST(header.config.dim == 16u);
    BOOST_TEST(header.config.vocab == 11u);
    BOOST_TEST(header.config.group_size == std::uint64_t(spec.group));
    std::uint64_t offset = version == 0 ? 28 : 256;
    std::size_t i = 0;
    for (const auto& expected : adaptk::test::llama2c_layout(spec)) {
        const std::uint64_t bytes = adaptk::test::llama2c_bytes(spec, expected);
        const bool quantized = adaptk::test::llama2c_quantized(spec, expected);
        if (expected.weight) {
            BOOST_TEST_REQUIRE(i < header.tensors.size());
            const auto& t = header.tensors[i++];
            BOOST_TEST(t.name == expected.name);
            const std::vector<std::uint64_t> shape =
                expected.cols == 0 ? std::vector<std::uint64_t>{expected.rows}
                                   : std::vector<std::uint64_t>{expected.rows, expected.cols};
            BOOST_TEST(t.shape == shape, boost::test_tools::per_element());
            BOOST_TEST(t.type == (quantized ? adaptk::dtype::q8_groups : adaptk::dtype::f32), t.name);
            BOOST_TEST(t.scale_group == (quantized ? 8u : 0u), t.name);
            BOOST_TEST(t.begin == offset, t.name);
            BOOST_TEST(t.end == offset + bytes, t.name);
        }
        offset += bytes;
    }
    BOOST_TEST(i == header.tensors.size());
    BOOST_TEST(offset == image.size());
    BOOST_TEST(header.tensors.size() == std::size_t(2 * 9 + 2 + (shared ? 0 : 1)));
}

BOOST_AUTO_TEST_CASE(a_bin_file_opens_as_a_checkpoint_with_the_headers_config) {
    adaptk::test::temp_dir dir;
    adaptk::test::write_bytes(dir / "model.bin", small_image(small_spec(1, false)));
    const adaptk::checkpoint model(dir / "model.bin");
    BOOST_TEST(model.config().hidden_size == std::optional<std::uint64_t>(16));
    BOOST_TEST(model.config().num_key_value_heads == std::optional<std::uint64_t>(2));
    BOOST_TEST(model.files().front().format() == adaptk::tensor_file::file_format::llama2c);
    std::vector<std::string> notes;
    const auto matrices = model.matrices(16, notes);
    BOOST_TEST(matrices.size() == 2u * 7u + 2u);  // lm_head is stored: embed and head
    BOOST_TEST(notes.empty());
}

// The real checkpoint (shared/models/babyllama-105, legacy layout with the
// freq_cis tables; 3.7 MB, so read from beside the repository when present).
BOOST_AUTO_TEST_CASE(babyllama_header_matches_its_provenance) {
    const fs::path real = adaptk::test::data_dir() / ".." / ".." / ".." / "shared" / "models" / "babyllama-105" /
                          "model5000.bin";
    if (!fs::exists(real)) {
        BOOST_TEST_MESSAGE("skipped: " << real << " is not present");
        return;
    }
    const adaptk::tensor_file file(real);
    const auto& c = *file.llama2c();
    BOOST_TEST(c.version == 0u);
    BOOST_TEST((c.dim == 128u && c.hidden_dim == 352u && c.layers == 5u && c.heads == 8u && c.kv_heads == 4u &&
                c.vocab == 105u && c.seq_len == 256u));
    BOOST_TEST(c.shared_classifier);
    std::uint64_t floats = 0;
    for (const auto& t : file.tensors()) floats += t.elements;
    BOOST_TEST(floats + 2 * 256 * 8 == 940544u);  // PROVENANCE: 940,544 floats incl. freq_cis [256, 8] x 2
    BOOST_TEST(file.tensors().size() == 5u * 9u + 2u);
}
