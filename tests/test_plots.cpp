#define BOOST_TEST_MODULE plots
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include "adaptk/plots.hpp"
#include "xml_support.hpp"

using namespace adaptk;
using adaptk::test::parse_xml;
using adaptk::test::xml_element;

namespace {

constexpr std::uint64_t d = 100;
constexpr std::size_t universal_k = 40;

// Three types with spectra of different shapes (power law, flat, one spike)
// and made-up universal captures; the tests recompute everything from these.
analysis_result sample_result() {
    analysis_result r;
    r.dim = d;
    r.k = 16;
    r.universal_k = universal_k;
    std::mt19937_64 random(5);
    const std::vector<std::pair<weight_type, std::function<double(std::size_t)>>> shapes{
        {weight_type::q, [](std::size_t i) { return 1.0 / std::pow(static_cast<double>(i + 1), 1.2); }},
        {weight_type::up, [](std::size_t) { return 2.0; }},
        {weight_type::head, [](std::size_t i) { return i == 0 ? 50.0 : 0.1; }},
    };
    for (const auto& [type, shape] : shapes) {
        type_spectrum t;
        t.type = type;
        t.eigenvalues.set_size(d);
        for (std::size_t i = 0; i < d; ++i) t.eigenvalues(i) = shape(i);
        t.energy = arma::accu(t.eigenvalues);
        t.universal_capture.set_size(universal_k);
        for (std::size_t j = 0; j < universal_k; ++j)
            t.universal_capture(j) = std::uniform_real_distribution<double>(0, 1.5 / universal_k)(random);
        r.types.push_back(std::move(t));
    }
    return r;
}

// Plain long-double references, apart from spectrum.cpp.
long double cumulative(const arma::vec& lambda, std::size_t k) {
    long double total = 0, head = 0;
    for (std::size_t i = 0; i < lambda.n_elem; ++i) {
        total += lambda(i);
        if (i < k) head += lambda(i);
    }
    return head / total;
}
std::size_t k_for(const arma::vec& lambda, long double p) {
    for (std::size_t k = 1; k <= lambda.n_elem; ++k)
        if (cumulative(lambda, k) >= p) return k;
    return lambda.n_elem;
}

struct box {
    double left, top, width, height;
};

box plot_area(const std::vector<xml_element>& elements) {
    for (const auto& e : elements)
        if (e.tag == "rect" && e.attributes.count("class") && e.at("class") == "plot-area") {
            BOOST_TEST(std::stod(e.at("data-x-max")) == static_cast<double>(d));
            return {std::stod(e.at("x")), std::stod(e.at("y")), std::stod(e.at("width")), std::stod(e.at("height"))};
        }
    throw std::runtime_error("no plot-area rect");
}

std::vector<std::pair<double, double>> points_of(const xml_element& polyline) {
    std::vector<std::pair<double, double>> points;
    std::istringstream in(polyline.at("points"));
    std::string pair;
    while (in >> pair) {
        const auto comma = pair.find(',');
        points.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
    }
    return points;
}

// Inverse of the documented axes: x log over [1, d], y linear over [0, 1].
double x_value(const box& b, double px) { return std::exp((px - b.left) / b.width * std::log(static_cast<double>(d))); }
double y_value(const box& b, double py) { return 1 - (py - b.top) / b.height; }
double x_px(const box& b, double value) { return b.left + b.width * std::log(value) / std::log(static_cast<double>(d)); }
double y_px(const box& b, double fraction) { return b.top + b.height * (1 - fraction); }

std::map<std::string, const xml_element*> polylines_by(const std::vector<xml_element>& elements, const std::string& key) {
    std::map<std::string, const xml_element*> found;
    for (const auto& e : elements)
        if (e.tag == "polyline" && e.attributes.count(key)) BOOST_TEST(found.emplace(e.at(key), &e).second);
    return found;
}

// Points strictly increasing in x and inside the plot box.
void check_inside_and_increasing(const box& b, const std::vector<std::pair<double, double>>& points) {
    BOOST_TEST_REQUIRE(points.size() >= 2u);
    for (std::size_t i = 0; i < points.size(); ++i) {
        const auto [x, y] = points[i];
        BOOST_TEST((x >= b.left - 1e-9 && x <= b.left + b.width + 1e-9), "x " << x);
        BOOST_TEST((y >= b.top - 1e-9 && y <= b.top + b.height + 1e-9), "y " << y);
        if (i) BOOST_TEST(x > points[i - 1].first);
    }
}

constexpr double px_tolerance = 0.006;              // coordinates are printed to 0.01 px
constexpr double fraction_tolerance = 0.006 / 380;  // that, in fractions of the 380 px y axis

}  // namespace

BOOST_AUTO_TEST_SUITE(plots)

