#pragma once
// A minimal SVG 1.1 writer: elements with attributes, text and groups, written
// in order into one string. Coordinates are printed with two decimals
// (hundredths of a pixel), locale-free; text and attribute values are
// XML-escaped. Knows nothing about plots (plots.hpp draws with it).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adaptk {

/// name="value" pairs, written in order.
using svg_attributes = std::vector<std::pair<std::string, std::string>>;

struct svg_point {
    double x = 0, y = 0;
};

/// `value` with two decimals and no trailing zeros: 12.5 -> "12.5", 3 -> "3".
std::string svg_number(double value);
/// `text` with &, <, >, " and ' replaced by entities.
std::string xml_escaped(std::string_view text);

class svg_writer {
public:
    /// Starts a document of `width`×`height` px with a white background.
    svg_writer(double width, double height);

    /// <tag attributes/>.
    void element(std::string_view tag, const svg_attributes& attributes);
    /// <polyline points="x,y ..." fill="none" attributes/>.
    void polyline(const std::vector<svg_point>& points, const svg_attributes& attributes);
    /// <text x y attributes>content</text>.
    void text(double x, double y, std::string_view content, const svg_attributes& attributes);
    /// <g attributes> ... until the matching close_group().
    void open_group(const svg_attributes& attributes);
    void close_group();

    /// The document, with open groups and the root closed. Call once.
    std::string finish();

private:
    void open_tag(std::string_view tag, const svg_attributes& attributes);
    std::string out_;
    int open_groups_ = 0;
};

}  // namespace adaptk
