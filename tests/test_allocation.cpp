#define BOOST_TEST_MODULE allocation
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

// The greedy rank allocation against exhaustive search over every rank
// combination on small random spectra (the reference computes costs and
// objectives itself from the raw eigenvalues), plus the tables built from it.

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <map>
#include <random>

#include "adaptk/allocation.hpp"
#include "adaptk/checkpoint.hpp"
#include "spectrum_fixture.hpp"

using namespace adaptk;
namespace bdata = boost::unit_test::data;

namespace {

// A unit of `vectors` vectors in dimension d with the given descending spectrum.
allocation_unit make_unit(std::string name, std::uint64_t vectors, std::uint64_t d, std::vector<double> lambda) {
    allocation_unit u;
    u.name = std::move(name);
    u.type = weight_type::q;
    u.step_cost = vectors + d;
    u.parameters = vectors * d;
    u.eigenvalues = arma::vec(lambda);
    u.energy = arma::accu(u.eigenvalues);
    u.k_max = std::min<std::size_t>(vectors * d / (vectors + d), lambda.size());
    return u;
}

// Random units: d in [2, 5], vectors in [1, 8], eigenvalues uniform or
// heavy-tailed, some exactly zero, sorted descending.
std::vector<allocation_unit> random_units(std::mt19937_64& rng, std::size_t count) {
    std::uniform_int_distribution<std::uint64_t> dims(2, 5), vector_counts(1, 8);
    std::exponential_distribution<double> heavy(1.0);
    std::uniform_real_distribution<double> flat(0, 10);
    const std::uint64_t d = dims(rng);
    std::vector<allocation_unit> units;
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t vectors = vector_counts(rng);
        std::vector<double> lambda;
        for (std::uint64_t j = 0; j < d; ++j) {
            const double x = i % 2 ? std::pow(heavy(rng), 3) * (1 + i) : flat(rng);
            lambda.push_back(j + 1 < d && rng() % 5 == 0 ? 0.0 : x);
        }
        std::sort(lambda.rbegin(), lambda.rend());
        units.push_back(make_unit("u" + std::to_string(i), vectors, d, lambda));
    }
    return units;
}

// The reference objective straight from the definitions in allocation.hpp.
double reference_objective(const std::vector<allocation_unit>& units, const std::vector<std::size_t>& ranks,
                           allocation_objective objective) {
    double numerator = 0, denominator = 0;
    for (std::size_t i = 0; i < units.size(); ++i) {
        double kept = 0, energy = 0;
        for (std::size_t j = 0; j < units[i].eigenvalues.n_elem; ++j) {
            energy += units[i].eigenvalues[j];
            if (j < ranks[i]) kept += units[i].eigenvalues[j];
        }
        if (energy <= 0) continue;
        const double weight = objective == allocation_objective::weighted ? static_cast<double>(units[i].parameters) : energy;
        numerator += objective == allocation_objective::weighted ? weight * kept / energy : kept;
        denominator += weight;
    }
    return numerator / denominator;
}

struct optimum {
    double value = -1;
    std::uint64_t cost = 0;
};

// Every rank combination within k_max and the budget.
optimum exhaustive(const std::vector<allocation_unit>& units, std::uint64_t budget, allocation_objective objective) {
    optimum best;
    std::vector<std::size_t> ranks(units.size(), 0);
    while (true) {
        std::uint64_t cost = 0;
        for (std::size_t i = 0; i < units.size(); ++i) cost += ranks[i] * (units[i].parameters / units[i].eigenvalues.n_elem + units[i].eigenvalues.n_elem);
        if (cost <= budget) {
            const double value = reference_objective(units, ranks, objective);
            if (value > best.value) best = {value, cost};
        }
        std::size_t i = 0;
        while (i < units.size() && ranks[i] == units[i].k_max) ranks[i++] = 0;
        if (i == units.size()) return best;
        ++ranks[i];
    }
}

const std::vector<allocation_objective> objectives{allocation_objective::weighted, allocation_objective::energy};

}  // namespace

BOOST_AUTO_TEST_SUITE(allocation_tests)

BOOST_DATA_TEST_CASE(greedy_is_within_its_bound_of_the_exhaustive_optimum, bdata::xrange(1, 41), seed) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    const auto units = random_units(rng, 2 + static_cast<std::size_t>(seed) % 3);
    const std::uint64_t most = parameters_at_most(units);
    for (const auto objective : objectives)
        for (std::uint64_t budget = 0; budget <= most + 3; ++budget) {
            const allocation greedy = allocate_ranks(units, budget, objective);
            const optimum best = exhaustive(units, budget, objective);
            BOOST_TEST_REQUIRE(greedy.params_kept <= budget);
            BOOST_TEST(greedy.params_kept == parameters_of(units, greedy.ranks));
            for (std::size_t i = 0; i < units.size(); ++i) BOOST_TEST(greedy.ranks[i] <= units[i].k_max);
            const double value = reference_objective(units, greedy.ranks, objective);
            BOOST_TEST(std::abs(value - greedy.objective) <= 1e-12);
            BOOST_TEST(value <= best.value + 1e-12, "seed " << seed << " budget " << budget);
            BOOST_TEST(best.value <= value + greedy.gap_bound + 1e-12,
                       "seed " << seed << " budget " << budget << ": optimum " << best.value << ", greedy " << value
                               << ", bound " << greedy.gap_bound);
        }
}

