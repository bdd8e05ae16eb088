#pragma once
// One mapped, validated weight file of either format, described the same
// way: its tensors (row-major shapes, offsets into the data section) and where
// that section starts. The checkpoint and everything above it see only this.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "adaptk/gguf.hpp"
#include "adaptk/llama2c.hpp"
#include "adaptk/mapped_file.hpp"
#include "adaptk/tensor_info.hpp"

namespace adaptk {

class tensor_file {
public:
    enum class file_format { safetensors, gguf, llama2c };

    /// Opens and validates `path`: GGUF when it starts with the GGUF magic or
    /// is named *.gguf, llama2.c when it starts with "ak42" or is named *.bin,
    /// safetensors otherwise. Only a window over the header is mapped, and only
    /// while it is parsed. Throws std::system_error or format_error.
    explicit tensor_file(const std::filesystem::path& path);

    file_format format() const noexcept { return format_; }
    /// In file order.
    const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }
    /// The GGUF key-values the tool reads; nullopt for a safetensors file.
    const std::optional<gguf_model>& gguf() const noexcept { return gguf_; }
    /// The llama2.c header; nullopt for the other formats.
    const std::optional<llama2c_config>& llama2c() const noexcept { return llama2c_; }
    /// The open file, for positioned reads and mapped windows of its tensors.
    const read_only_file& source() const noexcept { return *source_; }
    /// The file, shared: matrices that hold it keep it open after this object
    /// (or the checkpoint holding it) is gone.
    const std::shared_ptr<const read_only_file>& shared_source() const noexcept { return source_; }
    const std::filesystem::path& path() const noexcept { return source_->path(); }
    /// Absolute file offset of the tensor's first byte.
    std::uint64_t file_offset(const tensor_info& tensor) const noexcept { return data_offset_ + tensor.begin; }

private:
    std::shared_ptr<const read_only_file> source_;
    file_format format_ = file_format::safetensors;
    std::uint64_t data_offset_ = 0;
    std::vector<tensor_info> tensors_;
    std::optional<gguf_model> gguf_;
    std::optional<llama2c_config> llama2c_;
};

}  // namespace adaptk
