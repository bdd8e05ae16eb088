#define BOOST_TEST_MODULE partition
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "adaptk/partition.hpp"

namespace bdata = boost::unit_test::data;
using namespace adaptk;

namespace {

// A TinyLlama-like list: per layer q, k (small), v (small), o, gate, up, down (large), then an embedding.
std::vector<weight_matrix> llama_like(std::size_t layers) {
    std::vector<weight_matrix> matrices;
    auto add = [&](weight_type type, std::uint64_t rows, std::uint64_t cols) {
        weight_matrix m;
        m.kind = {type, group_of(type), std::nullopt};
        m.type = dtype::bf16;
        m.rows = rows;
        m.cols = cols;
        matrices.push_back(m);
    };
    for (const weight_type type : {weight_type::q, weight_type::k, weight_type::v, weight_type::o, weight_type::gate,
                                   weight_type::up, weight_type::down})
        for (std::size_t l = 0; l < layers; ++l) {
            const bool small = type == weight_type::k || type == weight_type::v;
            const bool large = type == weight_type::gate || type == weight_type::up || type == weight_type::down;
            add(type, small ? 256 : large ? 5632 : 2048, 2048);
        }
    add(weight_type::embed, 32000, 2048);
    return matrices;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(partition)

BOOST_DATA_TEST_CASE(parts_are_contiguous_and_balanced_within_one_matrix, bdata::make({1, 2, 3, 4, 7, 64}), parts) {
    const auto matrices = llama_like(22);
    const auto part_of = split_by_bytes(matrices, parts);
    BOOST_TEST_REQUIRE(part_of.size() == matrices.size());
    std::vector<std::uint64_t> bytes(parts, 0);
    std::uint64_t total = 0, largest = 0;
    for (std::size_t m = 0; m < matrices.size(); ++m) {
        BOOST_TEST(part_of[m] < static_cast<std::size_t>(parts));
        if (m > 0) BOOST_TEST(part_of[m] >= part_of[m - 1]);  // contiguous runs in list order
        bytes[part_of[m]] += matrices[m].vector_bytes();
        total += matrices[m].vector_bytes();
        largest = std::max(largest, matrices[m].vector_bytes());
    }
    // Each part holds its equal share give or take one matrix (a matrix goes where its middle byte is).
    for (const std::uint64_t b : bytes)
        BOOST_TEST(std::abs(static_cast<double>(b) - static_cast<double>(total) / parts) <= static_cast<double>(largest));
    BOOST_TEST(part_of == split_by_bytes(matrices, parts));  // deterministic: every rank computes the same split
}

BOOST_AUTO_TEST_CASE(one_part_takes_everything_and_extra_parts_stay_empty) {
    const auto matrices = llama_like(1);
    for (const std::size_t p : split_by_bytes(matrices, 1)) BOOST_TEST(p == 0u);
    // 8 matrices, 20 parts: each matrix in one part, the embedding (most of the bytes) spans the last ones alone.
    const auto part_of = split_by_bytes(matrices, 20);
    BOOST_TEST(part_of.back() >= 10u);
    BOOST_TEST(part_of.front() == 0u);
}

BOOST_AUTO_TEST_CASE(zero_parts_is_rejected) {
    BOOST_CHECK_THROW(split_by_bytes(llama_like(1), 0), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
