#define BOOST_TEST_MODULE tables
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "adaptk/tables.hpp"
#include "spectrum_fixture.hpp"

using namespace adaptk;
namespace tt = boost::test_tools;

namespace {

// Two attention types and one MLP type in d = 4, with spectra chosen by hand
// and universal captures as the analysis would leave them.
analysis_result hand_result() {
    analysis_result r;
    r.dim = 4;
    r.k = 2;
    r.universal_k = 3;
    auto add = [&](weight_type type, std::uint64_t vectors, arma::vec lambda, arma::vec capture) {
        r.types.push_back(test::hand_spectrum(type, vectors, 4, std::move(lambda), std::move(capture)));
    };
    add(weight_type::q, 8, {4, 3, 2, 1}, {0.3, 0.3, 0.2});
    add(weight_type::k, 4, {9, 1, 0, 0}, {0.5, 0.2, 0.2});
    add(weight_type::up, 12, {1, 1, 1, 1}, {0.25, 0.25, 0.25});
    return r;
}

double number(const cell& c) {
    if (const auto* i = std::get_if<std::int64_t>(&c)) return static_cast<double>(*i);
    return std::get<double>(c);
}

const std::vector<cell>& row_named(const table& t, const std::string& name) {
    for (const auto& row : t.rows)
        if (std::get<std::string>(row[0]) == name) return row;
    throw std::runtime_error("no row " + name);
}

std::size_t column(const table& t, const std::string& name) {
    for (std::size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i] == name) return i;
    throw std::runtime_error("no column " + name);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tables)

BOOST_AUTO_TEST_CASE(threshold_columns_are_named_by_percent) {
    BOOST_TEST(threshold_column(0.5) == "k50");
    BOOST_TEST(threshold_column(0.9) == "k90");
    BOOST_TEST(threshold_column(0.99) == "k99");
    BOOST_TEST(threshold_column(0.995) == "k99_5");
}

BOOST_AUTO_TEST_CASE(profile_rows_follow_the_definitions) {
    const table t = profile_table(hand_result(), {0.5, 0.9, 0.99});
    BOOST_TEST(t.columns.back() == "k99");
    const auto& q = row_named(t, "q");
    BOOST_TEST(std::get<std::string>(q[column(t, "group")]) == "attention");
    BOOST_TEST(number(q[column(t, "energy")]) == 10.0);
    BOOST_TEST(number(q[column(t, "pr")]) == 100.0 / 30.0, tt::tolerance(1e-14));
    BOOST_TEST(number(q[column(t, "r2_type")]) == 0.7, tt::tolerance(1e-14));
    BOOST_TEST(number(q[column(t, "r2_universal")]) == 0.6, tt::tolerance(1e-14));
    BOOST_TEST(number(q[column(t, "gain")]) == 0.7 / 0.6, tt::tolerance(1e-14));
    BOOST_TEST(number(q[column(t, "k99")]) == 4.0);
    const auto& k = row_named(t, "k");
    BOOST_TEST(number(k[column(t, "k50")]) == 1.0);
    BOOST_TEST(number(k[column(t, "k90")]) == 1.0);  // 9 of 10
}

BOOST_AUTO_TEST_CASE(groups_are_plain_means_and_ratio_row_divides_them) {
    const table t = groups_table(hand_result());
    const auto& attention = row_named(t, "attention");
    BOOST_TEST(std::get<std::string>(attention[1]) == "q k");
    const double pr_q = 100.0 / 30.0, pr_k = 100.0 / 82.0, pr_up = 4.0;
    BOOST_TEST(number(attention[column(t, "pr")]) == (pr_q + pr_k) / 2, tt::tolerance(1e-14));
    BOOST_TEST(number(attention[column(t, "r2_type")]) == (0.7 + 1.0) / 2, tt::tolerance(1e-14));
    const auto& all = row_named(t, "all");
    const double r2_type = (0.7 + 1.0 + 0.5) / 3, r2_universal = (0.6 + 0.7 + 0.5) / 3;
    BOOST_TEST(number(all[column(t, "gain")]) == r2_type / r2_universal, tt::tolerance(1e-14));
    const auto& ratio = row_named(t, "mlp/attention");
    BOOST_TEST(number(ratio[column(t, "pr")]) == pr_up / ((pr_q + pr_k) / 2), tt::tolerance(1e-14));
    BOOST_CHECK_THROW(row_named(t, "embedding"), std::runtime_error);  // absent groups have no row
}

