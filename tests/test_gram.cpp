#define BOOST_TEST_MODULE gram
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adaptk/dtype.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/gram_kernel.hpp"

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

// d×n Gaussian values rounded to BF16: their bit patterns and their exact values.
struct bf16_block {
    std::vector<std::uint16_t> bits;
    arma::mat values;
};

bf16_block random_bf16(std::size_t d, std::size_t n, unsigned seed) {
    arma::arma_rng::set_seed(seed);
    const arma::fmat x(d, n, arma::fill::randn);
    bf16_block block{std::vector<std::uint16_t>(x.n_elem), arma::mat(d, n)};
    for (std::size_t i = 0; i < x.n_elem; ++i) {
        block.bits[i] = adaptk::float_to_bf16(x[i]);
        block.values[i] = adaptk::bf16_to_float(block.bits[i]);
    }
    return block;
}

void feed(gram_accumulator& acc, const bf16_block& x, std::size_t block) {
    const std::size_t d = x.values.n_rows, n = x.values.n_cols;
    for (std::size_t first = 0; first < n; first += block) acc.add(x.bits.data() + first * d, std::min(block, n - first));
}

// Largest |actual − expected| in units of (|X||X|ᵀ)ᵢⱼ: float32 sums of n exact
// products are off by at most n·2⁻²⁴ of that (γₙ, recursive summation).
double error_in_units_of_abs_products(const arma::mat& actual, const arma::mat& x) {
    const arma::mat expected = x * x.t();
    const arma::mat scale = arma::abs(x) * arma::abs(x).t();
    return arma::max(arma::vectorise(arma::abs(actual - expected) / scale));
}

double relative_error(const arma::mat& actual, const arma::mat& expected) {
    return arma::norm(actual - expected, "fro") / arma::norm(expected, "fro");
}

// Every kernel adaptk knows, by name; the ones this CPU cannot run are
// skipped with a message (meson runs this test with --log_level=message).
std::vector<std::string> kernel_names() {
    std::vector<std::string> names;
    for (const adaptk::gram_kernel kernel : adaptk::all_gram_kernels())
        names.emplace_back(adaptk::gram_kernel_name(kernel));
    return names;
}

