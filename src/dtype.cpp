#include "adaptk/dtype.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>

namespace adaptk {
namespace {

struct dtype_row {
    dtype type;
    std::string_view name;
    std::size_t bytes;
};

// One table for names and sizes, in the safetensors spelling.
constexpr std::array<dtype_row, 15> dtype_table{{
    {dtype::boolean, "BOOL", 1},   {dtype::u8, "U8", 1},     {dtype::i8, "I8", 1},
    {dtype::f8_e5m2, "F8_E5M2", 1}, {dtype::f8_e4m3, "F8_E4M3", 1},
    {dtype::i16, "I16", 2},        {dtype::u16, "U16", 2},   {dtype::f16, "F16", 2},
    {dtype::bf16, "BF16", 2},      {dtype::i32, "I32", 4},   {dtype::u32, "U32", 4},
    {dtype::f32, "F32", 4},        {dtype::f64, "F64", 8},   {dtype::i64, "I64", 8},
    {dtype::u64, "U64", 8},
}};

const dtype_row& row_of(dtype t) noexcept { return dtype_table[static_cast<std::size_t>(t)]; }

template <class T>
T load(const std::byte* p) noexcept {
    T value;
    std::memcpy(&value, p, sizeof value);
    return value;
}

template <class Out>
[[gnu::always_inline]] inline void decode_into(dtype t, const std::byte* src, std::size_t count, Out* dst) noexcept {
    switch (t) {
    case dtype::f64:
        for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<Out>(load<double>(src + 8 * i));
        break;
    case dtype::f32:
        for (std::size_t i = 0; i < count; ++i) dst[i] = load<float>(src + 4 * i);
        break;
    case dtype::f16:
        for (std::size_t i = 0; i < count; ++i) dst[i] = half_to_float(load<std::uint16_t>(src + 2 * i));
        break;
    case dtype::bf16:
        for (std::size_t i = 0; i < count; ++i) dst[i] = bf16_to_float(load<std::uint16_t>(src + 2 * i));
        break;
    default:
        break;  // precondition: is_floating_decodable(t)
    }
}

}  // namespace

std::string_view dtype_name(dtype t) noexcept { return row_of(t).name; }

std::optional<dtype> parse_dtype(std::string_view name) noexcept {
    for (const auto& row : dtype_table)
        if (row.name == name) return row.type;
    return std::nullopt;
}

std::size_t dtype_bytes(dtype t) noexcept { return row_of(t).bytes; }

bool is_floating_decodable(dtype t) noexcept {
    return t == dtype::f64 || t == dtype::f32 || t == dtype::f16 || t == dtype::bf16;
}

std::uint16_t float_to_half(float value) noexcept {
    std::uint32_t x = std::bit_cast<std::uint32_t>(value);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u)  // infinity, or NaN kept quiet
        return sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u);
    if (x >= 0x477ff000u)  // >= 65520 rounds to infinity
        return sign | 0x7c00u;
    if (x < 0x38800000u) {  // below 2^-14: a half subnormal, counted in units of 2^-24
        const float units = std::bit_cast<float>(x) * 0x1p24f;  // exact: power-of-two scale
        return sign | static_cast<std::uint16_t>(std::nearbyint(units));
    }
    x += 0x0fffu + ((x >> 13) & 1u);  // round to nearest, ties to even
    x -= (127u - 15u) << 23;
    return sign | static_cast<std::uint16_t>(x >> 13);
}

std::uint16_t float_to_bf16(float value) noexcept {
    std::uint32_t x = std::bit_cast<std::uint32_t>(value);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<std::uint16_t>(x >> 16);
}

// The decode loops are the only per-element work on the streaming path: built
// at -O3 (see src/meson.build) and cloned for AVX-512 and AVX2, picked at load
// time, so one binary runs everywhere and uses the wide units where they exist.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ADAPTK_VECTOR_CLONES [[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")]]
#else
#define ADAPTK_VECTOR_CLONES
#endif

ADAPTK_VECTOR_CLONES
void decode(dtype t, const std::byte* src, std::size_t count, float* dst) noexcept {
    decode_into(t, src, count, dst);
}

ADAPTK_VECTOR_CLONES
void decode(dtype t, const std::byte* src, std::size_t count, double* dst) noexcept {
    decode_into(t, src, count, dst);
}

}  // namespace adaptk
