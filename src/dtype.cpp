#include "adaptk/dtype.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "detail/checked.hpp"
#include "detail/ggml_quants.hpp"

namespace adaptk {
namespace {

struct dtype_row {
    dtype type;
    std::string_view name;
    std::size_t block_elements;
    std::size_t block_bytes;
    bool in_safetensors;
};

// One table for names and sizes, in enum order: the safetensors spellings,
// then ggml's block-quantized types with the block layouts of ggml's type
// traits (Q8_0: an fp16 scale and 32 int8 values, 34 bytes).
constexpr std::array<dtype_row, 40> dtype_table{{
    {dtype::boolean, "BOOL", 1, 1, true},     {dtype::u8, "U8", 1, 1, true},
    {dtype::i8, "I8", 1, 1, true},            {dtype::f8_e5m2, "F8_E5M2", 1, 1, true},
    {dtype::f8_e4m3, "F8_E4M3", 1, 1, true},  {dtype::i16, "I16", 1, 2, true},
    {dtype::u16, "U16", 1, 2, true},          {dtype::f16, "F16", 1, 2, true},
    {dtype::bf16, "BF16", 1, 2, true},        {dtype::i32, "I32", 1, 4, true},
    {dtype::u32, "U32", 1, 4, true},          {dtype::f32, "F32", 1, 4, true},
    {dtype::f64, "F64", 1, 8, true},          {dtype::i64, "I64", 1, 8, true},
    {dtype::u64, "U64", 1, 8, true},
    {dtype::q4_0, "Q4_0", 32, 18, false},     {dtype::q4_1, "Q4_1", 32, 20, false},
    {dtype::q5_0, "Q5_0", 32, 22, false},     {dtype::q5_1, "Q5_1", 32, 24, false},
    {dtype::q8_0, "Q8_0", 32, 34, false},     {dtype::q8_1, "Q8_1", 32, 36, false},
    {dtype::q2_k, "Q2_K", 256, 84, false},    {dtype::q3_k, "Q3_K", 256, 110, false},
    {dtype::q4_k, "Q4_K", 256, 144, false},   {dtype::q5_k, "Q5_K", 256, 176, false},
    {dtype::q6_k, "Q6_K", 256, 210, false},   {dtype::q8_k, "Q8_K", 256, 292, false},
    {dtype::iq2_xxs, "IQ2_XXS", 256, 66, false}, {dtype::iq2_xs, "IQ2_XS", 256, 74, false},
    {dtype::iq3_xxs, "IQ3_XXS", 256, 98, false}, {dtype::iq1_s, "IQ1_S", 256, 50, false},
    {dtype::iq4_nl, "IQ4_NL", 32, 18, false},  {dtype::iq3_s, "IQ3_S", 256, 110, false},
    {dtype::iq2_s, "IQ2_S", 256, 82, false},   {dtype::iq4_xs, "IQ4_XS", 256, 136, false},
    {dtype::iq1_m, "IQ1_M", 256, 56, false},   {dtype::tq1_0, "TQ1_0", 256, 54, false},
    {dtype::tq2_0, "TQ2_0", 256, 66, false},   {dtype::mxfp4, "MXFP4", 32, 17, false},
    {dtype::q8_groups, "Q8_GROUPS", 1, 1, false},  // the int8 values; the group size is the file's
}};

constexpr bool table_in_enum_order() {
    for (std::size_t i = 0; i < dtype_table.size(); ++i)
        if (static_cast<std::size_t>(dtype_table[i].type) != i) return false;
    return true;
}
static_assert(table_in_enum_order());

constexpr std::size_t q8_0_block = 32;
constexpr std::size_t q8_0_block_bytes = 34;

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
    case dtype::q8_0:
        for (std::size_t block = 0; block < count / q8_0_block; ++block) {
            const std::byte* at = src + block * q8_0_block_bytes;
            const float scale = half_to_float(load<std::uint16_t>(at));
            Out* out = dst + block * q8_0_block;
            for (std::size_t i = 0; i < q8_0_block; ++i)
                out[i] = scale * static_cast<float>(static_cast<std::int8_t>(at[2 + i]));
        }
        break;
    case dtype::q8_groups:  // unscaled: apply_group_scales multiplies the scales in
        for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(static_cast<std::int8_t>(src[i]));
        break;
    default:  // the other decodable ggml block types (precondition: is_floating_decodable(t))
        if constexpr (std::is_same_v<Out, float>) {
            detail::dequantize_blocks(t, src, count / row_of(t).block_elements, dst);
        } else {
            float block[256];
            const std::size_t elements = row_of(t).block_elements;
            for (std::size_t at = 0; at < count; at += elements) {
                detail::dequantize_blocks(t, src + at / elements * row_of(t).block_bytes, 1, block);
                std::copy_n(block, elements, dst + at);
            }
        }
        break;
    }
}

}  // namespace

