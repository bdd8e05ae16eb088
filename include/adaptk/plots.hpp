#pragma once
// The report's two pictures as SVG text, drawn from an analysis_result with
// svg.hpp. Both share one frame: 800×500 px, the plot box plot_box, a log x
// axis over [1, max(d, 2)] and a linear y axis over [0, 1] (energy fractions).
// Every curve is a <polyline> carrying data-type="<type>" (or data-series for
// the means), points in increasing x; markers are <circle>s with data-type,
// data-k and data-fraction, so tests and scripts can read them back.

#include <string>

#include "adaptk/analysis.hpp"
#include "adaptk/tables.hpp"

namespace adaptk {

/// The plot area inside the 800×500 picture, in px (y grows downwards).
struct plot_box {
    double left = 70, top = 50, width = 520, height = 380;
};

/// spectra.svg: cumulative energy fraction Σ_{i≤K}λ_i / E against K (1..d, log
/// x) per type, with a filled circle at K50 and an open one at K90. With a
/// partial (rsvd) spectrum a curve stops at the last computed eigenvalue and a
/// K beyond it is not marked. Types with no energy get a legend entry and no curve.
std::string spectra_svg(const analysis_result& result);

/// frontier.svg: energy kept against compression d/K (log x) per type with its
/// own top-K basis (K up to the computed eigenvalues), and the means over types of the own-basis and of the
/// universal-basis energy (K ≤ universal_k), with dots at `frontier`'s rows
/// (a frontier_table of the same result).
std::string frontier_svg(const analysis_result& result, const table& frontier);

/// allocation.svg: the budget frontier of an allocation_frontier table
/// (allocation.hpp), energy kept against compression = analysed / kept
/// parameters (log x, up to the largest in the table): one polyline per
/// series (data-series="uniform_universal", ...), and the threshold rule's
/// point as a circle with data-series="threshold" and data-fraction.
std::string allocation_svg(const table& frontier);

}  // namespace adaptk