BOOST_DATA_TEST_CASE(greedy_is_exactly_optimal_when_every_component_costs_the_same, bdata::xrange(1, 21), seed) {
    // Equal step costs: an exchange argument makes the greedy exact.
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed) + 1000);
    std::vector<allocation_unit> units;
    std::uniform_real_distribution<double> value(0, 5);
    for (int i = 0; i < 4; ++i) {
        std::vector<double> lambda{value(rng), value(rng), value(rng), value(rng)};
        std::sort(lambda.rbegin(), lambda.rend());
        units.push_back(make_unit("u" + std::to_string(i), 4, 4, lambda));  // c = 8, k_max = 2
    }
    for (const auto objective : objectives)
        for (std::uint64_t budget = 0; budget <= parameters_at_most(units); budget += 3) {
            const allocation greedy = allocate_ranks(units, budget, objective);
            BOOST_TEST(std::abs(exhaustive(units, budget, objective).value - greedy.objective) <= 1e-12);
        }
}

BOOST_AUTO_TEST_CASE(ties_go_to_the_first_unit) {
    const std::vector<allocation_unit> units{make_unit("a", 4, 4, {2, 1, 0, 0}), make_unit("b", 4, 4, {2, 1, 0, 0})};
    const auto one = allocate_ranks(units, 8, allocation_objective::weighted);
    BOOST_TEST(one.ranks == (std::vector<std::size_t>{1, 0}), boost::test_tools::per_element());
    const auto three = allocate_ranks(units, 24, allocation_objective::weighted);
    BOOST_TEST(three.ranks == (std::vector<std::size_t>{2, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(objectives_weigh_units_by_size_or_by_energy) {
    // Unit a: small and loud; unit b: large and quiet. One component each affordable.
    const std::vector<allocation_unit> units{make_unit("a", 2, 4, {100, 100, 0, 0}),
                                             make_unit("b", 20, 4, {1, 0.5, 0.25, 0.25})};
    // k_max: a ⌊8/6⌋ = 1, b ⌊80/24⌋ = 3. Budget 24: one component of b, or a's one and 18 left over.
    const auto weighted = allocate_ranks(units, 24, allocation_objective::weighted);
    const auto energy = allocate_ranks(units, 24, allocation_objective::energy);
    BOOST_TEST(weighted.ranks == (std::vector<std::size_t>{0, 1}), boost::test_tools::per_element());
    BOOST_TEST(energy.ranks == (std::vector<std::size_t>{1, 0}), boost::test_tools::per_element());
    BOOST_TEST(weighted.objective == (80.0 * 0.5) / 88.0, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(energy.objective == 100.0 / 202.0, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(budget_edge_cases_give_defined_allocations) {
    const std::vector<allocation_unit> units{make_unit("a", 8, 4, {4, 3, 2, 1}), make_unit("b", 4, 4, {9, 1, 0, 0})};
    // k_max: a ⌊32/12⌋ = 2, b ⌊16/8⌋ = 2; all at k_max costs 2·12 + 2·8 = 40.
    BOOST_TEST(parameters_at_most(units) == 40u);
    BOOST_TEST(parameters_original(units) == 48u);
    for (const std::uint64_t nothing : {0u, 7u}) {  // zero, and below the cheapest component (8)
        const auto none = allocate_ranks(units, nothing, allocation_objective::weighted);
        BOOST_TEST(none.ranks == (std::vector<std::size_t>{0, 0}), boost::test_tools::per_element());
        BOOST_TEST(none.params_kept == 0u);
        BOOST_TEST(none.objective == 0.0);
        BOOST_TEST(uniform_ranks(units, nothing, allocation_objective::weighted).uniform_k == 0u);
    }
    for (const std::uint64_t plenty : {std::uint64_t{40}, std::uint64_t{48}, std::numeric_limits<std::uint64_t>::max()}) {
        const auto all = allocate_ranks(units, plenty, allocation_objective::weighted);
        BOOST_TEST(all.ranks == (std::vector<std::size_t>{2, 2}), boost::test_tools::per_element());
        BOOST_TEST(all.params_kept == 40u);
        BOOST_TEST(all.gap_bound == 0.0);
        BOOST_TEST(all.objective == (32 * 0.7 + 16 * 1.0) / 48, boost::test_tools::tolerance(1e-12));
    }
}

BOOST_AUTO_TEST_CASE(uniform_k_is_the_largest_that_fits) {
    const std::vector<allocation_unit> units{make_unit("a", 8, 4, {4, 3, 2, 1}), make_unit("b", 2, 4, {9, 1, 0, 0})};
    // k_max: a 2, b ⌊8/6⌋ = 1. K = 1 costs 12 + 6 = 18; K = 2 costs 24 + 6 = 30.
    BOOST_TEST(uniform_ranks(units, 17, allocation_objective::weighted).uniform_k == 0u);
    BOOST_TEST(uniform_ranks(units, 18, allocation_objective::weighted).uniform_k == 1u);
    const auto two = uniform_ranks(units, 1000, allocation_objective::weighted);
    BOOST_TEST(two.uniform_k == 2u);
    BOOST_TEST(two.ranks == (std::vector<std::size_t>{2, 1}), boost::test_tools::per_element());
    BOOST_TEST(two.params_kept == 30u);
}

BOOST_AUTO_TEST_CASE(units_stop_at_break_even_and_at_computed_eigenvalues) {
    analysis_result r;
    r.dim = 4;
    type_spectrum exact, partial;
    exact.type = weight_type::q;
    exact.vectors = 8;
    exact.parameters = 32;
    exact.eigenvalues = {4, 3, 2, 1};
    exact.energy = 10;
    partial.type = weight_type::up;
    partial.vectors = 100;
    partial.parameters = 400;
    partial.eigenvalues = {5};  // rsvd: only the top value computed
    partial.eigenvalue_errors = {0.1};
    partial.energy = 8;
    r.types = {exact, partial};
    const auto units = type_units(r);
    BOOST_TEST(units[0].k_max == 2u);  // ⌊32 / 12⌋
    BOOST_TEST(units[0].step_cost == 12u);
    BOOST_TEST(units[1].k_max == 1u);  // break-even ⌊400/104⌋ = 3, but one eigenvalue
    const auto all = allocate_ranks(units, 1000, allocation_objective::weighted);
    BOOST_TEST(all.ranks == (std::vector<std::size_t>{2, 1}), boost::test_tools::per_element());
    // The rsvd unit's fraction uses its exact energy: 5 / 8.
    BOOST_TEST(all.objective == (32 * 0.7 + 400 * 5.0 / 8) / 432, boost::test_tools::tolerance(1e-12));
    r.center = true;
    BOOST_CHECK_THROW(type_units(r), std::invalid_argument);
    BOOST_CHECK_THROW(matrix_units(r), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(table_rows_hold_units_total_and_uniform) {
    const std::vector<allocation_unit> units{make_unit("a", 8, 4, {4, 3, 2, 1}), make_unit("b", 4, 4, {9, 1, 0, 0})};
    const auto chosen = allocate_ranks(units, 20, allocation_objective::weighted);
    const auto uniform = uniform_ranks(units, 20, allocation_objective::weighted);
    const table t = allocation_table(units, "type", chosen, uniform);
    BOOST_TEST(t.columns == (std::vector<std::string>{"scope", "name", "type", "layer", "k", "params_kept",
                                                      "params_original", "energy_kept", "fraction", "k_max"}),
               boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(t.rows.size() == 4u);
    // Gains per parameter: a 4/10·32/48/12, b 9/10·16/48/8: b first, then a (budget 20 = 8 + 12).
    BOOST_TEST(std::get<std::int64_t>(t.rows[0][4]) == 1);
    BOOST_TEST(std::get<std::int64_t>(t.rows[1][4]) == 1);
    BOOST_TEST(std::get<double>(t.rows[0][7]) == 0.4, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(std::get<std::string>(t.rows[2][0]) == "total");
    BOOST_TEST(std::get<std::int64_t>(t.rows[2][5]) == 20);
    BOOST_TEST(std::get<double>(t.rows[2][7]) == (32 * 0.4 + 16 * 0.9) / 48, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(std::get<std::string>(t.rows[3][0]) == "uniform");
    BOOST_TEST(std::get<std::int64_t>(t.rows[3][4]) == 1);  // K = 1 costs 20
}

BOOST_AUTO_TEST_CASE(plan_expands_types_to_tensors_and_reads_back) {
    auto matrix = [](std::string name, weight_type type, int layer, std::uint64_t rows, std::uint64_t cols) {
        weight_matrix m{};
        m.name = std::move(name);
        m.kind = {type, group_of(type), layer};
        m.rows = rows;
        m.cols = cols;
        return m;
    };
    const std::vector<weight_matrix> matrices{matrix("l.0.q.weight", weight_type::q, 0, 4, 4),
                                              matrix("l.1.q.weight", weight_type::q, 1, 4, 4),
                                              matrix("l.0.qkv.weight[k]", weight_type::k, 0, 2, 4),
                                              matrix("l.1.k.weight", weight_type::k, 1, 2, 4)};
    std::vector<allocation_unit> units{make_unit("q", 8, 4, {4, 3, 2, 1}), make_unit("k", 4, 4, {9, 1, 0, 0})};
    units[0].type = weight_type::q;
    units[1].type = weight_type::k;
    allocation chosen;
    chosen.ranks = {2, 0};
    const table plan = plan_table(units, chosen, matrices);
    BOOST_TEST_REQUIRE(plan.rows.size() == 4u);
    BOOST_TEST(std::get<std::int64_t>(plan.rows[1][5]) == 2);
    BOOST_TEST(std::get<std::int64_t>(plan.rows[1][6]) == 16);  // 2·(4 + 4)

    nlohmann::ordered_json settings;
    settings["per"] = "type";
    const auto text = plan_json(plan, settings).dump(2);
    const auto back = nlohmann::json::parse(text);
    BOOST_TEST(back["per"] == "type");
    BOOST_TEST_REQUIRE(back["ranks"].size() == 4u);
    for (const auto& m : matrices)
        BOOST_TEST(back["ranks"][m.name].get<int>() == (m.kind.type == weight_type::q ? 2 : 0), m.name);
    // PEFT: module names, K > 0 only.
    BOOST_TEST(back["rank_pattern"] == nlohmann::json::parse(R"({"l.0.q": 2, "l.1.q": 2})"));
    BOOST_TEST(back["target_modules"] == nlohmann::json::parse(R"(["l.0.q", "l.1.q"])"));
}

BOOST_AUTO_TEST_CASE(frontier_optimal_series_dominate_uniform_k) {
    analysis_result r;
    r.dim = 4;
    r.universal_k = 4;
    auto add = [&](weight_type type, std::uint64_t vectors, arma::vec lambda, arma::vec capture) {
        r.types.push_back(test::hand_spectrum(type, vectors, 4, std::move(lambda), std::move(capture)));
    };
    add(weight_type::q, 40, {4, 3, 2, 1}, {0.3, 0.3, 0.2, 0.2});
    add(weight_type::k, 12, {9, 1, 0, 0}, {0.5, 0.3, 0.1, 0.1});
    add(weight_type::up, 60, {1, 1, 1, 1}, {0.25, 0.25, 0.25, 0.25});
    const table t = allocation_frontier(r, allocation_objective::weighted, 0.9);
    BOOST_TEST(t.columns == (std::vector<std::string>{"series", "k", "params", "fraction", "energy_kept"}),
               boost::test_tools::per_element());
    std::map<std::string, std::vector<std::pair<double, double>>> series;  // (params, kept)
    for (const auto& row : t.rows)
        series[std::get<std::string>(row[0])].emplace_back(static_cast<double>(std::get<std::int64_t>(row[2])),
                                                           std::get<double>(row[4]));
    BOOST_TEST(series.count("optimal_matrix") == 0u);  // no per-matrix spectra
    BOOST_TEST_REQUIRE(series["threshold"].size() == 1u);
    BOOST_TEST_REQUIRE(series["optimal_type"].size() == frontier_fractions().size());
    // Uniform K = 1 per type: Σ (n + d) = 44 + 16 + 64 parameters, weighted mean of λ_1/E.
    BOOST_TEST(series["uniform_type"][0].first == 124.0);
    BOOST_TEST(series["uniform_type"][0].second == (160 * 0.4 + 48 * 0.9 + 240 * 0.25) / 448,
               boost::test_tools::tolerance(1e-12));
    // Universal K = 1: one basis, 112 coefficients + 4.
    BOOST_TEST(series["uniform_universal"][0].first == 116.0);
    BOOST_TEST(series["uniform_universal"][0].second == (160 * 0.3 + 48 * 0.5 + 240 * 0.25) / 448,
               boost::test_tools::tolerance(1e-12));
    // Each optimal point is the exhaustive optimum for what it spends, so it
    // keeps at least what any uniform K spending no more keeps.
    const auto units = type_units(r);
    for (const auto& [params, kept] : series["optimal_type"]) {
        const auto best = exhaustive(units, static_cast<std::uint64_t>(params), allocation_objective::weighted);
        BOOST_TEST(kept == best.value, boost::test_tools::tolerance(1e-12));
        for (const auto& [uniform_params, uniform_kept] : series["uniform_type"])
            if (uniform_params <= params) BOOST_TEST(kept >= uniform_kept - 1e-12);
    }
    for (std::size_t i = 1; i < series["optimal_type"].size(); ++i)
        BOOST_TEST(series["optimal_type"][i].second >= series["optimal_type"][i - 1].second);
}

BOOST_AUTO_TEST_SUITE_END()
