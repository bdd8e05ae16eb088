#pragma once
// Element types of tensor files and their decoding to float/double.
// Decoding is exact for every dtype it accepts: F16 and BF16 are subsets of
// float32, F32 -> float64 widens, and a Q8_0 value (fp16 scale times an int8)
// needs at most 11 + 7 significant bits. Loads go through memcpy, so unaligned
// input is fine. ggml's block-quantized types store a fixed number of
// elements per block; Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, Q8_K, IQ4_NL
// and IQ4_XS are decoded to the values llama.cpp's dequantization gives.
// Q8_GROUPS (llama2.c version 2 exports) keeps its float32 scales apart from
// its int8 values: decode gives the int8 values, apply_group_scales then
// multiplies in their scales.

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
    // ggml block-quantized types (GGUF only)
    q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q2_k, q3_k, q4_k, q5_k, q6_k, q8_k,
    iq2_xxs, iq2_xs, iq3_xxs, iq1_s, iq4_nl, iq3_s, iq2_s, iq4_xs, iq1_m, tq1_0, tq2_0, mxfp4,
    // llama2.c version 2: int8 values, one float32 scale per group of them stored elsewhere
    q8_groups,
};

/// The file's spelling: "F32", "BF16", "BOOL", ... ("Q8_0", "Q4_K", ... as ggml names them).
std::string_view dtype_name(dtype t) noexcept;
/// Inverse of dtype_name for the safetensors spellings; nullopt for any other.
std::optional<dtype> parse_dtype(std::string_view name) noexcept;
/// Elements per storage block: 1, or 32 / 256 for the block-quantized types.
std::size_t dtype_block_elements(dtype t) noexcept;
/// Bytes per block (per element when dtype_block_elements is 1; Q8_GROUPS:
/// its int8 value, the scales not counted).
std::size_t dtype_bytes(dtype t) noexcept;
/// Bytes that `elements` values take; nullopt when that overflows 64 bits or
/// `elements` is not a whole number of blocks.
std::optional<std::uint64_t> storage_bytes(dtype t, std::uint64_t elements) noexcept;
/// True for the dtypes the analysis reads: F64, F32, F16, BF16, the ggml types above and Q8_GROUPS.
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
/// Precondition: is_floating_decodable(t); for a block type `src` starts a
/// block and `count` is a whole number of blocks. F64 narrows to float (rounding).
/// Q8_GROUPS gives its int8 values unscaled: apply_group_scales finishes them.
void decode(dtype t, const std::byte* src, std::size_t count, float* dst) noexcept;
void decode(dtype t, const std::byte* src, std::size_t count, double* dst) noexcept;

/// Decode elements [first, first + count) of the run of elements stored from
/// `src` (a block boundary), any `first` and `count`: a block type's partial
/// blocks at either end are decoded whole and trimmed.
void decode_range(dtype t, const std::byte* src, std::size_t first, std::size_t count, float* dst) noexcept;
void decode_range(dtype t, const std::byte* src, std::size_t first, std::size_t count, double* dst) noexcept;

/// Q8_GROUPS values decoded by decode/decode_range, times their float32
/// scales: v = float(v)·scale in float32, as llama2.c's runq.c dequantizes.
/// `scales` (any alignment) holds the scale of the group of `group` values
/// that `values[0]` is element `first_in_group` of, then the following ones.
void apply_group_scales(const std::byte* scales, std::size_t group, std::size_t first_in_group, std::size_t count,
                        float* values) noexcept;
void apply_group_scales(const std::byte* scales, std::size_t group, std::size_t first_in_group, std::size_t count,
                        double* values) noexcept;

}  // namespace adaptk
