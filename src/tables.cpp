#include "adaptk/tables.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

#include "adaptk/spectrum.hpp"

namespace adaptk {
namespace {

constexpr double undefined = std::numeric_limits<double>::quiet_NaN();

cell integer(std::uint64_t value) { return static_cast<std::int64_t>(value); }

double ratio(double numerator, double denominator) {
    return denominator != 0 ? numerator / denominator : undefined;
}

// Thresholds beyond the two every table has.
std::vector<double> extra_thresholds(const std::vector<double>& thresholds) {
    std::vector<double> extras;
    for (const double p : thresholds)
        if (p != 0.5 && p != 0.9 && std::find(extras.begin(), extras.end(), p) == extras.end()) extras.push_back(p);
    return extras;
}

double mean(const std::vector<double>& values) {
    if (values.empty()) return undefined;
    double sum = 0;
    for (const double v : values) sum += v;
    return sum / static_cast<double>(values.size());
}

// Statistics of a type's spectrum that the randomized method may not know:
// NaN (an empty cell) rather than a guess when they need eigenvalues beyond
// the ones computed.
double pr_of(const analysis_result& result, const type_spectrum& t) {
    return has_full_spectrum(t, result.dim) ? participation_ratio(t.eigenvalues) : undefined;
}
double entropy_rank_of(const analysis_result& result, const type_spectrum& t) {
    return has_full_spectrum(t, result.dim) ? entropy_rank(t.eigenvalues) : undefined;
}
// k_p of the type's energy: from the top values when their sum reaches
// p·energy; all of a full spectrum otherwise (rounding kept it just below).
std::optional<std::size_t> k_of(const analysis_result& result, const type_spectrum& t, double fraction) {
    if (!(t.energy > 0)) return 0;
    double running = 0;
    for (std::size_t i = 0; i < t.eigenvalues.n_elem; ++i)
        if ((running += t.eigenvalues[i]) >= fraction * t.energy) return i + 1;
    if (has_full_spectrum(t, result.dim)) return t.eigenvalues.n_elem;
    return std::nullopt;
}
cell k_cell(const analysis_result& result, const type_spectrum& t, double fraction) {
    const auto k = k_of(result, t, fraction);
    return k ? integer(*k) : cell{};
}
double k_value(const analysis_result& result, const type_spectrum& t, double fraction) {
    const auto k = k_of(result, t, fraction);
    return k ? static_cast<double>(*k) : undefined;
}
// Energy kept by the type's own top-k basis; NaN past the computed values.
double r2_type_of(const analysis_result& result, const type_spectrum& t, std::size_t k) {
    if (!has_full_spectrum(t, result.dim) && k > t.eigenvalues.n_elem) return undefined;
    return t.energy > 0 ? eigenvalue_sum(t.eigenvalues, k) / t.energy : undefined;
}

// r2_type's error from per-eigenvalue errors (estimates or bounds),
// Σ_{i<k} e_i / energy. exact: every eigenvalue and the energy itself are
// within the same rounding e, so (k + 1)·e / energy.
cell r2_type_error(const analysis_result& result, const type_spectrum& t, const arma::vec& errors, double rounding) {
    if (errors.n_elem == 0) return ratio(static_cast<double>(result.k + 1) * rounding, t.energy);
    return ratio(eigenvalue_sum(errors, result.k), t.energy);
}
// The i-th eigenvalue's error: rsvd's own, or exact's rounding for every one.
cell eigenvalue_error(const arma::vec& errors, double rounding, std::size_t i) {
    if (errors.n_elem == 0) return rounding;
    return i < errors.n_elem ? cell{errors[i]} : cell{};
}

// The per-type numbers the group means are taken over.
struct type_summary {
    weight_group group;
    std::string name;
    double pr, k50, k90, r2_type, r2_universal;
};

type_summary summarize(const analysis_result& result, const type_spectrum& t) {
    return {group_of(t.type),
            std::string(type_name(t.type)),
            pr_of(result, t),
            k_value(result, t, 0.5),
            k_value(result, t, 0.9),
            r2_type_of(result, t, result.k),
            universal_r2(t, result.k)};
}

struct group_means {
    std::string types;  ///< member type names, space separated
    double pr, k50, k90, r2_type, r2_universal;
};

group_means means_of(const std::vector<type_summary>& members) {
    std::vector<double> pr, k50, k90, r2t, r2u;
    std::string names;
    for (const auto& m : members) {
        pr.push_back(m.pr);
        k50.push_back(m.k50);
        k90.push_back(m.k90);
        r2t.push_back(m.r2_type);
        r2u.push_back(m.r2_universal);
        names += (names.empty() ? "" : " ") + m.name;
    }
    return {names, mean(pr), mean(k50), mean(k90), mean(r2t), mean(r2u)};
}

std::vector<cell> group_row(const std::string& label, const group_means& g) {
    return {label, g.types, g.pr, g.k50, g.k90, g.r2_type, g.r2_universal, ratio(g.r2_type, g.r2_universal)};
}

// Parameters of a rank-k factorization (coefficients + shared basis), or the
// dense matrix when that is smaller.
std::uint64_t factorized_parameters(std::uint64_t k, std::uint64_t vectors, std::uint64_t d) {
    return std::min(k * (vectors + d), vectors * d);
}

}  // namespace

std::string threshold_column(double fraction) {
    char buffer[32];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, fraction * 100.0, std::chars_format::general, 6).ptr;
    std::string name = "k" + std::string(buffer, end);
    std::replace(name.begin(), name.end(), '.', '_');
    return name;
}

