#include "adaptk/tensor_file.hpp"

#include "adaptk/safetensors.hpp"

namespace adaptk {

std::string shape_string(const std::vector<std::uint64_t>& shape) {
    std::string text;
    for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? "x" : "") + std::to_string(shape[i]);
    return text;
}

std::string dims_list(const std::vector<std::uint64_t>& dims) {
    std::string text = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
    return text + "]";
}

tensor_file::tensor_file(const std::filesystem::path& path) : mapping_(std::make_shared<const mapped_file>(path)) {
    const std::span<const std::byte> image(mapping_->data(), mapping_->size());
    if (has_gguf_magic(image) || path.extension() == ".gguf") {
        auto header = parse_gguf(image, path.string());
        format_ = file_format::gguf;
        data_offset_ = header.data_offset;
        tensors_ = std::move(header.tensors);
        gguf_ = std::move(header.model);
    } else {
        auto header = parse_safetensors(image, path.string());
        data_offset_ = header.data_offset;
        tensors_ = std::move(header.tensors);
    }
}

}  // namespace adaptk
