#pragma once
// Element types of tensor files and their decoding to float/double.
// Decoding is exact for every dtype it accepts: F16 and BF16 are subsets of
// float32, and F32 -> float64 widens. Loads go through memcpy, so unaligned
// input is fine.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace adaptk {

static_assert(std::endian::native == std::endian::little,
              "tensor files are little-endian; big-endian hosts need byte swaps");

enum class dtype {
    boolean, u8, i8, f8_e5m2, f8_e4m3, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64,
};

/// The file's spelling: "F32", "BF16", "BOOL", ...
std::string_view dtype_name(dtype t) noexcept;
/// Inverse of dtype_name; nullopt for a spelling this tool does not know.
std::optional<dtype> parse_dtype(std::string_view name) noexcept;
/// Bytes per element.
std::size_t dtype_bytes(dtype t) noexcept;
/// True for the dtypes the analysis reads: F64, F32, F16, BF16.
bool is_floating_decodable(dtype t) noexcept;

/// IEEE binary16 / bfloat16 bit patterns -> float, exact (NaN stays NaN).
/// Inline so the decode loops vectorize.
inline float bf16_to_float(std::uint16_t bits) noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

// binary16 -> binary32 by selects, no branches, so loops of it vectorize:
// move exponent and mantissa into place and rebias; infinities/NaNs take the
// extra rebias, subnormals are renormalised by one exact float subtraction.
inline float half_to_float(std::uint16_t bits) noexcept {
    constexpr std::uint32_t exponent_mask = 0x7c00u << 13;
    const std::uint32_t shifted = static_cast<std::uint32_t>(bits & 0x7fffu) << 13;
    const std::uint32_t exponent = shifted & exponent_mask;
    const std::uint32_t normal = shifted + ((127u - 15u) << 23);
    const std::uint32_t special = normal + ((128u - 16u) << 23);
    const std::uint32_t subnormal = std::bit_cast<std::uint32_t>(
        std::bit_cast<float>(normal + (1u << 23)) - std::bit_cast<float>(113u << 23));
    const std::uint32_t magnitude = exponent == exponent_mask ? special : exponent == 0 ? subnormal : normal;
    return std::bit_cast<float>(magnitude | (static_cast<std::uint32_t>(bits & 0x8000u) << 16));
}

/// float -> binary16 / bfloat16, round to nearest even (used by writers).
std::uint16_t float_to_half(float value) noexcept;
std::uint16_t float_to_bf16(float value) noexcept;

/// Decode `count` elements of type `t` starting at `src` (any alignment).
/// Precondition: is_floating_decodable(t). F64 narrows to float (rounding).
void decode(dtype t, const std::byte* src, std::size_t count, float* dst) noexcept;
void decode(dtype t, const std::byte* src, std::size_t count, double* dst) noexcept;

}  // namespace adaptk
