#pragma once
// Streams a safetensors file to disk in bounded memory: declare every tensor,
// then write their bytes in declaration order. The file appears under its
// final name only after finish() (written as an atomic_file: a temporary beside it, then renamed).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "adaptk/atomic_file.hpp"
#include "adaptk/dtype.hpp"

namespace adaptk {

class safetensors_writer {
public:
    /// `header_alignment` pads the JSON with spaces so the data section starts
    /// at a multiple of it (8 as the HF library does; 1 for unpadded files).
    explicit safetensors_writer(std::filesystem::path path, std::size_t header_alignment = 8);
    safetensors_writer(const safetensors_writer&) = delete;
    safetensors_writer& operator=(const safetensors_writer&) = delete;

    /// Declares the next tensor; data is laid out in declaration order.
    void declare(std::string name, dtype type, std::vector<std::uint64_t> shape);
    /// Adds a "__metadata__" string entry.
    void metadata(std::string key, std::string value);

    /// Appends raw element bytes of the current tensor (any number of calls;
    /// the header is written before the first byte).
    void write(std::span<const std::byte> bytes);
    /// Appends float values encoded in the current tensor's dtype.
    void write_values(std::span<const float> values);
    void write_values(std::span<const double> values);

    /// Checks every tensor got exactly its bytes, flushes, renames into place.
    void finish();

private:
    struct pending {
        std::string name;
        dtype type;
        std::vector<std::uint64_t> shape;
        std::uint64_t bytes;
    };
    void start_data();
    void advance(std::uint64_t bytes);

    std::filesystem::path path_;
    std::size_t header_alignment_;
    std::vector<pending> tensors_;
    std::vector<std::pair<std::string, std::string>> metadata_;
    std::unique_ptr<atomic_file> out_;  ///< opened when the first byte is written
    bool data_started_ = false;
    std::size_t current_ = 0;          ///< tensor being written
    std::uint64_t current_written_ = 0;  ///< its bytes so far
    std::vector<std::byte> encode_buffer_;
};

}  // namespace adaptk
