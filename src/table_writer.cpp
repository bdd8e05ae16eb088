#include "adaptk/table_writer.hpp"

#include <cmath>

#include "adaptk/atomic_file.hpp"
#include "adaptk/csv.hpp"

namespace adaptk {
namespace {

void write_tsv_field(std::ostream& out, const std::string& text) {
    for (const char c : text) {
        switch (c) {
        case '\\': out << "\\\\"; break;
        case '\t': out << "\\t"; break;
        case '\n': out << "\\n"; break;
        case '\r': out << "\\r"; break;
        default: out << c;
        }
    }
}


}  // namespace

std::string_view format_name(table_format format) {
    for (const auto& [f, name] : table_formats)
        if (f == format) return name;
    return {};
}

std::optional<table_format> format_named(std::string_view name) {
    for (const auto& [f, spelling] : table_formats)
        if (spelling == name) return f;
    return std::nullopt;
}

nlohmann::ordered_json row_object(const table& t, const std::vector<cell>& row) {
    nlohmann::ordered_json object;
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
        auto& field = object[t.columns[c]];
        if (const auto* text = std::get_if<std::string>(&row[c])) field = *text;
        else if (const auto* integer = std::get_if<std::int64_t>(&row[c])) field = *integer;
        else if (const auto* real = std::get_if<double>(&row[c]); real && std::isfinite(*real)) field = *real;
    }
    return object;
}

void write_tsv(std::ostream& out, const table& t) { write_delimited(out, t, '\t', write_tsv_field); }

void write_json(std::ostream& out, const table& t) {
    if (t.rows.empty()) {
        out << "[]\n";
        return;
    }
    // Tensor names come from the files: bytes that are not UTF-8 become U+FFFD
    // instead of failing the whole table.
    const char* separator = "[\n";
    for (const auto& row : t.rows) {
        out << separator << row_object(t, row).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        separator = ",\n";
    }
    out << "\n]\n";
}

void write_table(std::ostream& out, const table& t, table_format format) {
    switch (format) {
    case table_format::csv: write_csv(out, t); break;
    case table_format::tsv: write_tsv(out, t); break;
    case table_format::json: write_json(out, t); break;
    }
}

void write_table_file(const std::filesystem::path& path, const table& t, table_format format) {
    atomic_file file(path);
    write_table(file.stream(), t, format);
    file.commit();
}

}  // namespace adaptk