BOOST_AUTO_TEST_CASE(spectra_has_one_curve_per_type_through_the_cumulative_energy) {
    const analysis_result r = sample_result();
    const auto elements = parse_xml(spectra_svg(r));
    BOOST_TEST(elements[0].tag == "svg");
    const box b = plot_area(elements);
    const auto curves = polylines_by(elements, "data-type");
    BOOST_TEST_REQUIRE(curves.size() == r.types.size());
    for (const auto& t : r.types) {
        const std::string name(type_name(t.type));
        BOOST_TEST_REQUIRE(curves.count(name) == 1u, name);
        const auto points = points_of(*curves.at(name));
        check_inside_and_increasing(b, points);
        BOOST_TEST(std::llround(x_value(b, points.front().first)) == 1);
        BOOST_TEST(std::llround(x_value(b, points.back().first)) == static_cast<long long>(d));
        for (const auto& [x, y] : points) {
            const double k = x_value(b, x);
            BOOST_TEST(std::abs(k - std::round(k)) < 1e-3 * k, "K " << k << " is not an integer");
            const auto expected = static_cast<double>(cumulative(t.eigenvalues, static_cast<std::size_t>(std::llround(k))));
            BOOST_TEST(std::abs(y_value(b, y) - expected) < fraction_tolerance, name << " at K " << k);
        }
    }
}

BOOST_AUTO_TEST_CASE(spectra_marks_k50_and_k90_of_each_type_on_its_curve) {
    const analysis_result r = sample_result();
    const auto elements = parse_xml(spectra_svg(r));
    const box b = plot_area(elements);
    std::map<std::pair<std::string, std::string>, const xml_element*> markers;
    for (const auto& e : elements)
        if (e.tag == "circle" && e.attributes.count("data-type"))
            BOOST_TEST(markers.emplace(std::pair{e.at("data-type"), e.at("data-fraction")}, &e).second);
    BOOST_TEST(markers.size() == 2 * r.types.size());
    for (const auto& t : r.types) {
        const std::string name(type_name(t.type));
        for (const auto& [fraction, text] : {std::pair{0.5L, "0.5"}, std::pair{0.9L, "0.9"}}) {
            BOOST_TEST_REQUIRE(markers.count({name, text}) == 1u, name << " " << text);
            const auto& m = *markers.at({name, text});
            const std::size_t k = k_for(t.eigenvalues, fraction);
            BOOST_TEST(std::stoul(m.at("data-k")) == k, name << " " << text);
            BOOST_TEST(std::abs(std::stod(m.at("cx")) - x_px(b, static_cast<double>(k))) < px_tolerance);
            BOOST_TEST(std::abs(std::stod(m.at("cy")) - y_px(b, static_cast<double>(cumulative(t.eigenvalues, k)))) <
                       px_tolerance);
        }
    }
    // The head's spike holds half the energy alone: its K50 is 1, at the left edge.
    BOOST_TEST(markers.at({"head", "0.5"})->at("data-k") == "1");
}

BOOST_AUTO_TEST_CASE(spectra_lists_a_type_without_energy_but_draws_no_curve_for_it) {
    analysis_result r = sample_result();
    r.types[1].eigenvalues.zeros();
    const auto elements = parse_xml(spectra_svg(r));
    BOOST_TEST(polylines_by(elements, "data-type").size() == r.types.size() - 1);
    bool listed = false;
    for (const auto& e : elements) listed = listed || (e.tag == "text" && e.text == "up (no energy)");
    BOOST_TEST(listed);
}

// rsvd keeps the top eigenvalues and the exact energy: curves stop there, and
// a K90 beyond them is not guessed.
BOOST_AUTO_TEST_CASE(spectra_of_a_partial_spectrum_stop_at_the_computed_values) {
    analysis_result r = sample_result();
    r.how = method::rsvd;
    constexpr std::size_t computed = 10;
    for (auto& t : r.types) t.eigenvalues = arma::vec(t.eigenvalues.head(computed));
    const auto elements = parse_xml(spectra_svg(r));
    const box b = plot_area(elements);
    const auto curves = polylines_by(elements, "data-type");
    BOOST_TEST_REQUIRE(curves.size() == r.types.size());
    for (const auto& t : r.types) {
        const auto points = points_of(*curves.at(std::string(type_name(t.type))));
        check_inside_and_increasing(b, points);
        BOOST_TEST(std::llround(x_value(b, points.back().first)) == static_cast<long long>(computed));
        const double head = arma::accu(t.eigenvalues) / t.energy;  // what the 10 values hold
        BOOST_TEST(std::abs(y_value(b, points.back().second) - head) < fraction_tolerance);
    }
    std::map<std::string, std::size_t> markers;
    for (const auto& e : elements)
        if (e.tag == "circle" && e.attributes.count("data-type")) ++markers[e.at("data-type")];
    // q (power law, 10 of 100 values hold < 90%) and up (flat: 10%) lack K90; up lacks K50 too.
    BOOST_TEST(markers["q"] == 1u);
    BOOST_TEST(markers["up"] == 0u);
    BOOST_TEST(markers["head"] == 1u);  // the spike reaches 50%, the 0.1s never 90% in 10 values
}

