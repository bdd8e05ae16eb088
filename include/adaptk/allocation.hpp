#pragma once
// Ranks under a parameter budget: given B parameters, which K per unit (a
// weight type with its shared basis, or one matrix with its own) keeps the
// most? One more table computed from spectra (analysis.hpp); no weights read.
//
// Costs. A unit u of n_u vectors of length d, factorized at rank K, costs
// K·c_u parameters with c_u = n_u + d (a type: coefficients plus its shared
// basis; a matrix rows × cols: K·(rows + cols)). K stops at the unit's k_max:
// the break-even rank ⌊n_u·d / c_u⌋, above which the dense matrix is smaller,
// and (rsvd) the number of eigenvalues computed; never extrapolated.
//
// Objectives, with λ_u descending and E_u = tr C_u:
//   weighted (default)  Σ_u p_u·r_u(K_u) / Σ_u p_u, r_u(K) = Σ_{i≤K} λ_ui / E_u,
//                       p_u = n_u·d: the parameter-weighted mean retained
//                       fraction, i.e. one minus the weighted mean relative
//                       reconstruction error ‖W − W_K‖²/‖W‖². Every matrix
//                       counts by its size, whatever the scale of its weights.
//   energy              Σ_u Σ_{i≤K_u} λ_ui / Σ_u E_u: absolute energy kept,
//                       which favours the units with the largest norms
//                       (here the embedding) over relative accuracy elsewhere.
// Units without energy (E_u = 0) gain nothing and are left out of the weights.
//
// Algorithm. Component i of unit u adds g_ui (∝ λ_ui) for c_u parameters.
// λ_u is descending, so each unit's gain is concave in K and the items
// g_ui / c_u are taken from a max-heap over units (one entry each: its next
// component), ties broken by the lower unit index, so the result is
// deterministic. An item that no longer fits retires its unit (its later
// items cost the same) and the others go on. O((Σ K_u + units)·log units).
// Bound: the fractional relaxation's optimum is the greedy prefix before
// the first item x that did not fit plus (budget left then)·g_x / c_x, so
//   greedy ≤ optimum ≤ greedy + gap_bound,  gap_bound < g_x,
// i.e. greedy is optimal up to (part of) one component of the last unit
// considered; gap_bound = 0 when nothing was turned away.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <armadillo>
#include <nlohmann/json.hpp>

#include "adaptk/analysis.hpp"
#include "adaptk/tables.hpp"

namespace adaptk {

enum class allocation_objective { weighted, energy };
/// "weighted", "energy".
std::string_view objective_name(allocation_objective objective) noexcept;

/// Something that gets one rank: a weight type or a matrix.
struct allocation_unit {
    std::string name;            ///< type name, or the tensor (part) name
    weight_type type{};
    std::optional<int> layer;    ///< matrices in a layer
    std::uint64_t step_cost = 0;   ///< c_u: parameters per component
    std::uint64_t parameters = 0;  ///< p_u: the dense parameters it stands for
    double energy = 0;           ///< E_u = tr C_u (exact for rsvd too)
    arma::vec eigenvalues;       ///< descending, ≥ 0 (at least k_max of them)
    std::size_t k_max = 0;       ///< largest rank allowed (see the file comment)
};

/// One unit per type (needs the uncentered spectrum; k_max also stops at the
/// computed rsvd eigenvalues).
std::vector<allocation_unit> type_units(const analysis_result& result);
/// One unit per matrix, from the exact per-matrix spectra `layers` computes.
/// Throws std::invalid_argument when result.matrices is empty.
std::vector<allocation_unit> matrix_units(const analysis_result& result);

struct allocation {
    std::vector<std::size_t> ranks;  ///< per unit, ≤ its k_max
    std::uint64_t params_kept = 0;   ///< Σ K_u·c_u ≤ budget
    double objective = 0;            ///< in [0, 1]
    double gap_bound = 0;            ///< optimum − objective ≤ gap_bound (greedy only)
    std::size_t uniform_k = 0;       ///< the one K of uniform_ranks (0 for greedy)
};

/// Σ_u K_u·c_u.
std::uint64_t parameters_of(const std::vector<allocation_unit>& units, const std::vector<std::size_t>& ranks);
/// The objective at `ranks` (NaN when no unit has energy).
double objective_of(const std::vector<allocation_unit>& units, const std::vector<std::size_t>& ranks,
                    allocation_objective objective);
/// Σ_u p_u over the units.
std::uint64_t parameters_original(const std::vector<allocation_unit>& units);
/// Σ_u k_max·c_u: what the largest ranks cost, the most any budget can buy.
std::uint64_t parameters_at_most(const std::vector<allocation_unit>& units);

/// The greedy allocation of at most `budget` parameters (see the file comment).
allocation allocate_ranks(const std::vector<allocation_unit>& units, std::uint64_t budget,
                          allocation_objective objective);
/// The practitioners' rule at the same budget: the largest single K with
/// every unit at min(K, k_max) costing at most `budget`.
allocation uniform_ranks(const std::vector<allocation_unit>& units, std::uint64_t budget,
                         allocation_objective objective);

/// One row per unit, then `total` (the allocation) and `uniform` (uniform_ranks
/// at the same budget): scope,name,type,layer,k,params_kept,params_original,
/// energy_kept,fraction,k_max. Unit rows' energy_kept is r_u(K_u); the two
/// summary rows' is the objective. `scope` is "type" or "matrix" per unit.
table allocation_table(const std::vector<allocation_unit>& units, std::string_view scope, const allocation& chosen,
                       const allocation& uniform);

/// The rank plan: one row per analysed tensor (per type: each tensor of the
/// type gets the type's K), name,type,layer,rows,cols,k,params_kept with
/// params_kept = K·(rows + cols). `matrices` are analyse()'s input.
table plan_table(const std::vector<allocation_unit>& units, const allocation& chosen,
                 const std::vector<weight_matrix>& matrices);

/// The plan as JSON for fine-tuning and compression tools: `ranks` keyed by
/// tensor name (every tensor, K = 0 included), and PEFT LoRA's
/// `rank_pattern` / `target_modules` (module = tensor name without
/// ".weight"; K > 0 only; fused parts, which no module holds, only in ranks),
/// with `settings` (the other keys) copied in first.
nlohmann::ordered_json plan_json(const table& plan, const nlohmann::ordered_json& settings);

/// Fractions of the analysed parameters the frontier is evaluated at: 0.01 .. 1.
std::vector<double> frontier_fractions();

/// The budget frontier, long format: series,k,params,fraction,energy_kept
/// (energy_kept = the objective). Series: uniform_universal (one K, the
/// universal basis shared by all types, cost K·(Σ n_t + d), K ≤ universal_k),
/// uniform_type (one K, per-type bases), optimal_type and optimal_matrix
/// (per frontier_fractions() budget, the longest prefix of the greedy's
/// gain-per-parameter order within it: exactly optimal for the parameters it
/// spends; optimal_matrix only with per-matrix spectra) and threshold (the budget table's adaptive
/// K at `threshold`, exact spectra only; k empty). fraction = params / the
/// analysed parameters; points above 1 are left out.
table allocation_frontier(const analysis_result& result, allocation_objective objective, double threshold);

}  // namespace adaptk
