#define BOOST_TEST_MODULE spill
#include <boost/test/unit_test.hpp>

#include <cstdint>

#include <armadillo>

#include "detail/spill.hpp"

using adaptk::detail::spill_file;

BOOST_AUTO_TEST_SUITE(spill_test)

// Slot s, column c of n×n float64 matrices starts after (s·n + c)·n doubles.
// At n = 8192 the 9th type's slot starts at 8·8192²·8 B = 4 GiB exactly: a
// 32-bit size_t wraps it to 0, onto the first type's Gram.
BOOST_AUTO_TEST_CASE(offsets_are_64_bit_past_4_gib) {
    const std::uint64_t n = 8192;
    BOOST_TEST(spill_file::byte_offset(8192, 8, 0) == std::uint64_t{1} << 32);
    BOOST_TEST(spill_file::byte_offset(8192, 8, 5) == (8 * n + 5) * n * 8);
    BOOST_TEST(spill_file::byte_offset(8192, 20, 8191) == (20 * n + 8191) * n * 8);
    BOOST_TEST(spill_file::byte_offset(3, 2, 1) == (2u * 3 + 1) * 3 * 8);
}

namespace {

// The whole matrix in `slot`.
arma::mat whole_matrix(const spill_file& spill, std::size_t n, std::size_t slot) {
    arma::mat m(n, n);
    spill.read(slot, m.memptr());
    return m;
}

}  // namespace

// Written, added to and read back against the same arithmetic in memory.
BOOST_AUTO_TEST_CASE(slots_round_trip_and_add_in_column_chunks) {
    constexpr std::size_t n = 300;  // more than one chunk of 256 columns
    arma::arma_rng::set_seed(3);
    const arma::mat a(n, n, arma::fill::randn), b(n, n, arma::fill::randn), c(n, n, arma::fill::randn);
    spill_file spill(n, {});
    const std::size_t first = spill.write(a);
    const std::size_t second = spill.write(b);
    BOOST_TEST(first == 0u);
    BOOST_TEST(second == 1u);
    spill.add(first, c);
    BOOST_TEST(arma::approx_equal(whole_matrix(spill, n, first), arma::mat(a + c), "absdiff", 0.0));
    BOOST_TEST(arma::approx_equal(whole_matrix(spill, n, second), b, "absdiff", 0.0));
    arma::mat columns(n, 7);
    spill.read_columns(second, 290, 7, columns.memptr());
    BOOST_TEST(arma::approx_equal(columns, b.cols(290, 296), "absdiff", 0.0));
    spill.overwrite(second, c);
    BOOST_TEST(arma::approx_equal(whole_matrix(spill, n, second), c, "absdiff", 0.0));
}

BOOST_AUTO_TEST_SUITE_END()
