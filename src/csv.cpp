#include "adaptk/csv.hpp"

#include <charconv>
#include <cmath>

namespace adaptk {
namespace {

void write_field(std::ostream& out, const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) {
        out << text;
        return;
    }
    out << '"';
    for (const char c : text) {
        if (c == '"') out << '"';
        out << c;
    }
    out << '"';
}


}  // namespace

std::string cell_text(const cell& value) {
    if (const auto* text = std::get_if<std::string>(&value)) return *text;
    char buffer[32];
    if (const auto* integer = std::get_if<std::int64_t>(&value)) {
        const auto end = std::to_chars(buffer, buffer + sizeof buffer, *integer).ptr;
        return {buffer, end};
    }
    if (const auto* real = std::get_if<double>(&value)) {
        if (std::isnan(*real)) return {};
        const auto end = std::to_chars(buffer, buffer + sizeof buffer, *real).ptr;
        return {buffer, end};
    }
    return {};
}

void write_delimited(std::ostream& out, const table& t, char separator, field_writer write) {
    auto line = [&](const std::vector<std::string>& fields) {
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i) out << separator;
            write(out, fields[i]);
        }
        out << '\n';
    };
    line(t.columns);
    std::vector<std::string> fields;
    for (const auto& row : t.rows) {
        fields.clear();
        for (const auto& value : row) fields.push_back(cell_text(value));
        line(fields);
    }
}

void write_csv(std::ostream& out, const table& t) { write_delimited(out, t, ',', write_field); }

}  // namespace adaptk
