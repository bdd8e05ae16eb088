#include "adaptk/tensor_file.hpp"

#include "adaptk/safetensors.hpp"

namespace adaptk {

tensor_file::tensor_file(const std::filesystem::path& path) : mapping_(std::make_shared<const mapped_file>(path)) {
    const std::span<const std::byte> image(mapping_->data(), mapping_->size());
    if (has_gguf_magic(image) || path.extension() == ".gguf") {
        auto header = parse_gguf(image, path.string());
        format_ = file_format::gguf;
        data_offset_ = header.data_offset;
        tensors_ = std::move(header.tensors);
        gguf_ = std::move(header.model);
    } else if (has_llama2c_magic(image) || path.extension() == ".bin") {
        auto header = parse_llama2c(image, path.string());
        format_ = file_format::llama2c;
        tensors_ = std::move(header.tensors);  // offsets from the start of the file
        llama2c_ = header.config;
    } else {
        auto header = parse_safetensors(image, path.string());
        data_offset_ = header.data_offset;
        tensors_ = std::move(header.tensors);
    }
}

}  // namespace adaptk