double universal_r2(const type_spectrum& t, std::size_t k) {
    if (k > t.universal_capture.n_elem) return undefined;
    // Σ vᵀCv over orthonormal v is at most the energy; float64 rounding of the
    // products can put a basis that holds all of it an ulp above 1.
    return std::min(eigenvalue_sum(t.universal_capture, k), 1.0);
}

table profile_table(const analysis_result& result, const std::vector<double>& thresholds) {
    table out{"profile",
              {"type", "group", "matrices", "vectors", "dim", "k", "energy", "pr", "k50", "k90", "r2_type",
               "r2_universal", "gain", "stable_rank", "entropy_rank", "method", "error_estimate", "error_bound"},
              {}};
    const auto extras = extra_thresholds(thresholds);
    for (const double p : extras) out.columns.push_back(threshold_column(p));
    for (const auto& t : result.types) {
        const double r2_type = r2_type_of(result, t, result.k);
        const double r2_universal = universal_r2(t, result.k);
        std::vector<cell> row{std::string(type_name(t.type)),
                              std::string(group_name(group_of(t.type))),
                              integer(t.matrices),
                              integer(t.vectors),
                              integer(result.dim),
                              integer(result.k),
                              t.energy,
                              pr_of(result, t),
                              k_cell(result, t, 0.5),
                              k_cell(result, t, 0.9),
                              r2_type,
                              r2_universal,
                              ratio(r2_type, r2_universal),
                              stable_rank(t.eigenvalues, t.energy),
                              entropy_rank_of(result, t),
                              std::string(method_name(result.how)),
                              r2_type_error(result, t, t.eigenvalue_changes, t.rounding_estimate),
                              r2_type_error(result, t, t.eigenvalue_errors, t.rounding_bound)};
        for (const double p : extras) row.push_back(k_cell(result, t, p));
        out.rows.push_back(std::move(row));
    }
    return out;
}

