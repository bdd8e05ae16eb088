#pragma once
// A table as the writers see it: a name, column names and rows of cells.
// Knows nothing of what the numbers mean; tables.hpp builds the study's.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace adaptk {

/// Empty (undefined or not applicable), text, integer, or real.
using cell = std::variant<std::monostate, std::string, std::int64_t, double>;

struct table {
    std::string name;  ///< "profile", "groups", ...: the file stem in report
    std::vector<std::string> columns;
    std::vector<std::vector<cell>> rows;
};

}  // namespace adaptk
