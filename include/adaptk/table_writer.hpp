#pragma once
// A table in one of three text formats, all sharing csv.hpp's cell_text for
// numbers (std::to_chars: the shortest text that reads back to the same double):
//   csv   RFC 4180, see csv.hpp.
//   tsv   header row, then one line per row, fields separated by TAB. A field's
//         backslash, TAB, LF and CR are written as \\, \t, \n, \r (the escapes
//         of PostgreSQL's text COPY and IANA's text/tab-separated-values, so no
//         field ever holds a separator); empty cells and NaN are empty fields.
//   json  an array of row objects keyed by column name, one object per line;
//         empty cells and non-finite numbers are null. nlohmann::json prints
//         doubles in a form that parses back to the same value.

#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string_view>
#include <vector>

#include "adaptk/table.hpp"

namespace adaptk {

enum class table_format { csv, tsv, json };

/// Every format with its command-line spelling, which is also the file extension.
inline constexpr std::array<std::pair<table_format, std::string_view>, 3> table_formats{{
    {table_format::csv, "csv"},
    {table_format::tsv, "tsv"},
    {table_format::json, "json"},
}};

/// "csv", "tsv" or "json".
std::string_view format_name(table_format format);
/// The format spelled `name`, if any.
std::optional<table_format> format_named(std::string_view name);

/// One row of `t` as a JSON object keyed by column name (null for empty cells
/// and non-finite numbers).
nlohmann::ordered_json row_object(const table& t, const std::vector<cell>& row);

/// Writes `t` as tab-separated values.
void write_tsv(std::ostream& out, const table& t);
/// Writes `t` as a JSON array of row objects.
void write_json(std::ostream& out, const table& t);
/// Writes `t` in `format`.
void write_table(std::ostream& out, const table& t, table_format format);
/// Writes `t` in `format` to `path` atomically (temp file, then rename).
void write_table_file(const std::filesystem::path& path, const table& t, table_format format);

}  // namespace adaptk
