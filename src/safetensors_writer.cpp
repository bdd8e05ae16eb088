#include "adaptk/safetensors_writer.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "adaptk/error.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

template <class T>
void append(std::vector<std::byte>& out, T value) {
    const auto* bytes = reinterpret_cast<const std::byte*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof value);
}

// Encodes floating values in `type`; doubles reach F16/BF16 through float.
template <class In>
void encode(dtype type, std::span<const In> values, std::vector<std::byte>& out) {
    out.clear();
    out.reserve(values.size() * dtype_bytes(type));
    for (const In value : values) {
        switch (type) {
        case dtype::f64: append(out, static_cast<double>(value)); break;
        case dtype::f32: append(out, static_cast<float>(value)); break;
        case dtype::f16: append(out, float_to_half(static_cast<float>(value))); break;
        case dtype::bf16: append(out, float_to_bf16(static_cast<float>(value))); break;
        default: throw std::invalid_argument("safetensors_writer: write_values needs F64, F32, F16 or BF16");
        }
    }
}

}  // namespace

safetensors_writer::safetensors_writer(std::filesystem::path path, std::size_t header_alignment)
    : path_(std::move(path)), header_alignment_(header_alignment) {
    if (header_alignment_ == 0) throw std::invalid_argument("safetensors_writer: header_alignment must be >= 1");
}

void safetensors_writer::declare(std::string name, dtype type, std::vector<std::uint64_t> shape) {
    if (data_started_) throw std::logic_error("safetensors_writer: declare after data was written");
    // The header is a JSON object: a repeated name would replace the earlier entry.
    if (name == "__metadata__" ||
        std::any_of(tensors_.begin(), tensors_.end(), [&](const pending& t) { return t.name == name; }))
        throw std::invalid_argument("safetensors_writer: tensor name '" + name + "' is reserved or already declared");
    std::optional<std::uint64_t> bytes = dtype_bytes(type);
    for (const auto extent : shape)
        if (bytes) bytes = detail::checked_mul(*bytes, extent);
    if (!bytes) throw std::invalid_argument("safetensors_writer: byte count of tensor '" + name + "' overflows 64 bits");
    tensors_.push_back({std::move(name), type, std::move(shape), *bytes});
}

void safetensors_writer::metadata(std::string key, std::string value) {
    if (data_started_) throw std::logic_error("safetensors_writer: metadata after data was written");
    metadata_.emplace_back(std::move(key), std::move(value));
}

void safetensors_writer::start_data() {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) {
        auto& meta = header["__metadata__"];
        for (const auto& [key, value] : metadata_) meta[key] = value;
    }
    std::uint64_t offset = 0;
    for (const auto& tensor : tensors_) {
        header[tensor.name] = {{"dtype", std::string(dtype_name(tensor.type))},
                               {"shape", tensor.shape},
                               {"data_offsets", {offset, offset + tensor.bytes}}};
        offset += tensor.bytes;
    }
    std::string text = header.dump();
    while ((8 + text.size()) % header_alignment_ != 0) text += ' ';

    out_ = std::make_unique<atomic_file>(path_);
    std::vector<std::byte> prefix;
    append(prefix, static_cast<std::uint64_t>(text.size()));
    out_->stream().write(reinterpret_cast<const char*>(prefix.data()), static_cast<std::streamsize>(prefix.size()));
    out_->stream().write(text.data(), static_cast<std::streamsize>(text.size()));
    data_started_ = true;
}

void safetensors_writer::advance(std::uint64_t bytes) {
    // Skip finished (and empty) tensors so writes flow across tensor boundaries.
    while (current_ < tensors_.size() && current_written_ == tensors_[current_].bytes) {
        ++current_;
        current_written_ = 0;
    }
    if (bytes == 0) return;
    if (current_ == tensors_.size()) throw std::logic_error("safetensors_writer: more bytes than declared");
    if (bytes > tensors_[current_].bytes - current_written_)
        throw std::logic_error("safetensors_writer: write crosses the end of tensor '" + tensors_[current_].name + "'");
    current_written_ += bytes;
}

void safetensors_writer::write(std::span<const std::byte> bytes) {
    if (!data_started_) start_data();
    advance(bytes.size());
    out_->stream().write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void safetensors_writer::write_values(std::span<const float> values) {
    advance(0);
    if (current_ == tensors_.size()) throw std::logic_error("safetensors_writer: no tensor left to write");
    encode(tensors_[current_].type, values, encode_buffer_);
    write(encode_buffer_);
}

void safetensors_writer::write_values(std::span<const double> values) {
    advance(0);
    if (current_ == tensors_.size()) throw std::logic_error("safetensors_writer: no tensor left to write");
    encode(tensors_[current_].type, values, encode_buffer_);
    write(encode_buffer_);
}

void safetensors_writer::finish() {
    if (!data_started_) start_data();
    advance(0);
    if (current_ != tensors_.size())
        throw std::logic_error("safetensors_writer: tensor '" + tensors_[current_].name + "' is incomplete");
    out_->commit();
}

}  // namespace adaptk
