#pragma once
// RFC 4180 output: header row always, fields quoted only when they hold
// ',', '"', CR or LF (quotes doubled), '\n' line ends, numbers via
// std::to_chars (shortest text that reads back to the same double,
// locale-free). Empty cells are empty fields; NaN is written empty too.
// Files: write_table_file in table_writer.hpp.

#include <ostream>
#include <string>

#include "adaptk/table.hpp"

namespace adaptk {

/// The text of one cell, unquoted.
std::string cell_text(const cell& value);
/// Writes one field's text, escaped as its format requires.
using field_writer = void (*)(std::ostream& out, const std::string& text);
/// Writes `t` one line per row, header first: each cell's cell_text through
/// `write`, fields separated by `separator`. CSV and TSV share it.
void write_delimited(std::ostream& out, const table& t, char separator, field_writer write);
/// Writes `t` as CSV.
void write_csv(std::ostream& out, const table& t);

}  // namespace adaptk
