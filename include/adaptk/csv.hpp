#pragma once
// RFC 4180 output: header row always, fields quoted only when they hold
// ',', '"', CR or LF (quotes doubled), '\n' line ends, numbers via
// std::to_chars (shortest text that reads back to the same double,
// locale-free). Empty cells are empty fields; NaN is written empty too.
// Files: write_table_file in table_writer.hpp.

#include <ostream>
#include <string>

#include "adaptk/tables.hpp"

namespace adaptk {

/// The text of one cell, unquoted.
std::string cell_text(const cell& value);
/// Writes `t` as CSV.
void write_csv(std::ostream& out, const table& t);

}  // namespace adaptk
