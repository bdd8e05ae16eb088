#include "adaptk/tensor_file.hpp"

#include "adaptk/safetensors.hpp"

namespace adaptk {

namespace {

// The prefix mapped while the header is parsed: room for the largest
// safetensors header (max_header_bytes) and any real GGUF header, and still a
// small share of a 32-bit address space.
constexpr std::size_t header_window_bytes = std::size_t{256} << 20;
static_assert(8 + max_header_bytes <= header_window_bytes);

}  // namespace

tensor_file::tensor_file(const std::filesystem::path& path)
    : source_(std::make_shared<const read_only_file>(path)) {
    const mapped_file window(*source_, 0, header_window_bytes);
    const std::span<const std::byte> head(window.data(), window.size());
    if (has_gguf_magic(head) || path.extension() == ".gguf") {
        auto header = parse_gguf(head, source_->size(), path.string());
        format_ = file_format::gguf;
        data_offset_ = header.data_offset;
        tensors_ = std::move(header.tensors);
        gguf_ = std::move(header.model);
    } else if (has_llama2c_magic(head) || path.extension() == ".bin") {
        auto header = parse_llama2c(head, source_->size(), path.string());
        format_ = file_format::llama2c;
        tensors_ = std::move(header.tensors);  // offsets from the start of the file
        llama2c_ = header.config;
    } else {
        auto header = parse_safetensors(head, source_->size(), path.string());
        data_offset_ = header.data_offset;
        tensors_ = std::move(header.tensors);
    }
}

}  // namespace adaptk
