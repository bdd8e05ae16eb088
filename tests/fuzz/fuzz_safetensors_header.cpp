// libFuzzer: arbitrary bytes as a safetensors file image. The parser may only
// answer with adaptk::format_error; anything else (another exception, a
// sanitizer report, a broken invariant below) is a crash. A header it accepts
// must honour the promise "afterwards every reader may trust the offsets".

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "adaptk/error.hpp"
#include "adaptk/safetensors.hpp"
#include "detail/checked.hpp"

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

// Checks what validation guarantees, then reads a few elements of every
// floating tensor the way the analysis would (ASan catches any stray byte).
void check_accepted(std::span<const std::byte> file, const adaptk::safetensors_header& header) {
    require(header.data_offset == 8 + header.header_bytes);
    require(header.data_offset + header.data_bytes == file.size());
    for (const auto& tensor : header.tensors) {
        std::uint64_t elements = 1;
        for (const auto extent : tensor.shape) {
            const auto product = adaptk::detail::checked_mul(elements, extent);
            require(product.has_value());
            elements = *product;
        }
        require(elements == tensor.elements);
        require(tensor.begin <= tensor.end && tensor.end <= header.data_bytes);
        const auto bytes = adaptk::detail::checked_mul(elements, adaptk::dtype_bytes(tensor.type));
        require(bytes && *bytes == tensor.bytes());
        if (!adaptk::is_floating_decodable(tensor.type)) continue;
        const std::size_t count = tensor.elements < 64 ? tensor.elements : 64;
        float values[64];
        adaptk::decode(tensor.type, file.data() + header.data_offset + tensor.begin, count, values);
    }
}

// The program parses only the file's first bytes, given the file size: the
// header parsed from a copy of exactly its own bytes (ASan flags any read past
// them) must equal the one parsed from the whole image.
void check_prefix_parse(std::span<const std::byte> file, const adaptk::safetensors_header& header) {
    const std::vector<std::byte> head(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(header.data_offset));
    const auto reparsed = adaptk::parse_safetensors(head, file.size(), "fuzz.safetensors");
    require(reparsed.data_offset == header.data_offset && reparsed.data_bytes == header.data_bytes);
    require(reparsed.tensors == header.tensors);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
    try {
        const auto header = adaptk::parse_safetensors(file, "fuzz.safetensors");
        check_accepted(file, header);
        check_prefix_parse(file, header);
    } catch (const adaptk::format_error&) {
        // The expected answer to a malformed file.
    }
    return 0;
}
