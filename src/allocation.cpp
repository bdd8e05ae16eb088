#include "adaptk/allocation.hpp"

#include <algorithm>
#include <limits>
#include <queue>
#include <stdexcept>

#include "adaptk/checkpoint.hpp"

namespace adaptk {
namespace {

constexpr double undefined = std::numeric_limits<double>::quiet_NaN();

cell integer(std::uint64_t value) { return static_cast<std::int64_t>(value); }
cell layer_cell(const std::optional<int>& layer) { return layer ? cell{static_cast<std::int64_t>(*layer)} : cell{}; }

// Largest K with K·(n + d) ≤ n·d: past it the dense matrix is smaller.
std::size_t break_even_rank(std::uint64_t vectors, std::uint64_t d) {
    return vectors + d == 0 ? 0 : static_cast<std::size_t>(vectors * d / (vectors + d));
}

// Σ_{i≤k} λ_i, k clamped to the values held.
double kept_energy(const allocation_unit& u, std::size_t k) {
    k = std::min<std::size_t>(k, u.eigenvalues.n_elem);
    return k == 0 ? 0.0 : arma::accu(u.eigenvalues.head(k));
}

// The objective is Σ_u scale_u · Σ_{i≤K_u} λ_ui: scale_u = p_u / (E_u Σp)
// (weighted) or 1 / ΣE (energy); 0 for a unit without energy.
std::vector<double> gain_scales(const std::vector<allocation_unit>& units, allocation_objective objective) {
    double weight_total = 0;
    for (const auto& u : units)
        if (u.energy > 0) weight_total += objective == allocation_objective::weighted ? static_cast<double>(u.parameters) : u.energy;
    std::vector<double> scales;
    for (const auto& u : units) {
        if (!(u.energy > 0) || !(weight_total > 0)) scales.push_back(0);
        else if (objective == allocation_objective::weighted)
            scales.push_back(static_cast<double>(u.parameters) / (u.energy * weight_total));
        else scales.push_back(1 / weight_total);
    }
    return scales;
}

allocation_unit unit_of(std::string name, weight_type type, std::optional<int> layer, std::uint64_t vectors,
                        std::uint64_t d, double energy, const arma::vec& eigenvalues) {
    const std::size_t k_max = std::min<std::size_t>(break_even_rank(vectors, d), eigenvalues.n_elem);
    return {std::move(name), type, layer, vectors + d, vectors * d, energy, eigenvalues, k_max};
}

// Heap entry: unit u's next component, worth `ratio` per parameter.
struct candidate {
    double ratio;
    std::size_t unit;
};
// Max-heap on ratio; on equal ratios the lower unit index comes first.
struct comes_later {
    bool operator()(const candidate& a, const candidate& b) const {
        return a.ratio != b.ratio ? a.ratio < b.ratio : a.unit > b.unit;
    }
};

// The greedy of the file comment; on_step(parameters spent, objective) after
// every component taken.
template <class Step>
allocation greedy(const std::vector<allocation_unit>& units, std::uint64_t budget, allocation_objective objective,
                  Step&& on_step) {
    const auto scales = gain_scales(units, objective);
    allocation out;
    out.ranks.assign(units.size(), 0);
    std::priority_queue<candidate, std::vector<candidate>, comes_later> heap;
    auto offer = [&](std::size_t u) {
        const std::size_t next = out.ranks[u];
        if (next < units[u].k_max && scales[u] > 0)
            heap.push({scales[u] * units[u].eigenvalues[next] / static_cast<double>(units[u].step_cost), u});
    };
    for (std::size_t u = 0; u < units.size(); ++u) offer(u);
    double value = 0, upper_bound = -1;  // upper_bound < 0: nothing turned away yet
    std::uint64_t left = budget;
    while (!heap.empty()) {
        const candidate best = heap.top();
        heap.pop();
        const auto& unit = units[best.unit];
        if (unit.step_cost > left) {
            // The fractional relaxation's optimum: this prefix plus the part of x that fits.
            if (upper_bound < 0) upper_bound = value + static_cast<double>(left) * best.ratio;
            continue;  // retired: its later components cost the same
        }
        left -= unit.step_cost;
        value += best.ratio * static_cast<double>(unit.step_cost);
        ++out.ranks[best.unit];
        on_step(budget - left, value);
        offer(best.unit);
    }
    out.params_kept = budget - left;
    out.objective = objective_of(units, out.ranks, objective);
    out.gap_bound = upper_bound < 0 ? 0.0 : std::max(0.0, upper_bound - value);
    return out;
}

}  // namespace

std::string_view objective_name(allocation_objective objective) noexcept {
    return objective == allocation_objective::weighted ? "weighted" : "energy";
}

std::vector<allocation_unit> type_units(const analysis_result& result) {
    if (result.center)
        throw std::invalid_argument("type_units: a rank allocation needs the uncentered spectra (no --center)");
    std::vector<allocation_unit> units;
    for (const auto& t : result.types)
        units.push_back(unit_of(std::string(type_name(t.type)), t.type, std::nullopt, t.vectors, result.dim, t.energy,
                                t.eigenvalues));
    return units;
}

std::vector<allocation_unit> matrix_units(const analysis_result& result) {
    if (result.matrices.empty())
        throw std::invalid_argument("matrix_units: no per-matrix spectra (analyse with per_matrix, exact method)");
    std::vector<allocation_unit> units;
    for (const auto& m : result.matrices) {
        // rows·cols = vectors·d whichever axis holds the vectors.
        const std::uint64_t vectors = m.rows * m.cols / result.dim;
        units.push_back(
            unit_of(m.name, m.kind.type, m.kind.layer, vectors, result.dim, arma::accu(m.eigenvalues), m.eigenvalues));
    }
    return units;
}

std::uint64_t parameters_of(const std::vector<allocation_unit>& units, const std::vector<std::size_t>& ranks) {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < units.size(); ++i) total += ranks[i] * units[i].step_cost;
    return total;
}

