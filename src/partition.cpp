#include "adaptk/partition.hpp"

#include <algorithm>
#include <stdexcept>

namespace adaptk {

std::vector<std::size_t> split_by_bytes(const std::vector<weight_matrix>& matrices, std::size_t parts) {
    if (parts == 0) throw std::invalid_argument("split_by_bytes: parts must be >= 1");
    // Long double: byte totals up to 2⁶⁴ keep their order exactly enough for a boundary.
    long double total = 0;
    for (const auto& matrix : matrices) total += static_cast<long double>(matrix.vector_bytes());
    std::vector<std::size_t> part_of(matrices.size(), 0);
    long double start = 0;
    for (std::size_t m = 0; m < matrices.size(); ++m) {
        const long double bytes = static_cast<long double>(matrices[m].vector_bytes());
        if (total > 0) {
            const long double share = (start + bytes / 2) / total * static_cast<long double>(parts);
            part_of[m] = std::min(parts - 1, static_cast<std::size_t>(share));
        }
        start += bytes;
    }
    return part_of;
}

}  // namespace adaptk