// A fresh accumulator on the named kernel, or none (and a message) when this CPU cannot run it.
std::optional<gram_accumulator> on_kernel(const std::string& name, std::size_t d, bool track_sum = false,
                                          std::size_t panel_rows = adaptk::gram_panel_rows) {
    for (const adaptk::gram_kernel kernel : adaptk::all_gram_kernels()) {
        if (adaptk::gram_kernel_name(kernel) != name) continue;
        if (!adaptk::gram_kernel_runnable(kernel)) {
            BOOST_TEST_MESSAGE("Gram kernel " << name << " skipped: this CPU cannot run it");
            return std::nullopt;
        }
        gram_accumulator acc(d, track_sum, panel_rows);
        acc.use_kernel(kernel);
        BOOST_TEST((acc.kernel() == kernel));
        return acc;
    }
    BOOST_FAIL("no kernel " << name);
    return std::nullopt;
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

// At d = 1000 the first 288-row panel's float64 additions are split between
// the BLAS threads (column ranges of equal work), the later ones are not.
BOOST_AUTO_TEST_CASE(float_blocks_at_a_size_where_the_additions_are_shared_match_dense_product) {
    arma::arma_rng::set_seed(11);
    const arma::fmat x(1000, 150, arma::fill::randn);
    const arma::mat exact = arma::conv_to<arma::mat>::from(x);
    gram_accumulator acc(1000);
    feed(acc, x, 100);
    BOOST_TEST(relative_error(acc.gram(), exact * exact.t()) <= 1e-6);
    const arma::mat& upper = acc.upper();
    BOOST_TEST(arma::norm(arma::trimatl(upper, -1), "fro") == 0.0);  // nothing below the diagonal
}

// Panels of 48 rows split d = 100 into 48 + 48 + 4 rows (ssyrk on each
// diagonal square, sgemm right of it); a panel taller than d is one ssyrk.
BOOST_DATA_TEST_CASE(panel_height_only_changes_float32_rounding, bdata::make({1, 48, 96, 288}), panel_rows) {
    arma::arma_rng::set_seed(7);
    const arma::fmat x(100, 700, arma::fill::randn);
    const arma::mat exact = arma::conv_to<arma::mat>::from(x);
    gram_accumulator acc(100, false, static_cast<std::size_t>(panel_rows));
    BOOST_TEST(acc.panel_rows() == (panel_rows <= 48 ? 48u : static_cast<std::size_t>(panel_rows)));
    feed(acc, x, 300);
    BOOST_TEST(acc.count() == 700u);
    // At most 300 float32 terms per partial sum before the float64 add.
    BOOST_TEST(relative_error(acc.gram(), exact * exact.t()) <= 1e-6);
    BOOST_TEST(acc.trace() == arma::accu(arma::square(exact)), boost::test_tools::tolerance(1e-6));
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

BOOST_AUTO_TEST_CASE(state_round_trips_and_merges_like_the_accumulators) {
    arma::arma_rng::set_seed(5);
    const arma::mat a(9, 30, arma::fill::randn), b(9, 17, arma::fill::randn);
    gram_accumulator left(9, true), right(9, true);
    feed(left, arma::fmat(arma::conv_to<arma::fmat>::from(a)), 8);  // float blocks, each summed in a float32 panel
    feed(right, b, 8);
    const adaptk::gram_state state = left.state();
    BOOST_TEST(state.upper.size() == adaptk::packed_upper_size(9));
    BOOST_TEST(state.count == 30u);
    // The rounding inputs travel too: 30 float vectors in blocks of 8 are four
    // float32 runs (8, 8, 8, 6), each added into float64 at its block's end;
    // double blocks make none.
    BOOST_TEST(state.longest_float_run == 8u);
    BOOST_TEST(state.flushes == 4u);
    BOOST_TEST(right.state().longest_float_run == 0u);
    // Column j of the packed triangle holds rows 0..j.
    const arma::mat expected = left.gram();
    BOOST_TEST(state.upper[adaptk::packed_upper_size(4) + 2] == expected(2, 4));
    gram_accumulator merged = gram_accumulator::from_state(9, state);
    merged += gram_accumulator::from_state(9, right.state());
    left += right;
    BOOST_TEST(merged.count() == 47u);
    BOOST_TEST(relative_error(merged.gram(), left.gram()) == 0.0);
    BOOST_TEST(arma::norm(merged.sum() - left.sum()) == 0.0);
    BOOST_TEST(relative_error(merged.centered(), left.centered()) <= 1e-15);
    // So a merge of states bounds its rounding as the merged accumulators do.
    BOOST_TEST(merged.rounding().bound == left.rounding().bound);
    BOOST_TEST(merged.rounding().estimate == left.rounding().estimate);
}

BOOST_AUTO_TEST_CASE(state_of_other_sizes_is_rejected) {
    gram_accumulator acc(4);
    BOOST_CHECK_THROW(gram_accumulator::from_state(5, acc.state()), std::invalid_argument);
    adaptk::gram_state state = acc.state();
    state.sum = arma::vec(3, arma::fill::zeros);
    BOOST_CHECK_THROW(gram_accumulator::from_state(4, state), std::invalid_argument);
    BOOST_TEST(gram_accumulator::from_state(4, acc.state()).gram().is_zero());
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

// d = 131: the mirroring's tiles of 64, two whole and one part.
BOOST_AUTO_TEST_CASE(upper_lend_and_take_at_a_size_of_several_tiles) {
    arma::arma_rng::set_seed(6);
    const arma::mat x(131, 300, arma::fill::randn);
    const arma::mat dense = x * x.t();
    gram_accumulator acc(131);
    feed(acc, x, 64);
    const arma::mat& upper = acc.upper();
    BOOST_TEST(relative_error(arma::trimatu(upper), arma::trimatu(dense)) <= 1e-13);
    BOOST_TEST(arma::accu(arma::abs(arma::trimatl(upper, -1))) == 0.0);
    const std::span<std::byte> lent = acc.lend();
    BOOST_TEST(lent.size() == 131u * 131u * sizeof(double));
    BOOST_TEST(static_cast<const void*>(lent.data()) == static_cast<const void*>(upper.memptr()));
    BOOST_CHECK_THROW(feed(acc, x, 64), std::logic_error);  // lent until reset()
    std::ranges::fill(lent, std::byte{0xff});  // the borrower writes everywhere (NaNs)
    // After a loan reset() clears everything, otherwise the upper triangle:
    // both leave the Gram of what comes next, with zeros below it.
    for (int round = 0; round < 2; ++round) {
        acc.reset();
        feed(acc, x, 64);
        BOOST_TEST(relative_error(arma::trimatu(acc.upper()), arma::trimatu(dense)) <= 1e-13);
        BOOST_TEST(arma::accu(arma::abs(arma::trimatl(acc.upper(), -1))) == 0.0);
    }
    const arma::mat taken = acc.take(false);
    BOOST_TEST(taken.is_symmetric());
    BOOST_TEST(relative_error(taken, dense) <= 1e-13);
    BOOST_TEST(acc.lend().empty());  // take() moved the buffer out
}

BOOST_AUTO_TEST_CASE(trace_is_sum_of_squared_norms) {
    arma::arma_rng::set_seed(6);
    const arma::mat x(9, 31, arma::fill::randn);
    gram_accumulator acc(9);
    feed(acc, x, 5);
    BOOST_TEST(acc.trace() == arma::accu(arma::square(x)), boost::test_tools::tolerance(1e-12));
}

// Odd dimensions: partial panels (16 rows on AVX-512, 4 on Arm), row blocks
// cut short (48 and 12 rows), column tiles past d, a panel of 96 rows (two
// 48-row slots, one per thread; the fp32 path: d = 100 is 96 + 4 rows, d = 300
// three panels and 12 rows). 1000 vectors: two 256-pair sweeps; at d = 300
// the blocks are big enough to be shared among threads.
BOOST_DATA_TEST_CASE(bf16_blocks_match_dense_float64_on_every_kernel,
                     bdata::make({37, 80, 100, 130, 300}) * bdata::make({1, 7, 257, 1000}) * bdata::make(kernel_names()),
                     dim, block, kernel) {
    const auto d = static_cast<std::size_t>(dim);
    std::optional<gram_accumulator> acc = on_kernel(kernel, d, false, 96);
    if (!acc) return;
    const bf16_block x = random_bf16(d, 1100, 8);
    feed(*acc, x, static_cast<std::size_t>(block));
    BOOST_TEST(acc->count() == 1100u);
    // One block's float32 terms per entry before the float64 add.
    BOOST_TEST(error_in_units_of_abs_products(acc->gram(), x.values) <= (block + 1) * 0x1p-24);
    BOOST_TEST(relative_error(acc->gram(), x.values * x.values.t()) <= 1e-5);
}

BOOST_DATA_TEST_CASE(bf16_kernels_equal_fp32_path_to_float32_rounding,
                     bdata::make({1, 7, 1000}) * bdata::make(kernel_names()), block, kernel) {
    std::optional<gram_accumulator> fast = on_kernel(kernel, 37, true);
    if (!fast) return;
    const bf16_block x = random_bf16(37, 5000, 9);
    gram_accumulator plain(37, true);
    plain.use_kernel(adaptk::gram_kernel::fp32);
    feed(*fast, x, static_cast<std::size_t>(block));
    feed(plain, x, static_cast<std::size_t>(block));
    BOOST_TEST(relative_error(fast->gram(), plain.gram()) <= 2e-6);
    BOOST_TEST(arma::norm(fast->sum() - arma::sum(x.values, 1)) <= 1e-12 * arma::norm(x.values, "fro"));
    BOOST_TEST(arma::norm(fast->sum() - plain.sum()) <= 1e-12 * arma::norm(x.values, "fro"));
    // 5000 vectors: each block's float32 panel went into float64 at once.
    BOOST_TEST(error_in_units_of_abs_products(fast->gram(), x.values) <= (block + 1) * 0x1p-24);
    // Same accuracy class as the ssyrk path: within twice its distance from
    // float64. (BFDOT does not round like a float32 fma, under Arm's own BF16
    // dot-product rules; with 1000-vector blocks the Arm kernel measured 1.65x
    // ssyrk's error under qemu. The bound above is the contract.)
    const arma::mat exact = x.values * x.values.t();
    BOOST_TEST(relative_error(fast->gram(), exact) <= 2 * relative_error(plain.gram(), exact));
    arma::mat centered = x.values;
    centered.each_col() -= arma::mean(x.values, 1);
    BOOST_TEST(relative_error(fast->centered(), centered * centered.t()) <= 1e-5);
}

BOOST_AUTO_TEST_CASE(bf16_blocks_mix_with_float_blocks) {
    const bf16_block x = random_bf16(21, 300, 10);
    const arma::fmat as_float = arma::conv_to<arma::fmat>::from(x.values);
    gram_accumulator acc(21);
    acc.add(x.bits.data(), 100);
    acc.add(as_float.colptr(100), 100);
    acc.add(x.bits.data() + 200 * 21, 100);
    BOOST_TEST(error_in_units_of_abs_products(acc.gram(), x.values) <= 301 * 0x1p-24);
}

// Every float block is one float32 run, added to the float64 Gram at once.
BOOST_AUTO_TEST_CASE(each_float_block_is_one_float32_run) {
    arma::arma_rng::set_seed(3);
    const arma::fmat x(8, 12000, arma::fill::randn);
    gram_accumulator blocks(8);
    feed(blocks, x, 1000);
    BOOST_TEST(blocks.longest_float_run() == 1000u);
    gram_accumulator large(8);
    feed(large, x, 5000);
    BOOST_TEST(large.longest_float_run() == 5000u);
    gram_accumulator doubles(8);
    feed(doubles, arma::conv_to<arma::mat>::from(x), 1000);
    BOOST_TEST(doubles.longest_float_run() == 0u);
}

// The rounding bound holds for every eigenvalue against the float64 Gram of
// the same values, for float runs set by the flush size and by a large block.
BOOST_DATA_TEST_CASE(rounding_bound_holds_against_a_float64_gram, bdata::make({64, 1000, 6000}), block) {
    constexpr std::size_t d = 24, n = 12000;
    arma::arma_rng::set_seed(29);
    arma::fmat x(d, n, arma::fill::randn);
    x.each_col() %= arma::exp(arma::linspace<arma::fvec>(0, 6, d));  // a wide spread of scales
    x.row(0) += 50.0f;                                                // and a large common component
    gram_accumulator acc(d);
    feed(acc, x, static_cast<std::size_t>(block));
    const arma::mat reference = arma::conv_to<arma::mat>::from(x) * arma::conv_to<arma::mat>::from(x).t();
    const arma::vec exact = arma::eig_sym(reference);
    const arma::vec accumulated = arma::eig_sym(acc.gram());
    const adaptk::gram_rounding rounding = acc.rounding();
    const double error = arma::max(arma::abs(accumulated - exact));
    BOOST_TEST_MESSAGE("block " << block << ": error " << error << ", estimate " << rounding.estimate << ", bound "
                                << rounding.bound << ", trace " << arma::trace(reference));
    BOOST_TEST(error <= rounding.bound);
    BOOST_TEST(rounding.estimate <= rounding.bound);
    BOOST_TEST(rounding.bound <= 1e-3 * arma::trace(reference));  // a bound that says something
}

BOOST_AUTO_TEST_SUITE_END()
