#include "adaptk/svg.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace adaptk {

std::string svg_number(double value) {
    // Hundredths of a pixel are below what any renderer shows; "-0" reads oddly.
    value = std::round(value * 100) / 100;
    if (value == 0) value = 0;
    char buffer[64];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, 2).ptr;
    std::string text(buffer, end);
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
    return text;
}

std::string xml_escaped(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out += c;
        }
    }
    return out;
}

svg_writer::svg_writer(double width, double height) {
    const std::string w = svg_number(width), h = svg_number(height);
    out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + w + "\" height=\"" + h +
           "\" viewBox=\"0 0 " + w + " " + h + "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
    element("rect", {{"width", w}, {"height", h}, {"fill", "white"}});
}

void svg_writer::open_tag(std::string_view tag, const svg_attributes& attributes) {
    out_ += '<';
    out_ += tag;
    for (const auto& [name, value] : attributes) out_ += " " + name + "=\"" + xml_escaped(value) + "\"";
}

void svg_writer::element(std::string_view tag, const svg_attributes& attributes) {
    open_tag(tag, attributes);
    out_ += "/>\n";
}

void svg_writer::polyline(const std::vector<svg_point>& points, const svg_attributes& attributes) {
    std::string list;
    for (const auto& p : points) list += (list.empty() ? "" : " ") + svg_number(p.x) + "," + svg_number(p.y);
    svg_attributes all{{"points", list}, {"fill", "none"}};
    all.insert(all.end(), attributes.begin(), attributes.end());
    element("polyline", all);
}

void svg_writer::text(double x, double y, std::string_view content, const svg_attributes& attributes) {
    svg_attributes all{{"x", svg_number(x)}, {"y", svg_number(y)}};
    all.insert(all.end(), attributes.begin(), attributes.end());
    open_tag("text", all);
    out_ += ">" + xml_escaped(content) + "</text>\n";
}

void svg_writer::open_group(const svg_attributes& attributes) {
    open_tag("g", attributes);
    out_ += ">\n";
    ++open_groups_;
}

void svg_writer::close_group() {
    if (open_groups_ == 0) throw std::logic_error("svg_writer::close_group without an open group");
    out_ += "</g>\n";
    --open_groups_;
}

std::string svg_writer::finish() {
    for (; open_groups_ > 0; --open_groups_) out_ += "</g>\n";
    out_ += "</svg>\n";
    return std::move(out_);
}

}  // namespace adaptk
