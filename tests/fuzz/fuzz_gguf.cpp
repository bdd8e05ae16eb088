// libFuzzer: arbitrary bytes as a GGUF file image. The parser may only answer
// with adaptk::format_error; anything else (another exception, a sanitizer
// report, a broken invariant below) is a crash. A header it accepts must
// honour the promise "afterwards every reader may trust the offsets".

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <span>
#include <vector>

#include "adaptk/error.hpp"
#include "adaptk/gguf.hpp"

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

// Checks what validation guarantees, then decodes the first rows of every
// decodable tensor the way the analysis would (ASan catches any stray byte).
void check_accepted(std::span<const std::byte> file, const adaptk::gguf_header& header) {
    require(header.alignment > 0 && (header.alignment & (header.alignment - 1)) == 0);
    require(header.data_offset % header.alignment == 0);
    require(header.data_bytes == 0 || header.data_offset + header.data_bytes == file.size());
    if (const auto& split = header.model.split)
        require(split->count > 0 && split->number < split->count && header.tensors.size() <= split->tensors);
    for (const auto& tensor : header.tensors) {
        require(!tensor.shape.empty() && tensor.shape.size() <= adaptk::gguf_max_dims);
        require(tensor.begin % header.alignment == 0);
        require(tensor.begin <= tensor.end && tensor.end <= header.data_bytes);
        const auto bytes = adaptk::storage_bytes(tensor.type, tensor.elements);
        require(bytes && *bytes == tensor.bytes());
        if (!adaptk::is_floating_decodable(tensor.type) || tensor.elements == 0) continue;
        const std::uint64_t row = tensor.shape.back();
        const std::size_t count = row < 64 ? row : 64;
        float values[64];
        adaptk::decode_range(tensor.type, file.data() + header.data_offset + tensor.begin, 0, count, values);
    }
}

// The program parses only the file's first bytes, given the file size: the
// header parsed from a copy of exactly its own bytes (ASan flags any read past
// them) must equal the one parsed from the whole image.
void check_prefix_parse(std::span<const std::byte> file, const adaptk::gguf_header& header) {
    const auto header_end = static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(header.data_offset, file.size()));
    const std::vector<std::byte> head(file.begin(), file.begin() + header_end);
    const auto reparsed = adaptk::parse_gguf(head, file.size(), "fuzz.gguf");
    require(reparsed.data_offset == header.data_offset && reparsed.data_bytes == header.data_bytes);
    require(reparsed.tensors == header.tensors);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
    try {
        const auto header = adaptk::parse_gguf(file, "fuzz.gguf");
        check_accepted(file, header);
        check_prefix_parse(file, header);
    } catch (const adaptk::format_error&) {
        // The expected answer to a malformed file.
    }
    return 0;
}