BOOST_AUTO_TEST_CASE(frontier_has_own_basis_curves_per_type_and_the_two_means) {
    const analysis_result r = sample_result();
    const table rows = frontier_table(r, {8, 32});
    const auto elements = parse_xml(frontier_svg(r, rows));
    const box b = plot_area(elements);
    const auto curves = polylines_by(elements, "data-type");
    BOOST_TEST_REQUIRE(curves.size() == r.types.size());
    for (const auto& t : r.types) {
        const std::string name(type_name(t.type));
        const auto points = points_of(*curves.at(name));
        check_inside_and_increasing(b, points);
        for (const auto& [x, y] : points) {
            const auto k = static_cast<std::size_t>(std::llround(static_cast<double>(d) / x_value(b, x)));
            BOOST_TEST(std::abs(y_value(b, y) - static_cast<double>(cumulative(t.eigenvalues, k))) < fraction_tolerance,
                       name << " at K " << k);
        }
    }

    const auto means = polylines_by(elements, "data-series");
    BOOST_TEST_REQUIRE(means.size() == 2u);
    for (const auto& [series, line] : means) {
        const auto points = points_of(*line);
        check_inside_and_increasing(b, points);
        for (const auto& [x, y] : points) {
            const auto k = static_cast<std::size_t>(std::llround(static_cast<double>(d) / x_value(b, x)));
            BOOST_TEST(k <= universal_k);  // no universal energy beyond the computed basis
            long double sum = 0;
            for (const auto& t : r.types) {
                if (series == "mean-own") {
                    sum += cumulative(t.eigenvalues, k);
                } else {
                    for (std::size_t j = 0; j < k; ++j) sum += t.universal_capture(j);
                }
            }
            const double expected = static_cast<double>(sum / r.types.size());
            BOOST_TEST(std::abs(y_value(b, y) - expected) < fraction_tolerance, series << " at K " << k);
        }
    }

    // The frontier table's rows as dots on the means.
    std::size_t dots = 0;
    for (const auto& e : elements)
        if (e.tag == "circle" && e.attributes.count("data-series")) {
            ++dots;
            const double k = std::stod(e.at("data-k"));
            BOOST_TEST((k == 8 || k == 32));
            BOOST_TEST(std::abs(std::stod(e.at("cx")) - x_px(b, static_cast<double>(d) / k)) < px_tolerance);
        }
    BOOST_TEST(dots == 4u);
}

BOOST_AUTO_TEST_CASE(allocation_draws_each_series_against_compression_and_marks_the_threshold) {
    // A hand-made allocation frontier: fraction f is drawn at compression 1/f.
    table frontier{"allocation", {"series", "k", "params", "fraction", "energy_kept"}, {}};
    const std::vector<std::tuple<std::string, double, double>> rows{
        {"uniform_type", 0.5, 0.6}, {"uniform_type", 0.25, 0.4}, {"uniform_type", 0.05, 0.1},
        {"optimal_type", 0.02, 0.2}, {"optimal_type", 0.5, 0.7}, {"threshold", 0.8, 0.9}};
    for (const auto& [series, fraction, kept] : rows)
        frontier.rows.push_back({series, cell{}, std::int64_t{0}, fraction, kept});
    const auto elements = parse_xml(allocation_svg(frontier));
    const xml_element* area = nullptr;
    for (const auto& e : elements)
        if (e.tag == "rect" && e.attributes.count("class") && e.at("class") == "plot-area") area = &e;
    BOOST_TEST_REQUIRE(area != nullptr);
    const double x_max = 50;  // 1 / the smallest fraction
    BOOST_TEST(std::stod(area->at("data-x-max")) == x_max);
    const box b{std::stod(area->at("x")), std::stod(area->at("y")), std::stod(area->at("width")), std::stod(area->at("height"))};
    auto x_of = [&](double fraction) { return b.left + b.width * std::log(1 / fraction) / std::log(x_max); };

    const auto lines = polylines_by(elements, "data-series");
    BOOST_TEST_REQUIRE(lines.size() == 2u);  // series without rows are not drawn
    const std::map<std::string, std::vector<std::pair<double, double>>> expected{
        {"uniform_type", {{0.5, 0.6}, {0.25, 0.4}, {0.05, 0.1}}}, {"optimal_type", {{0.5, 0.7}, {0.02, 0.2}}}};
    for (const auto& [series, want] : expected) {
        const auto points = points_of(*lines.at(series));
        check_inside_and_increasing(b, points);
        BOOST_TEST_REQUIRE(points.size() == want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            BOOST_TEST(std::abs(points[i].first - x_of(want[i].first)) < px_tolerance, series);
            BOOST_TEST(std::abs(points[i].second - y_px(b, want[i].second)) < px_tolerance, series);
        }
    }
    std::size_t marks = 0;
    for (const auto& e : elements)
        if (e.tag == "circle" && e.attributes.count("data-series") && e.at("data-series") == "threshold") {
            ++marks;
            BOOST_TEST(std::stod(e.at("data-fraction")) == 0.8);
            BOOST_TEST(std::abs(std::stod(e.at("cx")) - x_of(0.8)) < px_tolerance);
            BOOST_TEST(std::abs(std::stod(e.at("cy")) - y_px(b, 0.9)) < px_tolerance);
        }
    BOOST_TEST(marks == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
