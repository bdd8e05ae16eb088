#define BOOST_TEST_MODULE gram
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "adaptk/gram.hpp"

namespace bdata = boost::unit_test::data;
using adaptk::gram_accumulator;

namespace {

// Feeds the columns of x in blocks of `block` vectors.
template <class Real>
void feed(gram_accumulator& acc, const arma::Mat<Real>& x, std::size_t block) {
    for (std::size_t first = 0; first < x.n_cols; first += block) {
        const std::size_t count = std::min(block, static_cast<std::size_t>(x.n_cols) - first);
        acc.add(x.colptr(first), count);
    }
}

double relative_error(const arma::mat& actual, const arma::mat& expected) {
    return arma::norm(actual - expected, "fro") / arma::norm(expected, "fro");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gram)

BOOST_DATA_TEST_CASE(double_blocks_match_dense_product, bdata::make({1, 7, 64, 257, 1000}), block) {
    arma::arma_rng::set_seed(1);
    const arma::mat x(33, 1100, arma::fill::randn);
    gram_accumulator acc(33);
    feed(acc, x, static_cast<std::size_t>(block));
    BOOST_TEST(acc.count() == 1100u);
    BOOST_TEST(relative_error(acc.gram(), x * x.t()) <= 1e-13);
}

BOOST_DATA_TEST_CASE(float_blocks_match_dense_product_to_float_rounding, bdata::make({1, 7, 64, 257, 1000}), block) {
    arma::arma_rng::set_seed(2);
    const arma::fmat x(29, 1100, arma::fill::randn);
    const arma::mat exact = arma::conv_to<arma::mat>::from(x);
    gram_accumulator acc(29);
    feed(acc, x, static_cast<std::size_t>(block));
    // Each block is summed in float32 (≤ 1000 terms), blocks in float64.
    BOOST_TEST(relative_error(acc.gram(), exact * exact.t()) <= 1e-6);
}

BOOST_DATA_TEST_CASE(flush_interval_only_changes_float32_rounding, bdata::make({1, 100, 4096}), flush_vectors) {
    arma::arma_rng::set_seed(7);
    const arma::fmat x(16, 5000, arma::fill::randn);
    const arma::mat exact = arma::conv_to<arma::mat>::from(x);
    gram_accumulator acc(16, false, static_cast<std::size_t>(flush_vectors));
    feed(acc, x, 37);
    BOOST_TEST(acc.count() == 5000u);
    // At most 4096 float32 terms per partial sum before the float64 add.
    BOOST_TEST(relative_error(acc.gram(), exact * exact.t()) <= 2e-6);
    BOOST_TEST(acc.trace() == arma::accu(arma::square(exact)), boost::test_tools::tolerance(2e-6));
}

BOOST_AUTO_TEST_CASE(merged_accumulators_equal_one_accumulator) {
    arma::arma_rng::set_seed(3);
    const arma::mat a(12, 40, arma::fill::randn), b(12, 25, arma::fill::randn);
    gram_accumulator left(12, true), right(12, true), both(12, true);
    feed(left, a, 8);
    feed(right, b, 8);
    feed(both, arma::mat(arma::join_rows(a, b)), 8);
    left += right;
    BOOST_TEST(left.count() == 65u);
    BOOST_TEST(relative_error(left.gram(), both.gram()) <= 1e-14);
    BOOST_TEST(arma::norm(left.sum() - both.sum()) <= 1e-12);
}

BOOST_AUTO_TEST_CASE(merge_rejects_mismatched_accumulators) {
    gram_accumulator a(4), b(5), c(4, true);
    BOOST_CHECK_THROW(a += b, std::invalid_argument);
    BOOST_CHECK_THROW(a += c, std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(centered_gram_equals_gram_of_centered_vectors) {
    arma::arma_rng::set_seed(4);
    arma::mat x(10, 300, arma::fill::randn);
    x.each_col() += arma::linspace(1, 10, 10);  // a mean far from zero
    gram_accumulator acc(10, true);
    feed(acc, x, 64);
    arma::mat centered = x;
    centered.each_col() -= arma::mean(x, 1);
    const arma::mat expected = centered * centered.t();
    BOOST_TEST(relative_error(acc.centered(), expected) <= 1e-12);
    BOOST_TEST(relative_error(acc.take(true), expected) <= 1e-12);
}

BOOST_AUTO_TEST_CASE(take_moves_out_the_full_symmetric_matrix_and_reset_reuses) {
    arma::arma_rng::set_seed(5);
    const arma::mat x(20, 50, arma::fill::randn);
    gram_accumulator acc(20);
    feed(acc, x, 16);
    const arma::mat taken = acc.take(false);
    BOOST_TEST(taken.is_symmetric());
    BOOST_TEST(relative_error(taken, x * x.t()) <= 1e-13);
    acc.reset();
    BOOST_TEST(acc.count() == 0u);
    feed(acc, x, 16);
    BOOST_TEST(relative_error(acc.gram(), x * x.t()) <= 1e-13);
    BOOST_CHECK_THROW(acc.take(true), std::logic_error);  // no running sum was kept
}

BOOST_AUTO_TEST_CASE(trace_is_sum_of_squared_norms) {
    arma::arma_rng::set_seed(6);
    const arma::mat x(9, 31, arma::fill::randn);
    gram_accumulator acc(9);
    feed(acc, x, 5);
    BOOST_TEST(acc.trace() == arma::accu(arma::square(x)), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_SUITE_END()
