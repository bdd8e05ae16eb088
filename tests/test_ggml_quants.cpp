#define BOOST_TEST_MODULE ggml_quants
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "adaptk/dtype.hpp"
#include "adaptk/tensor_file.hpp"
#include "generated_weights.hpp"
#include "test_support.hpp"

// tests/data/ggml-quants/quants.gguf was written by tools/ggml-fixtures with
// llama.cpp's own libggml-base (see PROVENANCE.md): for each type T the tensor
// `T` is ggml_quantize_chunk's encoding of `source` and `T.ref` holds the
// floats llama.cpp's to_float returns for it. Our decoding must give those
// bits exactly.

namespace bdata = boost::unit_test::data;
using adaptk::dtype;

namespace {

const std::vector<std::string> ggml_types{"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K",
                                           "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS"};

const adaptk::tensor_file& quants() {
    static const adaptk::tensor_file file(adaptk::test::data_dir() / "ggml-quants" / "quants.gguf");
    return file;
}

const adaptk::tensor_info& tensor(const std::string& name) {
    for (const auto& t : quants().tensors())
        if (t.name == name) return t;
    throw std::runtime_error("quants.gguf has no tensor " + name);
}

std::vector<float> decoded(const std::string& name) {
    const auto& t = tensor(name);
    std::vector<float> values(t.elements);
    adaptk::decode(t.type, adaptk::test::stored_bytes(quants(), t).data(), values.size(), values.data());
    return values;
}

std::vector<std::uint32_t> bits(const std::vector<float>& values) {
    std::vector<std::uint32_t> out;
    for (const float v : values) out.push_back(std::bit_cast<std::uint32_t>(v));
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_generator_reproduces_the_tools_source_tensor) {
    const auto& source = tensor("source");
    BOOST_TEST_REQUIRE(source.shape == (std::vector<std::uint64_t>{4, 512}), boost::test_tools::per_element());
    BOOST_TEST(bits(decoded("source")) == bits(adaptk::test::generated_matrix(1, 4, 512)),
               boost::test_tools::per_element());
}

BOOST_DATA_TEST_CASE(decoding_equals_llama_cpps_to_float_bit_for_bit, bdata::make(ggml_types), type) {
    const auto& quantized = tensor(type);
    BOOST_TEST_REQUIRE(std::string(adaptk::dtype_name(quantized.type)) == type);
    BOOST_TEST_REQUIRE(adaptk::is_floating_decodable(quantized.type));
    const std::vector<float> ours = decoded(type);
    const std::vector<float> reference = decoded(type + ".ref");
    BOOST_TEST(bits(ours) == bits(reference), boost::test_tools::per_element());
    // Not vacuous: the quantization changed the values, and kept them close.
    const std::vector<float> source = decoded("source");
    double error = 0, energy = 0;
    for (std::size_t i = 0; i < source.size(); ++i) {
        error += (double(ours[i]) - source[i]) * (double(ours[i]) - source[i]);
        energy += double(source[i]) * source[i];
    }
    BOOST_TEST(error > 0.0);
    BOOST_TEST(error < 0.1 * energy);
}

// Column reads decode the blocks a range cuts and trim them; float64 output
// widens the same floats.
BOOST_DATA_TEST_CASE(ranges_cutting_blocks_equal_the_reference_values, bdata::make(ggml_types), type) {
    const auto& quantized = tensor(type);
    const std::vector<float> reference = decoded(type + ".ref");
    const std::size_t row = 512;
    const std::size_t row_bytes = *adaptk::storage_bytes(quantized.type, row);
    for (const auto& [first, count] : std::vector<std::pair<std::size_t, std::size_t>>{
             {0, 512}, {1, 1}, {7, 300}, {255, 2}, {256, 256}, {31, 257}, {500, 12}}) {
        const std::vector<std::byte> all_rows = adaptk::test::stored_bytes(quants(), quantized);
        for (std::size_t r = 0; r < 4; ++r) {
            const std::byte* stored = all_rows.data() + r * row_bytes;
            std::vector<float> out(count);
            std::vector<double> wide(count);
            adaptk::decode_range(quantized.type, stored, first, count, out.data());
            adaptk::decode_range(quantized.type, stored, first, count, wide.data());
            for (std::size_t i = 0; i < count; ++i) {
                const float expected = reference[r * row + first + i];
                BOOST_TEST_REQUIRE(std::bit_cast<std::uint32_t>(out[i]) == std::bit_cast<std::uint32_t>(expected),
                                   type << " row " << r << " element " << first + i);
                BOOST_TEST_REQUIRE(wide[i] == double(expected), type << " row " << r << " element " << first + i);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(types_without_a_decoder_stay_undecodable) {
    for (const dtype t : {dtype::q8_1, dtype::iq2_xxs, dtype::iq2_xs, dtype::iq3_xxs, dtype::iq1_s, dtype::iq3_s,
                          dtype::iq2_s, dtype::iq1_m, dtype::tq1_0, dtype::tq2_0, dtype::mxfp4})
        BOOST_TEST(!adaptk::is_floating_decodable(t), adaptk::dtype_name(t));
}
