#pragma once
// The study's tables, built from one analysis_result. Each table is a list of
// column names (stable lower_snake_case; new ones are appended, none renamed)
// and rows of cells. Definitions of every column are in README.md.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "adaptk/analysis.hpp"
#include "adaptk/table.hpp"

namespace adaptk {

/// Energy fractions whose k columns every table with k columns carries.
inline const std::vector<double> default_thresholds{0.5, 0.9};
/// The frontier's default K list.
inline const std::vector<std::size_t> default_frontier_ks{8, 32, 64, 128, 256, 1024, 1500};

/// Column name of the k for `fraction`: 0.5 -> "k50", 0.99 -> "k99", 0.995 -> "k99_5".
std::string threshold_column(double fraction);

/// One row per type: type,group,matrices,vectors,dim,k,energy,pr,k50,k90,
/// r2_type,r2_universal,gain,stable_rank,entropy_rank,method,error_estimate,
/// error_bound, then k<NN> for each threshold beyond 0.5 and 0.9. With a
/// partial (rsvd) spectrum pr, entropy_rank and k's beyond the computed values
/// are empty; error_estimate estimates and error_bound bounds r2_type's error
/// (exact: from the rounding contract, type_spectrum::rounding_bound).
table profile_table(const analysis_result& result, const std::vector<double>& thresholds);

/// attention / mlp / embedding rows (plain means over their types), an `all`
/// row over every type (its gain is the headline mean(r2_type)/mean(r2_universal)),
/// and `mlp/attention` (ratios of the two rows):
/// group,types,pr,k50,k90,r2_type,r2_universal,gain.
table groups_table(const analysis_result& result);

/// k,fraction_of_d,r2_type_mean,r2_universal_mean,compression for each K
/// (K must be ≤ result.universal_k; larger ones are the caller's to clamp).
table frontier_table(const analysis_result& result, const std::vector<std::size_t>& ks);

/// Adaptive K per type at `threshold`, its parameter cost K·(vectors + d)
/// (never more than the dense vectors·d), and beside it the uniform K that
/// spends the same total: type,k,vectors,params_kept,params_original,fraction,
/// energy_kept,k_uniform,energy_kept_uniform; then a `total` row.
/// Throws std::invalid_argument for a partial (rsvd) spectrum.
table budget_table(const analysis_result& result, double threshold);

/// One row per matrix (needs per_matrix): name,layer,type,rows,cols,energy,pr,
/// k50,k90,r2_self,r2_type,r2_universal, then extra k<NN> columns.
table layers_table(const analysis_result& result, const std::vector<double>& thresholds);

/// Long format for plotting: type,index,eigenvalue,cumulative_fraction,
/// error_estimate,error_bound (that eigenvalue's estimated and bounded error:
/// rsvd's, or the exact method's rounding_estimate and rounding_bound).
table spectrum_table(const analysis_result& result);

/// A against B (compare), one row per type of `a`: type,group,matrices,dim,k,
/// then for each of pr, k50, k90, r2_type (at K) its value in A, in B and the
/// change B − A (pr_a,pr_b,pr_change, ...), then difference_energy
/// ‖W_A − W_B‖² / ‖W_A‖² summed over the type's matrices, then k<NN>_a,
/// k<NN>_b, k<NN>_change for each threshold beyond 0.5 and 0.9. `b` and
/// `differences` hold the same types in the same order (throws std::invalid_argument otherwise).
table compare_table(const analysis_result& a, const analysis_result& b, const std::vector<type_difference>& differences,
                    const std::vector<double>& thresholds);

/// r2_universal of type row `t` at K; NaN for K > universal_k.
double universal_r2(const type_spectrum& t, std::size_t k);

}  // namespace adaptk
