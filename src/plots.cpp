#include "adaptk/plots.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "adaptk/svg.hpp"

namespace adaptk {
namespace {

constexpr double picture_width = 800, picture_height = 500;
constexpr std::size_t curve_points = 200;  // per curve: smooth at 520 px, small files at any d

// One colour per weight type, in all_weight_types order, the same in both
// pictures (Tableau 10 without its grey, which would vanish in the grid).
constexpr std::array<const char*, 9> type_colours{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                  "#8c564b", "#e377c2", "#bcbd22", "#17becf"};

const char* colour_of(weight_type type) {
    const auto at = std::find(all_weight_types.begin(), all_weight_types.end(), type) - all_weight_types.begin();
    return type_colours[static_cast<std::size_t>(at) % type_colours.size()];
}

// The head is often tied to (or trained close to) the embedding: dashed, it
// lets an identical embed curve underneath show through.
std::string dash_of(weight_type type) { return type == weight_type::head ? "6 4" : ""; }

// Data coordinates -> px: x on a log scale over [1, x_max], y linear over [0, 1].
struct frame {
    plot_box box;
    double x_max;
    double x(double value) const { return box.left + box.width * std::log(value) / std::log(x_max); }
    double y(double fraction) const { return box.top + box.height * (1 - std::clamp(fraction, 0.0, 1.0)); }
};

frame frame_for(const analysis_result& result) {
    return {plot_box{}, std::max(2.0, static_cast<double>(result.dim))};
}

std::string integer_text(double value) { return std::to_string(static_cast<long long>(std::llround(value))); }

// Grid, ticks, tick labels, axis labels and title. Labelled x ticks at 1, 2, 5
// per decade when the axis spans under three decades, else at powers of ten;
// the other integer multiples get short unlabelled ticks.
void draw_frame(svg_writer& svg, const frame& f, const std::string& title, const std::string& x_label,
                const std::string& y_label) {
    const plot_box& b = f.box;
    const double bottom = b.top + b.height, right = b.left + b.width;
    const svg_attributes grid{{"stroke", "#dddddd"}, {"stroke-width", "1"}};
    const svg_attributes ink{{"stroke", "black"}, {"stroke-width", "1"}};
    const svg_attributes label{{"font-size", "12"}, {"text-anchor", "middle"}};

    for (int tenth = 0; tenth <= 10; ++tenth) {
        const double y = f.y(tenth / 10.0);
        svg_attributes line{{"x1", svg_number(b.left)}, {"y1", svg_number(y)}, {"x2", svg_number(right)}, {"y2", svg_number(y)}};
        line.insert(line.end(), grid.begin(), grid.end());
        svg.element("line", line);
        svg.element("line", {{"x1", svg_number(b.left - 5)}, {"y1", svg_number(y)}, {"x2", svg_number(b.left)},
                             {"y2", svg_number(y)}, {"stroke", "black"}});
        if (tenth % 2 == 0)
            svg.text(b.left - 8, y + 4, tenth == 0 ? "0" : tenth == 10 ? "1" : "0." + std::to_string(tenth),
                     {{"font-size", "12"}, {"text-anchor", "end"}});
    }

    const bool fine = f.x_max < 1000;
    for (double decade = 1; decade <= f.x_max; decade *= 10)
        for (int m = 1; m <= 9; ++m) {
            const double value = m * decade;
            if (value > f.x_max) break;
            const double x = f.x(value);
            const bool labelled = m == 1 || (fine && (m == 2 || m == 5));
            if (labelled) {
                svg.element("line", {{"x1", svg_number(x)}, {"y1", svg_number(b.top)}, {"x2", svg_number(x)},
                                     {"y2", svg_number(bottom)}, {"stroke", "#dddddd"}});
                svg.text(x, bottom + 18, integer_text(value), label);
            }
            svg.element("line", {{"x1", svg_number(x)}, {"y1", svg_number(bottom)}, {"x2", svg_number(x)},
                                 {"y2", svg_number(bottom + (labelled ? 5 : 3))}, {"stroke", "black"}});
        }

    svg.element("rect", {{"class", "plot-area"}, {"x", svg_number(b.left)}, {"y", svg_number(b.top)},
                         {"width", svg_number(b.width)}, {"height", svg_number(b.height)}, {"fill", "none"},
                         {"stroke", "black"}, {"data-x-min", "1"}, {"data-x-max", svg_number(f.x_max)}});
    svg.text(b.left + b.width / 2, 28, title, {{"font-size", "16"}, {"text-anchor", "middle"}, {"font-weight", "bold"}});
    svg.text(b.left + b.width / 2, bottom + 42, x_label, {{"font-size", "13"}, {"text-anchor", "middle"}});
    const double y_label_x = 22, y_label_y = b.top + b.height / 2;
    svg.text(y_label_x, y_label_y, y_label,
             {{"font-size", "13"}, {"text-anchor", "middle"},
              {"transform", "rotate(-90 " + svg_number(y_label_x) + " " + svg_number(y_label_y) + ")"}});
}

enum class marker { none, filled, open };

struct legend_entry {
    std::string label;
    std::string colour;
    std::string dash;  // stroke-dasharray, empty for solid
    double stroke_width = 2;
    marker mark = marker::none;
};

void draw_legend(svg_writer& svg, const frame& f, const std::vector<legend_entry>& entries) {
    const double x = f.box.left + f.box.width + 20;
    double y = f.box.top + 8;
    svg.open_group({{"class", "legend"}});
    for (const auto& e : entries) {
        if (e.mark == marker::none) {
            svg_attributes line{{"x1", svg_number(x)}, {"y1", svg_number(y)}, {"x2", svg_number(x + 28)},
                                {"y2", svg_number(y)}, {"stroke", e.colour}, {"stroke-width", svg_number(e.stroke_width)}};
            if (!e.dash.empty()) line.emplace_back("stroke-dasharray", e.dash);
            svg.element("line", line);
        } else {
            svg.element("circle", {{"cx", svg_number(x + 14)}, {"cy", svg_number(y)}, {"r", "4"}, {"stroke", e.colour},
                                   {"stroke-width", "1.5"}, {"fill", e.mark == marker::filled ? e.colour : "white"}});
        }
        svg.text(x + 36, y + 4, e.label, {{"font-size", "12"}});
        y += 20;
    }
    svg.close_group();
}

// About `points` integers spread evenly on a log scale over [1, n], ascending, with 1 and n.
std::vector<std::size_t> log_grid(std::size_t n, std::size_t points) {
    std::vector<std::size_t> grid;
    const double top = std::log(static_cast<double>(n));
    for (std::size_t i = 0; i < points; ++i) {
        const double at = points > 1 ? top * static_cast<double>(i) / static_cast<double>(points - 1) : 0;
        grid.push_back(std::clamp<std::size_t>(static_cast<std::size_t>(std::llround(std::exp(at))), 1, n));
    }
    grid.push_back(n);
    std::sort(grid.begin(), grid.end());
    grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
    return grid;
}

std::size_t column_index(const table& t, const std::string& name) {
    const auto at = std::find(t.columns.begin(), t.columns.end(), name);
    if (at == t.columns.end()) throw std::invalid_argument("plots: table '" + t.name + "' has no column '" + name + "'");
    return static_cast<std::size_t>(at - t.columns.begin());
}

double number_at(const std::vector<cell>& row, std::size_t column) {
    if (const auto* real = std::get_if<double>(&row[column])) return *real;
    if (const auto* integer = std::get_if<std::int64_t>(&row[column])) return static_cast<double>(*integer);
    return std::nan("");
}

// Σ_{i≤K} λ_i / E for K = 1 .. the computed eigenvalues (all d for the exact
// method, the top k for rsvd, whose E is the type's exact energy); empty
// without energy.
arma::vec cumulative_energy(const analysis_result& result, const type_spectrum& t) {
    const double energy = has_full_spectrum(t, result.dim) ? arma::accu(t.eigenvalues) : t.energy;
    if (!(energy > 0) || t.eigenvalues.n_elem == 0) return {};
    return arma::cumsum(t.eigenvalues) / energy;
}

// Smallest K whose cumulative fraction reaches `fraction`; none when the
// computed eigenvalues stop short of it (rsvd).
std::optional<std::size_t> components_reaching(const arma::vec& cumulative, double fraction) {
    for (std::size_t i = 0; i < cumulative.n_elem; ++i)
        if (cumulative(i) >= fraction) return i + 1;
    return std::nullopt;
}

svg_attributes curve_style(weight_type type, double width) {
    svg_attributes style{{"data-type", std::string(type_name(type))}, {"stroke", colour_of(type)},
                         {"stroke-width", svg_number(width)}, {"stroke-linejoin", "round"}};
    if (const std::string dash = dash_of(type); !dash.empty()) style.emplace_back("stroke-dasharray", dash);
    return style;
}

}  // namespace

std::string spectra_svg(const analysis_result& result) {
    const frame f = frame_for(result);
    svg_writer svg(picture_width, picture_height);
    draw_frame(svg, f, "Cumulative energy by weight type (d = " + std::to_string(result.dim) + ")",
               "K, components kept (log scale)", "cumulative energy fraction");
    for (const double p : {0.5, 0.9}) {
        const double y = f.y(p);
        svg.element("line", {{"x1", svg_number(f.box.left)}, {"y1", svg_number(y)},
                             {"x2", svg_number(f.box.left + f.box.width)}, {"y2", svg_number(y)},
                             {"stroke", "#888888"}, {"stroke-dasharray", "4 3"}});
    }

    std::vector<legend_entry> legend;
    for (const auto& t : result.types) {
        const std::string name(type_name(t.type));
        const char* colour = colour_of(t.type);
        const arma::vec cumulative = cumulative_energy(result, t);
        legend.push_back({name + (cumulative.is_empty() ? " (no energy)" : ""), colour, dash_of(t.type), 2, marker::none});
        if (cumulative.is_empty()) continue;
        const auto k50 = components_reaching(cumulative, 0.5), k90 = components_reaching(cumulative, 0.9);
        // The marked K are grid points too, so each marker sits on its curve.
        std::vector<std::size_t> ks = log_grid(cumulative.n_elem, curve_points);
        for (const auto& k : {k50, k90})
            if (k) ks.push_back(*k);
        std::sort(ks.begin(), ks.end());
        ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
        std::vector<svg_point> points;
        for (const std::size_t k : ks) points.push_back({f.x(static_cast<double>(k)), f.y(cumulative(k - 1))});
        svg.polyline(points, curve_style(t.type, 2));
        for (const auto& [k, fraction, mark] : {std::tuple{k50, 0.5, marker::filled}, std::tuple{k90, 0.9, marker::open}}) {
            if (!k) continue;
            svg.element("circle", {{"data-type", name}, {"data-k", std::to_string(*k)}, {"data-fraction", svg_number(fraction)},
                                   {"cx", svg_number(f.x(static_cast<double>(*k)))}, {"cy", svg_number(f.y(cumulative(*k - 1)))},
                                   {"r", "4"}, {"stroke", colour}, {"stroke-width", "1.5"},
                                   {"fill", mark == marker::filled ? colour : "white"}});
        }
    }
    legend.push_back({"K50 (half the energy)", "black", "", 2, marker::filled});
    legend.push_back({"K90", "black", "", 2, marker::open});
    draw_legend(svg, f, legend);
    return svg.finish();
}

std::string frontier_svg(const analysis_result& result, const table& frontier) {
    const frame f = frame_for(result);
    const double d = static_cast<double>(result.dim);
    svg_writer svg(picture_width, picture_height);
    draw_frame(svg, f, "Energy kept against compression (d = " + std::to_string(result.dim) + ")",
               "compression d/K (log scale)", "energy kept, R\u00b2");

    std::vector<legend_entry> legend;
    const std::vector<std::size_t> ks = log_grid(result.dim, curve_points);
    for (const auto& t : result.types) {
        legend.push_back({std::string(type_name(t.type)) + ", own basis", colour_of(t.type), dash_of(t.type), 1.5,
                          marker::none});
        const arma::vec cumulative = cumulative_energy(result, t);
        std::vector<svg_point> points;
        for (auto k = ks.rbegin(); k != ks.rend(); ++k)
            if (*k <= cumulative.n_elem) points.push_back({f.x(d / static_cast<double>(*k)), f.y(cumulative(*k - 1))});
        if (!points.empty()) svg.polyline(points, curve_style(t.type, 1.5));
    }

    // The means, from the frontier table at every grid K the universal basis covers.
    std::vector<std::size_t> universal_ks;
    for (const std::size_t k : ks)
        if (k <= result.universal_k) universal_ks.push_back(k);
    const table means = frontier_table(result, universal_ks);
    const std::size_t compression = column_index(means, "compression");
    const struct {
        const char* series;
        const char* column;
        const char* label;
        const char* dash;
    } mean_series[]{{"mean-own", "r2_type_mean", "mean, own bases", ""},
                    {"mean-universal", "r2_universal_mean", "mean, universal basis", "7 4"}};
    for (const auto& s : mean_series) {
        const std::size_t column = column_index(means, s.column);
        std::vector<svg_point> points;
        for (auto row = means.rows.rbegin(); row != means.rows.rend(); ++row)
            if (const double kept = number_at(*row, column); !std::isnan(kept))
                points.push_back({f.x(number_at(*row, compression)), f.y(kept)});
        svg_attributes style{{"data-series", s.series}, {"stroke", "black"}, {"stroke-width", "3"},
                             {"stroke-linejoin", "round"}};
        if (*s.dash) style.emplace_back("stroke-dasharray", s.dash);
        if (!points.empty()) svg.polyline(points, style);
        legend.push_back({s.label, "black", s.dash, 3, marker::none});

        // The report's own frontier rows, as dots on the mean curves.
        const std::size_t row_column = column_index(frontier, s.column);
        const std::size_t row_compression = column_index(frontier, "compression");
        const std::size_t row_k = column_index(frontier, "k");
        for (const auto& row : frontier.rows) {
            const double kept = number_at(row, row_column), x = number_at(row, row_compression);
            if (std::isnan(kept) || std::isnan(x)) continue;
            const std::string k = integer_text(number_at(row, row_k));
            svg.element("circle", {{"data-series", s.series}, {"data-k", k}, {"cx", svg_number(f.x(x))},
                                   {"cy", svg_number(f.y(kept))}, {"r", "3.5"}, {"fill", "black"}});
            // Labelled once, on the solid curve; below the dot when above would hit the frame.
            if (*s.dash == '\0')
                svg.text(f.x(x) + 6, f.y(kept) + (kept > 0.95 ? 14 : -6), "K=" + k,
                         {{"font-size", "11"}, {"stroke", "white"}, {"stroke-width", "3"}, {"paint-order", "stroke"}});
        }
    }
    draw_legend(svg, f, legend);
    return svg.finish();
}

std::string allocation_svg(const table& frontier) {
    const std::size_t series_column = column_index(frontier, "series"), fraction_column = column_index(frontier, "fraction"),
                      kept_column = column_index(frontier, "energy_kept");
    double x_max = 2;
    for (const auto& row : frontier.rows)
        if (const double f = number_at(row, fraction_column); f > 0) x_max = std::max(x_max, 1 / f);
    const frame f{plot_box{}, x_max};
    svg_writer svg(picture_width, picture_height);
    draw_frame(svg, f, "Energy kept under a parameter budget", "compression: analysed / kept parameters (log scale)",
               "energy kept");
    const struct {
        const char* series;
        const char* label;
        const char* colour;
        const char* dash;
    } styles[]{{"uniform_universal", "one K, universal", "#7f7f7f", "7 4"},
               {"uniform_type", "one K, per type", "#1f77b4", "7 4"},
               {"optimal_type", "optimal per type", "#1f77b4", ""},
               {"optimal_matrix", "optimal per matrix", "#d62728", ""}};
    std::vector<legend_entry> legend;
    for (const auto& s : styles) {
        std::vector<std::pair<double, double>> points;  // (compression, kept)
        for (const auto& row : frontier.rows)
            if (std::get<std::string>(row[series_column]) == s.series)
                if (const double fraction = number_at(row, fraction_column), kept = number_at(row, kept_column);
                    fraction > 0 && !std::isnan(kept))
                    points.emplace_back(1 / fraction, kept);
        if (points.empty()) continue;
        std::sort(points.begin(), points.end());
        std::vector<svg_point> line;
        for (const auto& [x, kept] : points) line.push_back({f.x(x), f.y(kept)});
        svg_attributes style{{"data-series", s.series}, {"stroke", s.colour}, {"stroke-width", "2.5"},
                             {"stroke-linejoin", "round"}};
        if (*s.dash) style.emplace_back("stroke-dasharray", s.dash);
        svg.polyline(line, style);
        legend.push_back({s.label, s.colour, s.dash, 2.5, marker::none});
    }
    for (const auto& row : frontier.rows)
        if (std::get<std::string>(row[series_column]) == "threshold") {
            const double fraction = number_at(row, fraction_column), kept = number_at(row, kept_column);
            if (!(fraction > 0) || std::isnan(kept)) continue;
            svg.element("circle", {{"data-series", "threshold"}, {"data-fraction", svg_number(fraction)},
                                   {"cx", svg_number(f.x(1 / fraction))}, {"cy", svg_number(f.y(kept))}, {"r", "5"},
                                   {"stroke", "black"}, {"stroke-width", "1.5"}, {"fill", "white"}});
            legend.push_back({"threshold rule", "black", "", 2, marker::open});
        }
    draw_legend(svg, f, legend);
    return svg.finish();
}

}  // namespace adaptk
