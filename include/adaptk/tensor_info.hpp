#pragma once
// One tensor as every reader describes it, whatever the file format.

#include <cstdint>
#include <string>
#include <vector>

#include "adaptk/dtype.hpp"

namespace adaptk {

/// A tensor's name, type, row-major shape and place in its file's data section.
struct tensor_info {
    std::string name;
    dtype type{};
    std::vector<std::uint64_t> shape;  ///< row-major, outermost first
    std::uint64_t elements = 0;        ///< product of shape (1 for a scalar)
    std::uint64_t begin = 0;           ///< byte offsets within the data section
    std::uint64_t end = 0;
    /// Q8_GROUPS: values per float32 scale; the scales follow the tensor's
    /// `elements` int8 values, within [begin, end). 0 for every other dtype.
    std::uint64_t scale_group = 0;

    std::uint64_t bytes() const noexcept { return end - begin; }
    friend bool operator==(const tensor_info&, const tensor_info&) = default;
};

/// A shape as `inspect` prints it: "2048x5632"; empty for a scalar.
std::string shape_string(const std::vector<std::uint64_t>& shape);
/// Dims as the readers' messages quote them: "[2048, 5632]".
std::string dims_list(const std::vector<std::uint64_t>& dims);

}  // namespace adaptk