double objective_of(const std::vector<allocation_unit>& units, const std::vector<std::size_t>& ranks,
                    allocation_objective objective) {
    const auto scales = gain_scales(units, objective);
    if (std::all_of(scales.begin(), scales.end(), [](double s) { return s == 0; })) return undefined;
    double value = 0;
    for (std::size_t i = 0; i < units.size(); ++i) value += scales[i] * kept_energy(units[i], ranks[i]);
    return value;
}

std::uint64_t parameters_original(const std::vector<allocation_unit>& units) {
    std::uint64_t total = 0;
    for (const auto& u : units) total += u.parameters;
    return total;
}

std::uint64_t parameters_at_most(const std::vector<allocation_unit>& units) {
    std::uint64_t total = 0;
    for (const auto& u : units) total += u.k_max * u.step_cost;
    return total;
}

allocation allocate_ranks(const std::vector<allocation_unit>& units, std::uint64_t budget,
                          allocation_objective objective) {
    return greedy(units, budget, objective, [](std::uint64_t, double) {});
}

allocation uniform_ranks(const std::vector<allocation_unit>& units, std::uint64_t budget,
                         allocation_objective objective) {
    std::size_t largest = 0;
    for (const auto& u : units) largest = std::max(largest, u.k_max);
    auto ranks_at = [&](std::size_t k) {
        std::vector<std::size_t> ranks;
        for (const auto& u : units) ranks.push_back(std::min(k, u.k_max));
        return ranks;
    };
    std::size_t k = 0;
    while (k < largest && parameters_of(units, ranks_at(k + 1)) <= budget) ++k;
    allocation out;
    out.ranks = ranks_at(k);
    out.params_kept = parameters_of(units, out.ranks);
    out.objective = objective_of(units, out.ranks, objective);
    out.uniform_k = k;
    return out;
}

table allocation_table(const std::vector<allocation_unit>& units, std::string_view scope, const allocation& chosen,
                       const allocation& uniform) {
    table out{"allocate",
              {"scope", "name", "type", "layer", "k", "params_kept", "params_original", "energy_kept", "fraction",
               "k_max"},
              {}};
    auto fraction = [](std::uint64_t kept, std::uint64_t original) {
        return original > 0 ? static_cast<double>(kept) / static_cast<double>(original) : undefined;
    };
    for (std::size_t i = 0; i < units.size(); ++i) {
        const auto& u = units[i];
        const std::uint64_t kept = chosen.ranks[i] * u.step_cost;
        out.rows.push_back({std::string(scope), u.name, std::string(type_name(u.type)), layer_cell(u.layer),
                            integer(chosen.ranks[i]), integer(kept), integer(u.parameters),
                            u.energy > 0 ? kept_energy(u, chosen.ranks[i]) / u.energy : undefined,
                            fraction(kept, u.parameters), integer(u.k_max)});
    }
    const std::uint64_t original = parameters_original(units);
    out.rows.push_back({std::string("total"), cell{}, cell{}, cell{}, cell{}, integer(chosen.params_kept),
                        integer(original), chosen.objective, fraction(chosen.params_kept, original), cell{}});
    out.rows.push_back({std::string("uniform"), cell{}, cell{}, cell{}, integer(uniform.uniform_k),
                        integer(uniform.params_kept), integer(original), uniform.objective,
                        fraction(uniform.params_kept, original), cell{}});
    return out;
}

table plan_table(const std::vector<allocation_unit>& units, const allocation& chosen,
                 const std::vector<weight_matrix>& matrices) {
    table out{"plan", {"name", "type", "layer", "rows", "cols", "k", "params_kept"}, {}};
    for (const auto& m : matrices) {
        // A matrix unit by its name, else the unit of its type.
        auto unit = std::find_if(units.begin(), units.end(), [&](const allocation_unit& u) { return u.name == m.name; });
        if (unit == units.end())
            unit = std::find_if(units.begin(), units.end(), [&](const allocation_unit& u) {
                return !u.layer && u.name == type_name(m.kind.type);
            });
        if (unit == units.end()) continue;  // not analysed (a tied head)
        const std::size_t k = chosen.ranks[static_cast<std::size_t>(unit - units.begin())];
        out.rows.push_back({m.name, std::string(type_name(m.kind.type)), layer_cell(m.kind.layer), integer(m.rows),
                            integer(m.cols), integer(k), integer(k * (m.rows + m.cols))});
    }
    return out;
}

