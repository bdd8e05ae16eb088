// libFuzzer: arbitrary bytes as an accumulator state file (state_file.hpp).
// The readers may only answer with adaptk::format_error; anything else is a
// crash. A state they accept must honour what parse_state promises: tensor
// indices in range with the sizes its part needs, a matrix list in analysis
// order whose hidden axes have the state's dimension.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "adaptk/error.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/safetensors.hpp"
#include "adaptk/state_file.hpp"

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

void check_accepted(const adaptk::safetensors_header& header, const adaptk::state_part& state) {
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
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
    try {
        const auto header = adaptk::parse_safetensors(file, "fuzz.state");
        check_accepted(header, adaptk::parse_state(file, header, "fuzz.state"));
    } catch (const adaptk::format_error&) {
        // The expected answer to a malformed file.
    }
    return 0;
}
