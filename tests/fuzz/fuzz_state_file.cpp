// libFuzzer: arbitrary bytes as an accumulator state file (state_file.hpp).
// The readers may only answer with adaptk::format_error; anything else is a
// crash. A state they accept must honour what parse_state promises: tensor
// indices in range with the sizes its part needs, a matrix list in analysis
// order whose hidden axes have the state's dimension, and with per-matrix
// rows one eigenvalue tensor of d or N < d finite, non-negative, descending
// values for each matrix of its part.

#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <span>

#include "adaptk/error.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/safetensors.hpp"
#include "adaptk/state_file.hpp"

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

void check_accepted(std::span<const std::byte> file, const adaptk::safetensors_header& header,
                    const adaptk::state_part& state) {
    require(state.part >= 1 && state.part <= state.parts);
    require(!state.matrices.empty());
    require(state.grams.size() == state.vectors.size() && state.sums.size() == state.vectors.size());
    require(state.longest_float_runs.size() == state.vectors.size() && state.flushes.size() == state.vectors.size());
    for (std::size_t t = 0; t < state.vectors.size(); ++t) {
        if (state.grams[t] == adaptk::state_part::no_tensor) {
            require(state.vectors[t] == 0);
            continue;
        }
        require(state.grams[t] < header.tensors.size());
        require(header.tensors[state.grams[t]].bytes() == 8 * adaptk::packed_upper_size(state.dim));
        if (state.center) require(header.tensors[state.sums[t]].bytes() == 8 * state.dim);
        require(state.longest_float_runs[t] <= state.vectors[t] && state.flushes[t] <= state.vectors[t]);
    }
    for (const auto& m : state.matrices) require((m.vectors_are_rows ? m.cols : m.rows) == state.dim);
    require(state.eigenvalues.size() == (state.per_matrix ? state.matrices.size() : 0));
    for (std::size_t m = 0; m < state.eigenvalues.size(); ++m) {
        if (state.eigenvalues[m] == adaptk::state_part::no_tensor) continue;
        require(state.eigenvalues[m] < header.tensors.size());
        const auto& tensor = header.tensors[state.eigenvalues[m]];
        const std::uint64_t count = tensor.bytes() / 8;
        require(count == state.dim || (count == state.matrices[m].vector_count() && count < state.dim));
        double before = std::numeric_limits<double>::infinity();
        for (std::uint64_t i = 0; i < count; ++i) {
            double value;
            std::memcpy(&value, file.data() + header.data_offset + tensor.begin + 8 * i, sizeof value);
            require(std::isfinite(value) && value >= 0 && value <= before);
            before = value;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
    try {
        const auto header = adaptk::parse_safetensors(file, "fuzz.state");
        check_accepted(file, header, adaptk::parse_state(file, header, "fuzz.state"));
    } catch (const adaptk::format_error&) {
        // The expected answer to a malformed file.
    }
    return 0;
}