std::string_view dtype_name(dtype t) noexcept { return row_of(t).name; }

std::optional<dtype> parse_dtype(std::string_view name) noexcept {
    for (const auto& row : dtype_table)
        if (row.in_safetensors && row.name == name) return row.type;
    return std::nullopt;
}

std::size_t dtype_block_elements(dtype t) noexcept { return row_of(t).block_elements; }

std::size_t dtype_bytes(dtype t) noexcept { return row_of(t).block_bytes; }

std::optional<std::uint64_t> storage_bytes(dtype t, std::uint64_t elements) noexcept {
    const auto& row = row_of(t);
    if (elements % row.block_elements != 0) return std::nullopt;
    return detail::checked_mul(elements / row.block_elements, row.block_bytes);
}

bool is_floating_decodable(dtype t) noexcept {
    return t == dtype::f64 || t == dtype::f32 || t == dtype::f16 || t == dtype::bf16 || t == dtype::q8_0 ||
           t == dtype::q8_groups || detail::is_ggml_dequantizable(t);
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

namespace {

template <class Out>
void decode_range_into(dtype t, const std::byte* src, std::size_t first, std::size_t count, Out* dst) noexcept {
    const auto& row = row_of(t);
    const std::size_t block = row.block_elements;
    if (block == 1) {
        decode(t, src + first * row.block_bytes, count, dst);
        return;
    }
    // Leading partial block, whole blocks straight into dst, trailing partial block.
    Out scratch[256];
    std::size_t done = 0;
    while (done < count) {
        const std::size_t at = first + done;
        const std::size_t block_index = at / block;
        const std::size_t skip = at % block;
        const std::byte* block_src = src + block_index * row.block_bytes;
        if (skip == 0 && count - done >= block) {
            const std::size_t whole = (count - done) / block * block;
            decode(t, block_src, whole, dst + done);
            done += whole;
        } else {
            decode(t, block_src, block, scratch);
            const std::size_t take = std::min(block - skip, count - done);
            std::copy_n(scratch + skip, take, dst + done);
            done += take;
        }
    }
}

}  // namespace

void decode_range(dtype t, const std::byte* src, std::size_t first, std::size_t count, float* dst) noexcept {
    decode_range_into(t, src, first, count, dst);
}

void decode_range(dtype t, const std::byte* src, std::size_t first, std::size_t count, double* dst) noexcept {
    decode_range_into(t, src, first, count, dst);
}

namespace {

// The int8 value times its scale in float32 (exact: 8 × 24 significant bits
// round once, as runq.c's float product does), widened for double.
template <class Out>
void apply_group_scales_into(const std::byte* scales, std::size_t group, std::size_t first_in_group, std::size_t count,
                             Out* values) noexcept {
    std::size_t done = 0;
    for (std::size_t g = 0; done < count; ++g) {
        const float scale = load<float>(scales + g * sizeof(float));
        const std::size_t take = std::min(group - (g == 0 ? first_in_group : 0), count - done);
        for (std::size_t i = done; i < done + take; ++i) values[i] = static_cast<float>(values[i]) * scale;
        done += take;
    }
}

}  // namespace

void apply_group_scales(const std::byte* scales, std::size_t group, std::size_t first_in_group, std::size_t count,
                        float* values) noexcept {
    apply_group_scales_into(scales, group, first_in_group, count, values);
}

void apply_group_scales(const std::byte* scales, std::size_t group, std::size_t first_in_group, std::size_t count,
                        double* values) noexcept {
    apply_group_scales_into(scales, group, first_in_group, count, values);
}

}  // namespace adaptk