BOOST_AUTO_TEST_CASE(frontier_means_over_types_per_k) {
    const table t = frontier_table(hand_result(), {1, 2});
    BOOST_TEST(t.rows.size() == 2u);
    const auto& first = t.rows[0];
    BOOST_TEST(number(first[column(t, "fraction_of_d")]) == 0.25);
    BOOST_TEST(number(first[column(t, "compression")]) == 4.0);
    BOOST_TEST(number(first[column(t, "r2_type_mean")]) == (0.4 + 0.9 + 0.25) / 3, tt::tolerance(1e-14));
    BOOST_TEST(number(first[column(t, "r2_universal_mean")]) == (0.3 + 0.5 + 0.25) / 3, tt::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(budget_counts_coefficients_plus_basis_and_finds_the_uniform_k) {
    const table t = budget_table(hand_result(), 0.9);
    // q: k90 = 3 -> min(3·(8+4), 32) = 32 (dense is cheaper); k: k90 = 1 -> 8; up: k90 = 4 -> 48 = dense.
    const auto& q = row_named(t, "q");
    BOOST_TEST(number(q[column(t, "k")]) == 3.0);
    BOOST_TEST(number(q[column(t, "params_kept")]) == 32.0);
    const auto& k = row_named(t, "k");
    BOOST_TEST(number(k[column(t, "params_kept")]) == 8.0);
    BOOST_TEST(number(k[column(t, "fraction")]) == 0.5);
    const auto& total = row_named(t, "total");
    BOOST_TEST(number(total[column(t, "params_kept")]) == 88.0);
    BOOST_TEST(number(total[column(t, "params_original")]) == 96.0);
    // Uniform K = 2 spends min(24,32) + min(16,16) + min(32,48) = 72 ≤ 88; K = 3 spends 32+16+48 = 96.
    BOOST_TEST(number(total[column(t, "k_uniform")]) == 2.0);
    BOOST_TEST(number(q[column(t, "energy_kept_uniform")]) == 0.7, tt::tolerance(1e-14));
    for (const auto& row : t.rows) {
        const double fraction = number(row[column(t, "fraction")]);
        BOOST_TEST((fraction > 0.0 && fraction <= 1.0));
    }
}

BOOST_AUTO_TEST_CASE(spectrum_is_long_format_with_cumulative_fraction) {
    const table t = spectrum_table(hand_result());
    BOOST_TEST(t.rows.size() == 12u);
    BOOST_TEST(number(t.rows[1][column(t, "cumulative_fraction")]) == 0.7, tt::tolerance(1e-14));
    BOOST_TEST(number(t.rows[3][column(t, "cumulative_fraction")]) == 1.0, tt::tolerance(1e-14));
    BOOST_TEST(number(t.rows[4][column(t, "index")]) == 1.0);
}

// The randomized method's view of hand_result(): q keeps its top 2 values
// (4, 3 of energy 10), k its top 2 (9, 1 of 10), with error estimates/bounds.
analysis_result partial_result() {
    analysis_result r = hand_result();
    r.how = method::rsvd;
    r.universal_k = 2;
    for (auto& t : r.types) {
        t.eigenvalues = arma::vec(t.eigenvalues.head(2));
        t.universal_capture = arma::vec(t.universal_capture.head(2));
        t.eigenvalue_changes = {0.1, 0.2};
        t.eigenvalue_errors = {0.5, 1.0};
    }
    return r;
}

bool empty(const cell& c) { return std::holds_alternative<std::monostate>(c) || (std::holds_alternative<double>(c) && std::isnan(std::get<double>(c))); }

BOOST_AUTO_TEST_CASE(partial_spectra_leave_what_they_cannot_know_empty) {
    const table t = profile_table(partial_result(), {0.5, 0.9, 0.99});
    const auto& q = row_named(t, "q");
    BOOST_TEST(std::get<std::string>(q[column(t, "method")]) == "rsvd");
    BOOST_TEST(number(q[column(t, "energy")]) == 10.0);
    BOOST_TEST(empty(q[column(t, "pr")]));
    BOOST_TEST(empty(q[column(t, "entropy_rank")]));
    BOOST_TEST(number(q[column(t, "k50")]) == 2.0);  // 4 + 3 = 7 ≥ 5: within the top values
    BOOST_TEST(number(q[column(t, "r2_type")]) == 0.7, tt::tolerance(1e-14));
    BOOST_TEST(number(q[column(t, "stable_rank")]) == 2.5, tt::tolerance(1e-14));  // energy / λ₁ needs λ₁ only
    BOOST_TEST(number(q[column(t, "error_estimate")]) == 0.03, tt::tolerance(1e-12));  // (0.1 + 0.2) / 10
    BOOST_TEST(number(q[column(t, "error_bound")]) == 0.15, tt::tolerance(1e-12));
    const auto& k = row_named(t, "k");
    BOOST_TEST(number(k[column(t, "k90")]) == 1.0);  // 9 of 10 within the top value
    BOOST_TEST(number(k[column(t, "k99")]) == 2.0);
    BOOST_TEST(empty(q[column(t, "k90")]));  // 7 of 10: beyond the sketch
    // Exact rows carry the rounding contract: (k + 1)·e / energy in profile,
    // e itself for every eigenvalue in spectrum.
    analysis_result exact_result = hand_result();
    for (auto& type : exact_result.types) {
        type.rounding_bound = 0.01;
        type.rounding_estimate = 0.001;
    }
    const table exact = profile_table(exact_result, {0.5, 0.9});
    const double terms = static_cast<double>(exact_result.k + 1);
    BOOST_TEST(number(row_named(exact, "q")[column(exact, "error_bound")]) == terms * 0.01 / 10, tt::tolerance(1e-12));
    BOOST_TEST(number(row_named(exact, "q")[column(exact, "error_estimate")]) == terms * 0.001 / 10, tt::tolerance(1e-12));
    BOOST_TEST(std::get<std::string>(row_named(exact, "q")[column(exact, "method")]) == "exact");
    const table spectrum = spectrum_table(exact_result);
    for (const auto& row : spectrum.rows) {
        BOOST_TEST(number(row[column(spectrum, "error_bound")]) == 0.01);
        BOOST_TEST(number(row[column(spectrum, "error_estimate")]) == 0.001);
    }
}

BOOST_AUTO_TEST_CASE(partial_spectra_frontier_is_empty_past_k_and_budget_refuses) {
    const table t = frontier_table(partial_result(), {1, 2, 3});
    BOOST_TEST(number(t.rows[1][column(t, "r2_type_mean")]) == (0.7 + 1.0 + 0.5) / 3, tt::tolerance(1e-14));
    BOOST_TEST(empty(t.rows[2][column(t, "r2_type_mean")]));
    BOOST_TEST(empty(t.rows[2][column(t, "r2_universal_mean")]));
    BOOST_CHECK_THROW(budget_table(partial_result(), 0.9), std::invalid_argument);
    const table spectrum = spectrum_table(partial_result());
    BOOST_TEST(spectrum.rows.size() == 6u);
    BOOST_TEST(number(spectrum.rows[1][column(spectrum, "error_bound")]) == 1.0);
    BOOST_TEST(number(spectrum.rows[1][column(spectrum, "error_estimate")]) == 0.2);
}

BOOST_AUTO_TEST_SUITE_END()
