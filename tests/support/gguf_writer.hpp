#pragma once
// Hand-made GGUF images for the tests: a byte builder that writes exactly the
// fields it is given (so a test can plant one defect), and a model writer that
// lays out F32 / F16 / Q8_0 tensors the way llama.cpp does (alignment 32).
// Written from the GGUF specification; shares no code with src/gguf.cpp.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adaptk/dtype.hpp"

namespace adaptk::test {

/// GGUF value type codes and the ggml type ids the tests use.
namespace gguf_code {
inline constexpr std::uint32_t u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
                               string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12;
inline constexpr std::uint32_t type_f32 = 0, type_f16 = 1, type_q4_0 = 2, type_q8_0 = 8, type_q4_k = 12,
                               type_bf16 = 30;
}  // namespace gguf_code

/// Little-endian byte appender.
class byte_builder {
public:
    template <class T>
    byte_builder& scalar(T value) {
        const auto* p = reinterpret_cast<const std::byte*>(&value);
        bytes_.insert(bytes_.end(), p, p + sizeof value);
        return *this;
    }
    byte_builder& u32(std::uint32_t value) { return scalar(value); }
    byte_builder& u64(std::uint64_t value) { return scalar(value); }
    byte_builder& text(std::string_view s) {  // u64 length, then the bytes
        u64(s.size());
        return raw(s.data(), s.size());
    }
    byte_builder& raw(const void* data, std::size_t size) {
        const auto* p = static_cast<const std::byte*>(data);
        bytes_.insert(bytes_.end(), p, p + size);
        return *this;
    }
    byte_builder& append(std::span<const std::byte> more) { return raw(more.data(), more.size()); }
    byte_builder& zeros(std::size_t count) {
        bytes_.resize(bytes_.size() + count);
        return *this;
    }
    std::size_t size() const noexcept { return bytes_.size(); }
    const std::vector<std::byte>& bytes() const noexcept { return bytes_; }

private:
    std::vector<std::byte> bytes_;
};

/// One encoded key-value: key, value type, value.
inline std::vector<std::byte> gguf_kv_u32(std::string_view key, std::uint32_t value) {
    return byte_builder().text(key).u32(gguf_code::u32).u32(value).bytes();
}
inline std::vector<std::byte> gguf_kv_u16(std::string_view key, std::uint16_t value) {
    return byte_builder().text(key).u32(gguf_code::u16).scalar(value).bytes();
}
inline std::vector<std::byte> gguf_kv_u64(std::string_view key, std::uint64_t value) {
    return byte_builder().text(key).u32(gguf_code::u64).u64(value).bytes();
}
inline std::vector<std::byte> gguf_kv_i32(std::string_view key, std::int32_t value) {
    return byte_builder().text(key).u32(gguf_code::i32).scalar(value).bytes();
}
inline std::vector<std::byte> gguf_kv_f32(std::string_view key, float value) {
    return byte_builder().text(key).u32(gguf_code::f32).scalar(value).bytes();
}
inline std::vector<std::byte> gguf_kv_string(std::string_view key, std::string_view value) {
    return byte_builder().text(key).u32(gguf_code::string).text(value).bytes();
}
/// An array value: element type, count, then `elements` as given (already encoded).
inline std::vector<std::byte> gguf_array_value(std::uint32_t element_type, std::uint64_t count,
                                               std::span<const std::byte> elements) {
    return byte_builder().u32(element_type).u64(count).append(elements).bytes();
}
inline std::vector<std::byte> gguf_kv_array(std::string_view key, std::uint32_t element_type, std::uint64_t count,
                                            std::span<const std::byte> elements) {
    return byte_builder().text(key).u32(gguf_code::array).append(gguf_array_value(element_type, count, elements)).bytes();
}

/// A tensor info as written: dims innermost first, ggml type id, data offset.
struct gguf_tensor_spec {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::uint32_t type = gguf_code::type_f32;
    std::uint64_t offset = 0;
};

/// Every field of a GGUF image; counts default to the lists' sizes.
struct gguf_spec {
    std::string magic = "GGUF";
    std::uint32_t version = 3;
    std::vector<std::vector<std::byte>> key_values;
    std::vector<gguf_tensor_spec> tensors;
    std::optional<std::uint64_t> tensor_count;
    std::optional<std::uint64_t> key_value_count;
    std::uint64_t padding_alignment = 32;  ///< the header is zero-padded to this before the data
    std::vector<std::byte> data;
};

inline std::vector<std::byte> gguf_image(const gguf_spec& spec) {
    byte_builder out;
    out.raw(spec.magic.data(), spec.magic.size()).u32(spec.version);
    out.u64(spec.tensor_count.value_or(spec.tensors.size()));
    out.u64(spec.key_value_count.value_or(spec.key_values.size()));
    for (const auto& kv : spec.key_values) out.append(kv);
    for (const auto& tensor : spec.tensors) {
        out.text(tensor.name).u32(static_cast<std::uint32_t>(tensor.dims.size()));
        for (const auto extent : tensor.dims) out.u64(extent);
        out.u32(tensor.type).u64(tensor.offset);
    }
    if (spec.padding_alignment > 1) out.zeros((spec.padding_alignment - out.size() % spec.padding_alignment) % spec.padding_alignment);
    out.append(spec.data);
    return out.bytes();
}

/// Q8_0 as llama.cpp quantizes: per block of 32, scale d = max|x| / 127 stored
/// as fp16, q = round(x / d). Returns the 34-byte blocks.
inline std::vector<std::byte> quantize_q8_0(std::span<const float> values) {
    byte_builder out;
    for (std::size_t first = 0; first < values.size(); first += 32) {
        float amax = 0;
        for (std::size_t i = first; i < first + 32; ++i) amax = std::max(amax, std::fabs(values[i]));
        const float d = amax / 127.0f;
        const float inverse = d != 0 ? 1.0f / d : 0.0f;
        out.scalar(adaptk::float_to_half(d));
        for (std::size_t i = first; i < first + 32; ++i)
            out.scalar(static_cast<std::int8_t>(std::lround(values[i] * inverse)));
    }
    return out.bytes();
}

/// A named row-major float tensor for write_gguf_model.
struct gguf_model_tensor {
    std::string name;
    std::vector<std::uint64_t> shape;  ///< row-major, outermost first
    std::vector<float> values;
    std::uint32_t type = gguf_code::type_f32;  ///< F32, F16 or Q8_0
};

/// A valid GGUF v3 image of `tensors` (each padded to 32 bytes) behind `key_values`.
inline std::vector<std::byte> gguf_model_image(const std::vector<gguf_model_tensor>& tensors,
                                               std::vector<std::vector<std::byte>> key_values) {
    gguf_spec spec;
    spec.key_values = std::move(key_values);
    byte_builder data;
    for (const auto& tensor : tensors) {
        data.zeros((32 - data.size() % 32) % 32);
        spec.tensors.push_back({tensor.name, {tensor.shape.rbegin(), tensor.shape.rend()}, tensor.type, data.size()});
        if (tensor.type == gguf_code::type_q8_0) {
            data.append(quantize_q8_0(tensor.values));
        } else if (tensor.type == gguf_code::type_f16) {
            for (const float v : tensor.values) data.scalar(adaptk::float_to_half(v));
        } else {
            data.raw(tensor.values.data(), tensor.values.size() * sizeof(float));
        }
    }
    spec.data = data.bytes();
    return gguf_image(spec);
}

}  // namespace adaptk::test
