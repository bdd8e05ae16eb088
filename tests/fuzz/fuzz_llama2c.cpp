// libFuzzer: arbitrary bytes as a llama2.c checkpoint (legacy or "ak42"
// version 1 or 2). The parser may only answer with adaptk::format_error; an
// accepted header must describe float32 tensors, or version 2's int8 groups
// with their scales, that tile the file exactly.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "adaptk/error.hpp"
#include "adaptk/llama2c.hpp"

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

std::uint64_t header_end(const adaptk::llama2c_header& header) {
    return header.config.version == 0 ? 28 : adaptk::llama2c_header_bytes;
}

void check_accepted(std::span<const std::byte> file, const adaptk::llama2c_header& header) {
    std::uint64_t previous_end = header_end(header);
    for (const auto& tensor : header.tensors) {
        const bool grouped = tensor.type == adaptk::dtype::q8_groups;
        require(grouped ? header.config.version == 2 && tensor.scale_group == header.config.group_size
                        : tensor.type == adaptk::dtype::f32 && tensor.scale_group == 0);
        require(tensor.begin >= previous_end && tensor.begin <= tensor.end && tensor.end <= file.size());
        require(tensor.bytes() == (grouped ? tensor.elements + 4 * (tensor.elements / tensor.scale_group)
                                           : 4 * tensor.elements));
        require(!grouped || tensor.elements % tensor.scale_group == 0);
        previous_end = tensor.end;
        if (tensor.elements == 0) continue;
        float values[16];
        const std::size_t count = tensor.elements < 16 ? tensor.elements : 16;
        adaptk::decode(tensor.type, file.data() + tensor.begin, count, values);
        if (grouped)  // the scales follow the values
            adaptk::apply_group_scales(file.data() + tensor.begin + tensor.elements,
                                       static_cast<std::size_t>(tensor.scale_group), 0, count, values);
    }
}

// The program parses only the file's first bytes, given the file size: the
// header parsed from a copy of exactly its own bytes (ASan flags any read past
// them) must equal the one parsed from the whole image.
void check_prefix_parse(std::span<const std::byte> file, const adaptk::llama2c_header& header) {
    const std::vector<std::byte> head(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(header_end(header)));
    const auto reparsed = adaptk::parse_llama2c(head, file.size(), "fuzz.bin");
    require(reparsed.config == header.config);
    require(reparsed.tensors == header.tensors);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
    try {
        const auto header = adaptk::parse_llama2c(file, "fuzz.bin");
        check_accepted(file, header);
        check_prefix_parse(file, header);
    } catch (const adaptk::format_error&) {
        // The expected answer to a malformed file.
    }
    return 0;
}