table compare_table(const analysis_result& a, const analysis_result& b, const std::vector<type_difference>& differences,
                    const std::vector<double>& thresholds) {
    if (b.types.size() != a.types.size() || differences.size() != a.types.size())
        throw std::invalid_argument("compare_table: the results and differences hold different types");
    table out{"compare",
              {"type", "group", "matrices", "dim", "k", "pr_a", "pr_b", "pr_change", "k50_a", "k50_b", "k50_change",
               "k90_a", "k90_b", "k90_change", "r2_type_a", "r2_type_b", "r2_type_change", "difference_energy"},
              {}};
    const auto extras = extra_thresholds(thresholds);
    for (const double p : extras)
        for (const char* side : {"_a", "_b", "_change"}) out.columns.push_back(threshold_column(p) + side);
    for (std::size_t i = 0; i < a.types.size(); ++i) {
        const type_spectrum& ta = a.types[i];
        const type_spectrum& tb = b.types[i];
        if (tb.type != ta.type || differences[i].type != ta.type)
            throw std::invalid_argument("compare_table: the results and differences hold different types");
        const type_summary sa = summarize(a, ta), sb = summarize(b, tb);
        std::vector<cell> row{sa.name, std::string(group_name(sa.group)), integer(ta.matrices), integer(a.dim),
                              integer(a.k)};
        auto values = [&](const auto& in_a, const auto& in_b, double change) {
            row.emplace_back(in_a);
            row.emplace_back(in_b);
            row.emplace_back(change);
        };
        values(sa.pr, sb.pr, sb.pr - sa.pr);
        values(k_cell(a, ta, 0.5), k_cell(b, tb, 0.5), sb.k50 - sa.k50);
        values(k_cell(a, ta, 0.9), k_cell(b, tb, 0.9), sb.k90 - sa.k90);
        values(sa.r2_type, sb.r2_type, sb.r2_type - sa.r2_type);
        row.push_back(ratio(differences[i].difference_energy, differences[i].energy_a));
        for (const double p : extras) values(k_cell(a, ta, p), k_cell(b, tb, p), k_value(b, tb, p) - k_value(a, ta, p));
        out.rows.push_back(std::move(row));
    }
    return out;
}

table groups_table(const analysis_result& result) {
    table out{"groups", {"group", "types", "pr", "k50", "k90", "r2_type", "r2_universal", "gain"}, {}};
    std::vector<type_summary> all;
    for (const auto& t : result.types) all.push_back(summarize(result, t));
    std::vector<std::optional<group_means>> by_group;
    for (const weight_group g : all_weight_groups) {
        std::vector<type_summary> members;
        std::copy_if(all.begin(), all.end(), std::back_inserter(members),
                     [g](const type_summary& s) { return s.group == g; });
        by_group.push_back(members.empty() ? std::nullopt : std::optional(means_of(members)));
        if (by_group.back()) out.rows.push_back(group_row(std::string(group_name(g)), *by_group.back()));
    }
    out.rows.push_back(group_row("all", means_of(all)));
    const auto& attention = by_group[static_cast<std::size_t>(weight_group::attention)];
    const auto& mlp = by_group[static_cast<std::size_t>(weight_group::mlp)];
    if (attention && mlp)
        out.rows.push_back(group_row("mlp/attention",
                                     {"", ratio(mlp->pr, attention->pr), ratio(mlp->k50, attention->k50),
                                      ratio(mlp->k90, attention->k90), ratio(mlp->r2_type, attention->r2_type),
                                      ratio(mlp->r2_universal, attention->r2_universal)}));
    return out;
}

table frontier_table(const analysis_result& result, const std::vector<std::size_t>& ks) {
    table out{"frontier", {"k", "fraction_of_d", "r2_type_mean", "r2_universal_mean", "compression"}, {}};
    for (const std::size_t k : ks) {
        std::vector<double> r2t, r2u;
        for (const auto& t : result.types) {
            r2t.push_back(r2_type_of(result, t, k));
            r2u.push_back(universal_r2(t, k));
        }
        const double d = static_cast<double>(result.dim);
        out.rows.push_back({integer(k), static_cast<double>(k) / d, mean(r2t), mean(r2u),
                            ratio(d, static_cast<double>(k))});
    }
    return out;
}

