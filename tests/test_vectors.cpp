#define BOOST_TEST_MODULE vectors
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/safetensors_writer.hpp"
#include "adaptk/vectors.hpp"
#include "detail/part_runner.hpp"
#include "generated_weights.hpp"
#include "gguf_writer.hpp"
#include "llama2c_writer.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using adaptk::dtype;
using adaptk::weight_matrix;
BOOST_TEST_DONT_PRINT_LOG_VALUE(adaptk::dtype)

namespace {

struct matrix_spec {
    std::string name;
    std::uint64_t rows;
    std::uint64_t cols;
};

// For hidden size d: square, tall (more vectors than the largest block but
// one), a single row, down-style [d, n] read by columns, and [d, 1].
std::vector<matrix_spec> specs(std::uint64_t d) {
    return {
        {"model.layers.0.self_attn.q_proj.weight", d, d},
        {"model.layers.0.self_attn.k_proj.weight", 1, d},
        {"model.layers.0.mlp.up_proj.weight", 300, d},
        {"model.layers.0.mlp.down_proj.weight", d, 300},
        {"model.layers.1.mlp.down_proj.weight", d, 1},
    };
}

// Writes random N(0, 1) matrices for `specs(d)` in `type`.
void write_random_model(const fs::path& path, dtype type, std::uint64_t d) {
    std::mt19937_64 rng(1234 + d);
    std::normal_distribution<double> normal;
    adaptk::safetensors_writer writer(path);
    for (const auto& s : specs(d)) writer.declare(s.name, type, {s.rows, s.cols});
    for (const auto& s : specs(d)) {
        std::vector<double> values(s.rows * s.cols);
        for (auto& v : values) v = normal(rng);
        if (type == dtype::f64) {
            writer.write_values(std::span<const double>(values));
        } else {
            const std::vector<float> narrow(values.begin(), values.end());
            writer.write_values(std::span<const float>(narrow));
        }
    }
    writer.finish();
}

// W[i, j] of the matrix, decoded by the test's own reference decoder; a Q8_0
// element is its block's fp16 scale times its int8 (rows are whole blocks); a
// llama2.c version 2 element its int8 times the float32 scale of its group of
// the flattened matrix, the scales stored after all values.
double element(const weight_matrix& m, std::uint64_t i, std::uint64_t j) {
    if (m.type == dtype::q8_groups) {
        const std::uint64_t at = i * m.cols + j;
        float scale;
        std::memcpy(&scale, m.bytes.data() + m.rows * m.cols + at / m.scale_group * sizeof scale, sizeof scale);
        return adaptk::test::dequantized(static_cast<std::int8_t>(m.bytes[at]), scale);
    }
    if (m.type == dtype::q8_0) {
        const std::byte* block = m.bytes.data() + i * (m.cols / 32 * 34) + j / 32 * 34;
        std::uint16_t scale;
        std::memcpy(&scale, block, 2);
        return adaptk::test::half_reference(scale) * static_cast<std::int8_t>(block[2 + j % 32]);
    }
    return adaptk::test::reference_value(m.type, m.bytes.data() + (i * m.cols + j) * adaptk::dtype_bytes(m.type));
}

// Vector v of the stream: row v of W, or column v for down-style matrices.
double reference(const weight_matrix& m, std::uint64_t v, std::uint64_t r) {
    return m.vectors_are_rows ? element(m, v, r) : element(m, r, v);
}

// What the stream must hand out: the value, or for std::uint16_t the BF16
// bits as stored in the file.
template <class Real>
Real expected(const weight_matrix& m, std::uint64_t v, std::uint64_t r) {
    if constexpr (std::is_same_v<Real, std::uint16_t>) {
        const std::uint64_t row = m.vectors_are_rows ? v : r, col = m.vectors_are_rows ? r : v;
        std::uint16_t bits;
        std::memcpy(&bits, m.bytes.data() + (row * m.cols + col) * sizeof bits, sizeof bits);
        return bits;
    } else {
        return static_cast<Real>(reference(m, v, r));
    }
}

// Reads every block in `shares` shares, each on a thread of its own, as the
// rsvd passes do (one share: next() on this thread).
template <class Real>
void check_stream(const weight_matrix& m, std::size_t block, std::size_t shares) {
    adaptk::vector_stream<Real> stream(m, block, shares);
    adaptk::detail::part_runner threads(shares);
    auto on_threads = [&](std::size_t count, const auto& read) { threads.run(count, read); };
    auto next = [&](Real* out) { return shares == 1 ? stream.next(out) : stream.next(out, on_threads); };
    // The reference decodes the stored bytes in memory: read them whole here.
    std::vector<std::byte> stored(m.stored_size());
    weight_matrix in_memory = m;
    if (m.file != nullptr) {
        m.file->read(m.file_offset, stored.size(), stored.data());
        in_memory.bytes = stored;
        in_memory.file = nullptr;
    }
    const std::uint64_t d = m.vectors_are_rows ? m.cols : m.rows;
    BOOST_TEST_REQUIRE(stream.dim() == d);
    BOOST_TEST_REQUIRE(stream.vectors_total() == (m.vectors_are_rows ? m.rows : m.cols));
    BOOST_TEST(stream.vectors_done() == 0u);

    std::vector<Real> buffer(d * block);
    std::uint64_t done = 0;
    std::size_t mismatches = 0;
    while (true) {
        std::fill(buffer.begin(), buffer.end(), Real(-777));
        const std::size_t n = next(buffer.data());
        const std::uint64_t expected_n = std::min<std::uint64_t>(block, stream.vectors_total() - done);
        BOOST_TEST_REQUIRE(n == expected_n);
        if (n == 0) break;
        for (std::size_t j = 0; j < n; ++j)
            for (std::uint64_t r = 0; r < d; ++r)
                mismatches += buffer[j * d + r] != expected<Real>(in_memory, done + j, r);
        done += n;
        BOOST_TEST_REQUIRE(stream.vectors_done() == done);
    }
    BOOST_TEST(mismatches == 0u);
    BOOST_TEST(done == stream.vectors_total());
    BOOST_TEST(next(buffer.data()) == 0u);  // stays finished
    BOOST_TEST(stream.vectors_done() == stream.vectors_total());
}

// Whole blocks, and blocks read in three shares (rows of d, for columns, in
// whole tiles of 16: d = 5 leaves two shares empty, d = 37 cuts a tile).
template <class Real>
void check_stream(const weight_matrix& m, std::size_t block) {
    for (const std::size_t shares : {1, 3}) {
        BOOST_TEST_CONTEXT("shares " << shares) { check_stream<Real>(m, block, shares); }
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vectors_test)

BOOST_DATA_TEST_CASE(streams_every_vector_exactly,
                     bdata::make({dtype::f32, dtype::f16, dtype::bf16, dtype::f64}) * bdata::make({5, 37}) *
                         bdata::make({1, 7, 64, 257, 1000}),
                     type, d, block) {
    adaptk::test::temp_dir dir;
    write_random_model(dir / "model.safetensors", type, static_cast<std::uint64_t>(d));
    const adaptk::checkpoint ck(dir.path());
    std::vector<std::string> notes;
    const auto matrices = ck.matrices(static_cast<std::uint64_t>(d), notes);
    BOOST_TEST(notes.empty());
    BOOST_TEST_REQUIRE(matrices.size() == 5u);
    std::size_t column_matrices = 0;
    for (const auto& m : matrices) {
        BOOST_TEST_CONTEXT(m.name) {
            BOOST_TEST((m.type == type));
            column_matrices += !m.vectors_are_rows;
            check_stream<float>(m, static_cast<std::size_t>(block));
            check_stream<double>(m, static_cast<std::size_t>(block));
            if (type == dtype::bf16)
                check_stream<std::uint16_t>(m, static_cast<std::size_t>(block));
            else
                BOOST_CHECK_EXCEPTION(adaptk::vector_stream<std::uint16_t>(m, 1), std::invalid_argument,
                                      [&](const std::invalid_argument& e) {
                                          return std::string(e.what()).find(m.name) != std::string::npos &&
                                                 std::string(e.what()).find("not BF16") != std::string::npos;
                                      });
        }
    }
    BOOST_TEST(column_matrices == 2u);
}

BOOST_AUTO_TEST_CASE(written_values_survive_to_the_stream_within_dtype_precision) {
    // Guards the reference itself: the stream must return the values written,
    // rounded only as the dtype demands.
    adaptk::test::temp_dir dir;
    const std::vector<float> values{0.5f, -1.25f, 3.0f, 100.0f, -0.001f, 7.75f};
    for (const dtype type : {dtype::f32, dtype::f16, dtype::bf16, dtype::f64}) {
        const auto path = dir / (std::string(adaptk::dtype_name(type)) + ".safetensors");
        {
            adaptk::safetensors_writer writer(path);
            writer.declare("model.layers.0.mlp.down_proj.weight", type, {2, 3});  // d = 2: columns
            writer.write_values(std::span<const float>(values));
            writer.finish();
        }
        const adaptk::checkpoint ck(path);
        std::vector<std::string> notes;
        const auto matrices = ck.matrices(2, notes);
        BOOST_TEST_REQUIRE(matrices.size() == 1u);
        adaptk::vector_stream<double> stream(matrices[0], 10);
        std::vector<double> out(2 * 10);
        BOOST_TEST_REQUIRE(stream.next(out.data()) == 3u);
        const double tolerance = type == dtype::bf16 ? 1.0 / 128 : type == dtype::f16 ? 1.0 / 1024 : 1e-7;
        for (std::size_t j = 0; j < 3; ++j)
            for (std::size_t r = 0; r < 2; ++r) {
                const double written = values[r * 3 + j];  // column j of the row-major [2, 3]
                BOOST_TEST(std::fabs(out[j * 2 + r] - written) <= tolerance * std::fabs(written),
                           adaptk::dtype_name(type) << " column " << j << " row " << r);
            }
    }
}

// Q8_0 from a GGUF file: rows are whole blocks, and the column reads of the
// down-style matrix cut blocks at every block size tried.
BOOST_DATA_TEST_CASE(streams_q8_0_vectors_exactly, bdata::make({1, 7, 20, 64, 257}), block) {
    constexpr std::uint64_t d = 64;
    std::mt19937_64 rng(99);
    std::normal_distribution<float> normal;
    std::vector<adaptk::test::gguf_model_tensor> tensors;
    for (const auto& [name, rows, cols] : std::vector<matrix_spec>{{"blk.0.attn_q.weight", d, d},
                                                                    {"blk.0.ffn_up.weight", 300, d},
                                                                    {"blk.0.ffn_down.weight", d, 96}}) {
        std::vector<float> values(rows * cols);
        for (auto& v : values) v = normal(rng);
        tensors.push_back({name, {rows, cols}, std::move(values), adaptk::test::gguf_code::type_q8_0});
    }
    adaptk::test::temp_dir dir;
    adaptk::test::write_bytes(dir / "model.gguf", adaptk::test::gguf_model_image(tensors, {}));
    const adaptk::checkpoint ck(dir / "model.gguf");
    std::vector<std::string> notes;
    const auto matrices = ck.matrices(d, notes);
    BOOST_TEST_REQUIRE(matrices.size() == 3u);
    for (const auto& m : matrices) {
        BOOST_TEST_CONTEXT(m.name) {
            BOOST_TEST((m.type == dtype::q8_0));
            check_stream<float>(m, static_cast<std::size_t>(block));
            check_stream<double>(m, static_cast<std::size_t>(block));
        }
    }
    BOOST_TEST(!matrices[2].vectors_are_rows);  // down: [64, 96], vectors are columns
}

// llama2.c version 2, groups of 8: down_proj's rows of 20 values cut groups,
// and its column reads cut them again at every block size tried.
BOOST_DATA_TEST_CASE(streams_llama2c_int8_groups_exactly, bdata::make({1, 3, 7, 64}), block) {
    const adaptk::test::llama2c_spec spec{16, 20, 1, 4, 2, 12, 8, false, 2, 8};
    std::uint64_t seed = 7;
    adaptk::test::temp_dir dir;
    adaptk::test::write_bytes(dir / "model.bin", adaptk::test::llama2c_image(spec, [&](const auto& t) {
        return adaptk::test::generated_matrix(seed++, t.rows, t.cols == 0 ? 1 : t.cols);
    }));
    const adaptk::checkpoint ck(dir / "model.bin");
    std::vector<std::string> notes;
    const auto matrices = ck.matrices(16, notes);
    BOOST_TEST_REQUIRE(matrices.size() == 9u);  // q, k, v, o, gate, up, down, embed and the stored head
    std::size_t by_columns = 0;
    for (const auto& m : matrices) {
        by_columns += m.vectors_are_rows ? 0 : 1;
        BOOST_TEST_CONTEXT(m.name) {
            BOOST_TEST((m.type == dtype::q8_groups));
            BOOST_TEST(m.scale_group == 8u);
            check_stream<float>(m, static_cast<std::size_t>(block));
            check_stream<double>(m, static_cast<std::size_t>(block));
        }
    }
    BOOST_TEST(by_columns == 1u);  // down_proj [16, 20]
}

BOOST_AUTO_TEST_CASE(streams_a_matrix_without_a_mapping) {
    // A weight_matrix over plain memory: no page hints, same values.
    std::vector<float> values(6 * 4);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
    const auto bytes = std::as_bytes(std::span<const float>(values));
    weight_matrix m{"w", {adaptk::weight_type::down, adaptk::weight_group::mlp, 0}, dtype::f32, 4, 6, false, bytes,
                    nullptr, 0};
    check_stream<float>(m, 4);
    m.vectors_are_rows = true;
    m.rows = 6;
    m.cols = 4;
    check_stream<double>(m, 5);
}

BOOST_AUTO_TEST_CASE(stories260k_down_proj_columns_match_the_file) {
    const adaptk::checkpoint ck(adaptk::test::data_dir() / "stories260K" / "hf" / "bf16" / "model.safetensors");
    std::vector<std::string> notes;
    const auto matrices = ck.matrices(64, notes);
    BOOST_TEST_REQUIRE(matrices.size() == 36u);  // lm_head is tied to the embedding
    for (const auto& m : matrices)
        if (m.kind.type == adaptk::weight_type::down || m.kind.type == adaptk::weight_type::embed)
            BOOST_TEST_CONTEXT(m.name) {
                check_stream<float>(m, 64);
                check_stream<std::uint16_t>(m, 64);
            }
}

BOOST_AUTO_TEST_CASE(block_size_zero_is_treated_as_one) {
    std::vector<float> values{1, 2, 3, 4, 5, 6};
    const weight_matrix m{"w", {adaptk::weight_type::q, adaptk::weight_group::attention, 0}, dtype::f32, 3, 2, true,
                          std::as_bytes(std::span<const float>(values)), nullptr, 0};
    adaptk::vector_stream<float> stream(m, 0);
    std::vector<float> out(2);
    BOOST_TEST(stream.next(out.data()) == 1u);
    BOOST_TEST(out[0] == 1.0f);
    BOOST_TEST(out[1] == 2.0f);
}

// On a 32-bit system a block (or a stored row) can exceed the address space
// (half of 2^32 vectors of 8 bytes: 2^34 bytes); on a 64-bit one the same
// check refuses a block past 2^64 bytes. Either way in one line.
BOOST_AUTO_TEST_CASE(a_block_beyond_the_address_space_is_refused_in_one_line) {
    std::vector<float> values{1, 2, 3, 4, 5, 6};
    const weight_matrix m{"w", {adaptk::weight_type::q, adaptk::weight_group::attention, 0}, dtype::f32, 3, 2, true,
                          std::as_bytes(std::span<const float>(values)), nullptr, 0};
    const std::size_t huge = std::numeric_limits<std::size_t>::max() / 2;
    const std::string bytes =
        sizeof(std::size_t) == 8 ? "more than 2^64" : std::to_string(std::uint64_t{huge} * 2 * sizeof(float));
    BOOST_CHECK_EXCEPTION(adaptk::vector_stream<float>(m, huge), adaptk::format_error,
                          [&](const adaptk::format_error& e) {
                              return e.tensor() == "w" &&
                                     e.defect() == "a block of " + std::to_string(huge) + " vectors takes " + bytes +
                                                       " bytes, more than this system's address space" &&
                                     std::string(e.what()).find('\n') == std::string::npos;
                          });
}

BOOST_AUTO_TEST_SUITE_END()