nlohmann::ordered_json plan_json(const table& plan, const nlohmann::ordered_json& settings) {
    // Filled apart and added last: ordered_json keeps its members in a vector,
    // so a reference into it would not survive the next insertion.
    auto ranks = nlohmann::ordered_json::object(), pattern = nlohmann::ordered_json::object();
    auto modules = nlohmann::ordered_json::array();
    constexpr std::string_view suffix = ".weight";
    for (const auto& row : plan.rows) {
        const auto& name = std::get<std::string>(row[0]);
        const auto k = std::get<std::int64_t>(row[5]);
        ranks[name] = k;
        if (k > 0 && name.ends_with(suffix)) {
            const std::string module = name.substr(0, name.size() - suffix.size());
            pattern[module] = k;
            modules.push_back(module);
        }
    }
    nlohmann::ordered_json out = settings;
    out["ranks"] = std::move(ranks);
    out["rank_pattern"] = std::move(pattern);
    out["target_modules"] = std::move(modules);
    return out;
}

std::vector<double> frontier_fractions() {
    std::vector<double> fractions;
    for (int percent = 1; percent <= 100; ++percent) fractions.push_back(percent / 100.0);
    return fractions;
}

table allocation_frontier(const analysis_result& result, allocation_objective objective, double threshold) {
    table out{"allocation", {"series", "k", "params", "fraction", "energy_kept"}, {}};
    const auto types = type_units(result);
    const std::uint64_t original = parameters_original(types);
    auto add = [&](const char* series, cell k, std::uint64_t params, double value) {
        const double fraction = static_cast<double>(params) / static_cast<double>(original);
        if (fraction <= 1) out.rows.push_back({std::string(series), std::move(k), integer(params), fraction, value});
    };

    // (a) One K for every type in the one universal basis: d·K for the basis,
    // K per vector for the coefficients.
    std::uint64_t vectors = 0;
    for (const auto& t : result.types) vectors += t.vectors;
    const auto scales = gain_scales(types, objective);
    for (std::size_t k = 1; k <= result.universal_k; ++k) {
        double value = 0;
        for (std::size_t i = 0; i < types.size(); ++i)
            value += scales[i] * types[i].energy * universal_r2(result.types[i], k);
        add("uniform_universal", integer(k), k * (vectors + result.dim), value);
    }
    // (b) One K, each type in its own basis.
    std::size_t largest = 0;
    for (const auto& u : types) largest = std::max(largest, u.k_max);
    for (std::size_t k = 1; k <= largest; ++k) {
        std::vector<std::size_t> ranks;
        for (const auto& u : types) ranks.push_back(std::min(k, u.k_max));
        add("uniform_type", integer(k), parameters_of(types, ranks), objective_of(types, ranks, objective));
    }
    // (c), (d) Optimal K per type and per matrix. With no budget limit the
    // greedy takes components in gain-per-parameter order; each prefix of that
    // order is optimal for what it spends (nothing was turned away), so the
    // series shows, at each fraction, the longest prefix within it: exact optima.
    const auto optimal = [&](const char* series, const std::vector<allocation_unit>& units) {
        std::vector<std::pair<std::uint64_t, double>> path{{0, 0.0}};
        greedy(units, std::numeric_limits<std::uint64_t>::max(), objective,
               [&](std::uint64_t spent, double value) { path.emplace_back(spent, value); });
        auto step = path.begin();
        for (const double f : frontier_fractions()) {
            const auto budget = static_cast<std::uint64_t>(f * static_cast<double>(original));
            while (std::next(step) != path.end() && std::next(step)->first <= budget) ++step;
            add(series, cell{}, step->first, step->second);
        }
    };
    optimal("optimal_type", types);
    if (!result.matrices.empty()) optimal("optimal_matrix", matrix_units(result));
    // The threshold rule: the budget table's K per type and what it spends.
    const bool exact = std::all_of(result.types.begin(), result.types.end(),
                                   [&](const type_spectrum& t) { return has_full_spectrum(t, result.dim); });
    if (exact) {
        const table budget = budget_table(result, threshold);
        const auto at = [&](const std::vector<cell>& row, std::string_view column) {
            const auto i = std::find(budget.columns.begin(), budget.columns.end(), column) - budget.columns.begin();
            return static_cast<std::uint64_t>(std::get<std::int64_t>(row[static_cast<std::size_t>(i)]));
        };
        std::vector<std::size_t> ranks;
        for (std::size_t i = 0; i < types.size(); ++i) ranks.push_back(at(budget.rows[i], "k"));
        add("threshold", cell{}, at(budget.rows.back(), "params_kept"), objective_of(types, ranks, objective));
    }
    return out;
}

}  // namespace adaptk