table budget_table(const analysis_result& result, double threshold) {
    table out{"budget",
              {"type", "k", "vectors", "params_kept", "params_original", "fraction", "energy_kept", "k_uniform",
               "energy_kept_uniform"},
              {}};
    for (const auto& t : result.types)
        if (!has_full_spectrum(t, result.dim))
            throw std::invalid_argument("budget_table: type " + std::string(type_name(t.type)) +
                                        " has a partial spectrum; the budget needs every eigenvalue (exact method)");
    const std::uint64_t d = result.dim;
    std::vector<std::size_t> adaptive;
    std::uint64_t kept_total = 0, original_total = 0;
    for (const auto& t : result.types) {
        adaptive.push_back(k_of(result, t, threshold).value_or(0));
        kept_total += factorized_parameters(adaptive.back(), t.vectors, d);
        original_total += t.parameters;
    }
    // The practitioners' rule: one K for every type, the largest that spends
    // no more parameters than the adaptive choice.
    std::uint64_t uniform = 0;
    for (std::uint64_t k = 1; k <= d; ++k) {
        std::uint64_t spent = 0;
        for (const auto& t : result.types) spent += factorized_parameters(k, t.vectors, d);
        if (spent > kept_total) break;
        uniform = k;
    }
    std::vector<double> kept_adaptive, kept_uniform;
    for (std::size_t i = 0; i < result.types.size(); ++i) {
        const auto& t = result.types[i];
        const std::uint64_t kept = factorized_parameters(adaptive[i], t.vectors, d);
        kept_adaptive.push_back(r2_type_of(result, t, adaptive[i]));
        kept_uniform.push_back(r2_type_of(result, t, uniform));
        out.rows.push_back({std::string(type_name(t.type)), integer(adaptive[i]), integer(t.vectors), integer(kept),
                            integer(t.parameters), ratio(static_cast<double>(kept), static_cast<double>(t.parameters)),
                            kept_adaptive.back(), integer(uniform), kept_uniform.back()});
    }
    std::uint64_t vectors_total = 0;
    for (const auto& t : result.types) vectors_total += t.vectors;
    out.rows.push_back({std::string("total"), cell{}, integer(vectors_total), integer(kept_total),
                        integer(original_total),
                        ratio(static_cast<double>(kept_total), static_cast<double>(original_total)),
                        mean(kept_adaptive), integer(uniform), mean(kept_uniform)});
    return out;
}

table layers_table(const analysis_result& result, const std::vector<double>& thresholds) {
    table out{"layers",
              {"name", "layer", "type", "rows", "cols", "energy", "pr", "k50", "k90", "r2_self", "r2_type",
               "r2_universal"},
              {}};
    const auto extras = extra_thresholds(thresholds);
    for (const double p : extras) out.columns.push_back(threshold_column(p));
    for (const auto& m : result.matrices) {
        std::vector<cell> row{m.name,
                              m.kind.layer ? cell{static_cast<std::int64_t>(*m.kind.layer)} : cell{},
                              std::string(type_name(m.kind.type)),
                              integer(m.rows),
                              integer(m.cols),
                              eigenvalue_sum(m.eigenvalues),
                              participation_ratio(m.eigenvalues),
                              integer(components_for(m.eigenvalues, 0.5)),
                              integer(components_for(m.eigenvalues, 0.9)),
                              energy_kept(m.eigenvalues, result.k),
                              m.r2_type,
                              m.r2_universal};
        for (const double p : extras) row.push_back(integer(components_for(m.eigenvalues, p)));
        out.rows.push_back(std::move(row));
    }
    return out;
}

table spectrum_table(const analysis_result& result) {
    table out{"spectrum", {"type", "index", "eigenvalue", "cumulative_fraction", "error_estimate", "error_bound"}, {}};
    for (const auto& t : result.types) {
        double running = 0;
        for (std::size_t i = 0; i < t.eigenvalues.n_elem; ++i) {
            running += t.eigenvalues[i];
            out.rows.push_back({std::string(type_name(t.type)), integer(i + 1), t.eigenvalues[i],
                                ratio(running, t.energy),
                                eigenvalue_error(t.eigenvalue_changes, t.rounding_estimate, i),
                                eigenvalue_error(t.eigenvalue_errors, t.rounding_bound, i)});
        }
    }
    return out;
}

}  // namespace adaptk
