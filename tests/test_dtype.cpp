#define BOOST_TEST_MODULE dtype
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "adaptk/dtype.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
using adaptk::dtype;

namespace {

using adaptk::test::half_reference;

// bfloat16 is the upper half of a float32: place the two bytes there.
float bf16_reference(std::uint16_t bits) {
    const std::array<unsigned char, 4> bytes{0, 0, static_cast<unsigned char>(bits & 0xff),
                                             static_cast<unsigned char>(bits >> 8)};
    float value;
    std::memcpy(&value, bytes.data(), sizeof value);
    return value;
}

bool is_half_nan(std::uint16_t bits) { return (bits & 0x7c00u) == 0x7c00u && (bits & 0x03ffu) != 0; }
bool is_bf16_nan(std::uint16_t bits) { return (bits & 0x7f80u) == 0x7f80u && (bits & 0x007fu) != 0; }

// Nearest half to a finite float by exhaustive search over the positive
// halves (ties to the even pattern); 0x7c00 when the value rounds past 65504.
std::uint16_t half_nearest_reference(float value) {
    const double x = std::fabs(static_cast<double>(value));
    const std::uint16_t sign = std::signbit(value) ? 0x8000u : 0u;
    if (x >= 65520.0) return sign | 0x7c00u;  // halfway to 2^16 and beyond round to infinity
    std::uint16_t best = 0;
    double best_error = x;
    for (std::uint16_t h = 1; h <= 0x7bffu; ++h) {
        const double error = std::fabs(half_reference(h) - x);
        if (error < best_error || (error == best_error && (h & 1u) == 0)) {
            best = h;
            best_error = error;
        }
    }
    return sign | best;
}

constexpr std::array<dtype, 15> every_dtype{
    dtype::boolean, dtype::u8,  dtype::i8,  dtype::f8_e5m2, dtype::f8_e4m3, dtype::i16, dtype::u16, dtype::f16,
    dtype::bf16,    dtype::i32, dtype::u32, dtype::f32,     dtype::f64,     dtype::i64, dtype::u64,
};

}  // namespace

BOOST_AUTO_TEST_SUITE(dtype_test)

BOOST_AUTO_TEST_CASE(half_to_float_is_exact_for_all_65536_patterns) {
    for (std::uint32_t bits = 0; bits <= 0xffffu; ++bits) {
        const auto h = static_cast<std::uint16_t>(bits);
        const float decoded = adaptk::half_to_float(h);
        const double expected = half_reference(h);
        if (std::isnan(expected)) {
            BOOST_TEST_REQUIRE(std::isnan(decoded), "pattern " << bits);
            continue;
        }
        // Exact, including the sign of zero.
        BOOST_TEST_REQUIRE(static_cast<double>(decoded) == expected, "pattern " << bits);
        BOOST_TEST_REQUIRE(std::signbit(decoded) == std::signbit(expected), "pattern " << bits);
    }
}

BOOST_AUTO_TEST_CASE(bf16_to_float_is_the_upper_half_of_a_float32_for_all_patterns) {
    for (std::uint32_t bits = 0; bits <= 0xffffu; ++bits) {
        const auto b = static_cast<std::uint16_t>(bits);
        const float decoded = adaptk::bf16_to_float(b);
        const float expected = bf16_reference(b);
        if (is_bf16_nan(b)) {
            BOOST_TEST_REQUIRE(std::isnan(decoded), "pattern " << bits);
            continue;
        }
        BOOST_TEST_REQUIRE(std::bit_cast<std::uint32_t>(decoded) == std::bit_cast<std::uint32_t>(expected),
                           "pattern " << bits);
    }
}

BOOST_AUTO_TEST_CASE(float_to_half_inverts_half_to_float_for_every_non_nan_pattern) {
    for (std::uint32_t bits = 0; bits <= 0xffffu; ++bits) {
        const auto h = static_cast<std::uint16_t>(bits);
        if (is_half_nan(h)) continue;
        BOOST_TEST_REQUIRE(adaptk::float_to_half(adaptk::half_to_float(h)) == h, "pattern " << bits);
    }
}

BOOST_AUTO_TEST_CASE(float_to_bf16_inverts_bf16_to_float_for_every_non_nan_pattern) {
    for (std::uint32_t bits = 0; bits <= 0xffffu; ++bits) {
        const auto b = static_cast<std::uint16_t>(bits);
        if (is_bf16_nan(b)) continue;
        BOOST_TEST_REQUIRE(adaptk::float_to_bf16(adaptk::bf16_to_float(b)) == b, "pattern " << bits);
    }
}

// Every midpoint between two adjacent finite halves (subnormals included) is
// a float; it must go to the neighbour with the even last bit, and a float on
// either side of it to the nearer neighbour.
BOOST_AUTO_TEST_CASE(float_to_half_rounds_ties_to_even_and_others_to_nearest) {
    for (std::uint16_t low = 0; low < 0x7bffu; ++low) {
        const auto high = static_cast<std::uint16_t>(low + 1);
        const double mid_exact = (half_reference(low) + half_reference(high)) / 2;
        const auto mid = static_cast<float>(mid_exact);
        BOOST_TEST_REQUIRE(static_cast<double>(mid) == mid_exact);  // 12 significant bits fit a float
        const std::uint16_t even = (low & 1u) == 0 ? low : high;
        BOOST_TEST_REQUIRE(adaptk::float_to_half(mid) == even, "tie above pattern " << low);
        BOOST_TEST_REQUIRE(adaptk::float_to_half(-mid) == (0x8000u | even), "negative tie above pattern " << low);
        BOOST_TEST_REQUIRE(adaptk::float_to_half(std::nextafter(mid, 0.0f)) == low, "below tie " << low);
        BOOST_TEST_REQUIRE(adaptk::float_to_half(std::nextafter(mid, 1e9f)) == high, "above tie " << low);
    }
}

BOOST_AUTO_TEST_CASE(float_to_bf16_rounds_ties_to_even_and_others_to_nearest) {
    // Adjacent positive finite bf16 patterns low, low + 1; the float with the
    // low 16 bits 0x8000 lies exactly halfway (bit patterns are monotone).
    for (std::uint32_t low = 0; low < 0x7f7fu; ++low) {
        const std::uint32_t base = low << 16;
        const std::uint32_t even = (low & 1u) == 0 ? low : low + 1;
        const float mid = std::bit_cast<float>(base | 0x8000u);
        BOOST_TEST_REQUIRE(adaptk::float_to_bf16(mid) == even, "tie above pattern " << low);
        BOOST_TEST_REQUIRE(adaptk::float_to_bf16(-mid) == (0x8000u | even), "negative tie above " << low);
        BOOST_TEST_REQUIRE(adaptk::float_to_bf16(std::bit_cast<float>(base | 0x7fffu)) == low, "below tie " << low);
        BOOST_TEST_REQUIRE(adaptk::float_to_bf16(std::bit_cast<float>(base | 0x8001u)) == low + 1, "above tie " << low);
    }
}

BOOST_AUTO_TEST_CASE(float_to_half_matches_exhaustive_nearest_search_on_random_floats) {
    std::mt19937 rng(20240531);
    std::uniform_int_distribution<int> exponent(-30, 17);
    std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
    for (int i = 0; i < 300; ++i) {
        float value = std::ldexp(mantissa(rng), exponent(rng));
        if (i % 2) value = -value;
        BOOST_TEST_REQUIRE(adaptk::float_to_half(value) == half_nearest_reference(value), "value " << value);
    }
}

BOOST_AUTO_TEST_CASE(float_to_half_overflows_to_infinity_from_65520) {
    BOOST_TEST(adaptk::float_to_half(65504.0f) == 0x7bffu);
    BOOST_TEST(adaptk::float_to_half(std::nextafter(65520.0f, 0.0f)) == 0x7bffu);
    BOOST_TEST(adaptk::float_to_half(65520.0f) == 0x7c00u);  // the tie goes to the even "65536" = infinity
    BOOST_TEST(adaptk::float_to_half(-65520.0f) == 0xfc00u);
    BOOST_TEST(adaptk::float_to_half(1e10f) == 0x7c00u);
    BOOST_TEST(adaptk::float_to_half(std::numeric_limits<float>::max()) == 0x7c00u);
    BOOST_TEST(adaptk::float_to_half(std::numeric_limits<float>::infinity()) == 0x7c00u);
    BOOST_TEST(adaptk::float_to_half(-std::numeric_limits<float>::infinity()) == 0xfc00u);
}

BOOST_AUTO_TEST_CASE(float_to_bf16_overflows_to_infinity_past_the_largest_finite) {
    const float largest = adaptk::bf16_to_float(0x7f7fu);
    BOOST_TEST(adaptk::float_to_bf16(largest) == 0x7f7fu);
    BOOST_TEST(adaptk::float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80u);
    BOOST_TEST(adaptk::float_to_bf16(-std::numeric_limits<float>::max()) == 0xff80u);
    BOOST_TEST(adaptk::float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80u);
}

BOOST_AUTO_TEST_CASE(float_to_half_handles_subnormals_and_underflow) {
    const float smallest = std::ldexp(1.0f, -24);  // half 0x0001
    BOOST_TEST(adaptk::float_to_half(smallest) == 0x0001u);
    BOOST_TEST(adaptk::float_to_half(-smallest) == 0x8001u);
    BOOST_TEST(adaptk::float_to_half(std::ldexp(1023.0f, -24)) == 0x03ffu);  // largest subnormal
    BOOST_TEST(adaptk::float_to_half(std::ldexp(1.0f, -14)) == 0x0400u);     // smallest normal
    BOOST_TEST(adaptk::float_to_half(std::ldexp(1.0f, -25)) == 0x0000u);     // tie between 0 and 2^-24 -> 0
    BOOST_TEST(adaptk::float_to_half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001u);
    BOOST_TEST(adaptk::float_to_half(std::ldexp(3.0f, -25)) == 0x0002u);     // 1.5 units: tie -> even 2
    BOOST_TEST(adaptk::float_to_half(std::numeric_limits<float>::denorm_min()) == 0x0000u);
    BOOST_TEST(adaptk::float_to_half(-std::numeric_limits<float>::denorm_min()) == 0x8000u);  // sign kept
    BOOST_TEST(adaptk::float_to_half(-0.0f) == 0x8000u);
}

BOOST_AUTO_TEST_CASE(float_to_bf16_keeps_float_subnormals) {
    const float subnormal = std::bit_cast<float>(0x00010000u);
    BOOST_TEST(adaptk::float_to_bf16(subnormal) == 0x0001u);
    BOOST_TEST(adaptk::float_to_bf16(std::numeric_limits<float>::denorm_min()) == 0x0000u);
    BOOST_TEST(adaptk::float_to_bf16(-0.0f) == 0x8000u);
}

BOOST_DATA_TEST_CASE(nan_stays_nan,
                     bdata::make({0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0x7f801000u}),
                     float_bits) {
    // Payloads only in the low bits (0x7f800001) must not truncate to infinity.
    const float nan = std::bit_cast<float>(float_bits);
    BOOST_TEST_REQUIRE(std::isnan(nan));
    BOOST_TEST(is_half_nan(adaptk::float_to_half(nan)));
    BOOST_TEST(is_bf16_nan(adaptk::float_to_bf16(nan)));
    BOOST_TEST(std::isnan(adaptk::half_to_float(adaptk::float_to_half(nan))));
    BOOST_TEST(std::isnan(adaptk::bf16_to_float(adaptk::float_to_bf16(nan))));
}

BOOST_AUTO_TEST_CASE(decoding_nan_patterns_gives_nan) {
    BOOST_TEST(std::isnan(adaptk::half_to_float(0x7c01u)));
    BOOST_TEST(std::isnan(adaptk::half_to_float(0xfe00u)));
    BOOST_TEST(std::isnan(adaptk::bf16_to_float(0x7f81u)));
    BOOST_TEST(std::isinf(adaptk::half_to_float(0x7c00u)));
    BOOST_TEST(std::isinf(adaptk::bf16_to_float(0xff80u)));
}

// decode() from every misalignment 0..7 of the source buffer.
BOOST_DATA_TEST_CASE(decode_reads_unaligned_sources, bdata::xrange(8), misalignment) {
    const std::vector<double> values{-3.0, -0.5, 0.0, 1.0, 2.75, 65504.0, -1024.0, 0.125, 7.0};
    const std::size_t n = values.size();
    alignas(16) std::array<std::byte, 8 * 16 + 16> storage{};
    std::byte* const src = storage.data() + misalignment;

    auto check = [&](dtype type) {
        std::vector<float> as_float(n, -99.0f);
        std::vector<double> as_double(n, -99.0);
        adaptk::decode(type, src, n, as_float.data());
        adaptk::decode(type, src, n, as_double.data());
        for (std::size_t i = 0; i < n; ++i) {
            BOOST_TEST(as_float[i] == static_cast<float>(values[i]), adaptk::dtype_name(type) << " element " << i);
            BOOST_TEST(as_double[i] == values[i], adaptk::dtype_name(type) << " element " << i);
        }
    };

    for (std::size_t i = 0; i < n; ++i) std::memcpy(src + 8 * i, &values[i], 8);
    check(dtype::f64);
    for (std::size_t i = 0; i < n; ++i) {
        const auto value = static_cast<float>(values[i]);
        std::memcpy(src + 4 * i, &value, 4);
    }
    check(dtype::f32);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t h = adaptk::float_to_half(static_cast<float>(values[i]));
        std::memcpy(src + 2 * i, &h, 2);
    }
    check(dtype::f16);
    // 65504 needs 11 significant bits; bf16 keeps 8, so use values it holds.
    const std::vector<double> bf16_values{-3.0, -0.5, 0.0, 1.0, 2.75, 65536.0, -1024.0, 0.125, 7.0};
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t b = adaptk::float_to_bf16(static_cast<float>(bf16_values[i]));
        std::memcpy(src + 2 * i, &b, 2);
    }
    std::vector<double> decoded(n);
    adaptk::decode(dtype::bf16, src, n, decoded.data());
    for (std::size_t i = 0; i < n; ++i) BOOST_TEST(decoded[i] == bf16_values[i], "BF16 element " << i);
}

BOOST_AUTO_TEST_CASE(decode_f64_to_float_rounds_to_nearest) {
    const std::array<double, 3> values{0.1, 1.0 + std::ldexp(1.0, -30), -1e300};
    std::array<std::byte, 24> bytes{};
    std::memcpy(bytes.data(), values.data(), sizeof values);
    std::array<float, 3> decoded{};
    adaptk::decode(dtype::f64, bytes.data(), 3, decoded.data());
    BOOST_TEST(decoded[0] == 0.1f);
    BOOST_TEST(decoded[1] == 1.0f);
    BOOST_TEST(std::isinf(decoded[2]));
    BOOST_TEST(decoded[2] < 0.0f);
}

BOOST_AUTO_TEST_CASE(decode_of_zero_elements_writes_nothing) {
    float sentinel = 42.0f;
    adaptk::decode(dtype::f32, nullptr, 0, &sentinel);
    BOOST_TEST(sentinel == 42.0f);
}

BOOST_AUTO_TEST_CASE(parse_dtype_inverts_dtype_name) {
    for (const dtype type : every_dtype) {
        const auto name = adaptk::dtype_name(type);
        BOOST_TEST(!name.empty());
        const auto parsed = adaptk::parse_dtype(name);
        BOOST_TEST_REQUIRE(parsed.has_value(), name);
        BOOST_TEST((*parsed == type), name);
    }
}

BOOST_AUTO_TEST_CASE(dtype_names_use_the_safetensors_spelling) {
    BOOST_TEST(adaptk::dtype_name(dtype::boolean) == "BOOL");
    BOOST_TEST(adaptk::dtype_name(dtype::f32) == "F32");
    BOOST_TEST(adaptk::dtype_name(dtype::bf16) == "BF16");
    BOOST_TEST(adaptk::dtype_name(dtype::f8_e4m3) == "F8_E4M3");
    BOOST_TEST(adaptk::dtype_name(dtype::u64) == "U64");
}

BOOST_AUTO_TEST_CASE(parse_dtype_rejects_unknown_spellings) {
    BOOST_TEST(!adaptk::parse_dtype("F128").has_value());
    BOOST_TEST(!adaptk::parse_dtype("").has_value());
    BOOST_TEST(!adaptk::parse_dtype("f32").has_value());  // the file spelling is upper case
    BOOST_TEST(!adaptk::parse_dtype("F32 ").has_value());
}

BOOST_AUTO_TEST_CASE(dtype_bytes_match_the_element_widths) {
    const std::array<std::size_t, 15> expected{1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
    for (std::size_t i = 0; i < every_dtype.size(); ++i)
        BOOST_TEST(adaptk::dtype_bytes(every_dtype[i]) == expected[i], adaptk::dtype_name(every_dtype[i]));
}

BOOST_AUTO_TEST_CASE(only_f64_f32_f16_bf16_are_decodable) {
    std::size_t decodable = 0;
    for (const dtype type : every_dtype) decodable += adaptk::is_floating_decodable(type) ? 1 : 0;
    BOOST_TEST(decodable == 4u);
    BOOST_TEST(adaptk::is_floating_decodable(dtype::f64));
    BOOST_TEST(adaptk::is_floating_decodable(dtype::f32));
    BOOST_TEST(adaptk::is_floating_decodable(dtype::f16));
    BOOST_TEST(adaptk::is_floating_decodable(dtype::bf16));
    BOOST_TEST(!adaptk::is_floating_decodable(dtype::f8_e4m3));
    BOOST_TEST(!adaptk::is_floating_decodable(dtype::i8));
}

BOOST_AUTO_TEST_CASE(ggml_block_types_keep_ggml_names_and_are_not_safetensors_dtypes) {
    BOOST_TEST(adaptk::dtype_name(dtype::q8_0) == "Q8_0");
    BOOST_TEST(adaptk::dtype_name(dtype::q4_k) == "Q4_K");
    BOOST_TEST(adaptk::dtype_name(dtype::iq2_xxs) == "IQ2_XXS");
    BOOST_TEST(!adaptk::parse_dtype("Q8_0").has_value());
    BOOST_TEST(!adaptk::parse_dtype("Q4_K").has_value());
    BOOST_TEST(adaptk::is_floating_decodable(dtype::q8_0));
    BOOST_TEST(adaptk::is_floating_decodable(dtype::q4_0));
    BOOST_TEST(adaptk::is_floating_decodable(dtype::q6_k));
    BOOST_TEST(!adaptk::is_floating_decodable(dtype::iq2_xxs));
}

// Block layouts from the ggml block structs: Q8_0 = fp16 d + 32 int8,
// Q4_K = 2 fp16 + 12 scale bytes + 128 nibble bytes per 256 values.
BOOST_AUTO_TEST_CASE(storage_bytes_counts_whole_blocks_only) {
    BOOST_TEST(adaptk::dtype_block_elements(dtype::f32) == 1u);
    BOOST_TEST(adaptk::dtype_block_elements(dtype::q8_0) == 32u);
    BOOST_TEST(adaptk::dtype_bytes(dtype::q8_0) == 34u);
    BOOST_TEST(adaptk::dtype_block_elements(dtype::q4_k) == 256u);
    BOOST_TEST(adaptk::dtype_bytes(dtype::q4_k) == 144u);
    BOOST_TEST(adaptk::storage_bytes(dtype::q8_0, 64).value() == 68u);
    BOOST_TEST(adaptk::storage_bytes(dtype::f16, 3).value() == 6u);
    BOOST_TEST(adaptk::storage_bytes(dtype::q8_0, 0).value() == 0u);
    BOOST_TEST(!adaptk::storage_bytes(dtype::q8_0, 33).has_value());
    BOOST_TEST(!adaptk::storage_bytes(dtype::f64, std::uint64_t{1} << 61).has_value());  // 2^64 bytes
    BOOST_TEST(!adaptk::storage_bytes(dtype::q8_0, ~std::uint64_t{0} - 31).has_value());  // (2^59 - 1) · 34 bytes
}

namespace {

// Two Q8_0 blocks with fp16 scales 0.5 and -2^-12
// and int8 values covering -128..127.
std::vector<std::byte> q8_0_blocks(std::vector<double>& expected) {
    std::vector<std::byte> bytes;
    const std::array<std::uint16_t, 2> scales{0x3800, 0x8000 | 0x0c00};  // 0.5, -2^-12
    for (std::size_t block = 0; block < 2; ++block) {
        bytes.push_back(static_cast<std::byte>(scales[block] & 0xff));
        bytes.push_back(static_cast<std::byte>(scales[block] >> 8));
        for (int i = 0; i < 32; ++i) {
            const int q = block == 0 ? -128 + 8 * i : 127 - 5 * i;
            bytes.push_back(static_cast<std::byte>(static_cast<std::int8_t>(q)));
            expected.push_back(half_reference(scales[block]) * q);
        }
    }
    return bytes;
}

}  // namespace

BOOST_AUTO_TEST_CASE(q8_0_decodes_to_scale_times_int8_exactly) {
    std::vector<double> expected;
    const auto bytes = q8_0_blocks(expected);
    BOOST_TEST(bytes.size() == 68u);
    std::vector<float> floats(64);
    std::vector<double> doubles(64);
    adaptk::decode(dtype::q8_0, bytes.data(), 64, floats.data());
    adaptk::decode(dtype::q8_0, bytes.data(), 64, doubles.data());
    for (std::size_t i = 0; i < 64; ++i) {
        BOOST_TEST(static_cast<double>(floats[i]) == expected[i], i);
        BOOST_TEST(doubles[i] == expected[i], i);
    }
}

BOOST_AUTO_TEST_CASE(decode_range_cuts_q8_0_blocks_anywhere) {
    std::vector<double> expected;
    const auto bytes = q8_0_blocks(expected);
    for (const auto& [first, count] : std::vector<std::pair<std::size_t, std::size_t>>{
             {0, 64}, {0, 5}, {5, 20}, {30, 4}, {31, 33}, {32, 32}, {1, 62}, {63, 1}, {10, 0}}) {
        std::vector<float> out(count + 1, 99.0f);
        adaptk::decode_range(dtype::q8_0, bytes.data(), first, count, out.data());
        for (std::size_t i = 0; i < count; ++i) BOOST_TEST(static_cast<double>(out[i]) == expected[first + i]);
        BOOST_TEST(out[count] == 99.0f);  // nothing written past the range
    }
    // Element types: the same as decode from the offset.
    const std::array<float, 4> values{1.0f, -2.5f, 3.25f, 0.0f};
    std::array<float, 2> out{};
    adaptk::decode_range(dtype::f32, reinterpret_cast<const std::byte*>(values.data()), 1, 2, out.data());
    BOOST_TEST(out[0] == -2.5f);
    BOOST_TEST(out[1] == 3.25f);
}

// Q8_GROUPS (llama2.c version 2): decode gives the int8 values, then each
// range that starts inside a group and crosses others gets int8 x its group's
// scale, a float32 product (runq.c's dequantize), also in the double output.
BOOST_DATA_TEST_CASE(q8_groups_decode_to_int8_times_the_groups_scale,
                     bdata::make({0, 1, 5, 7, 8, 19}) * bdata::make({1, 3, 8, 21}), first, count) {
    constexpr std::size_t group = 8, values = 32;
    std::vector<std::byte> ints(values);
    std::vector<float> scales(values / group);
    std::mt19937 rng(11);
    for (auto& v : ints)  // in [-127, 127], as export.py writes
        v = static_cast<std::byte>(static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127));
    for (auto& scale : scales) scale = std::ldexp(static_cast<float>(rng() % 4096 + 1), -17);
    const std::size_t n = std::min<std::size_t>(count, values - first);
    std::vector<float> out(n);
    std::vector<double> wide(n);
    adaptk::decode(dtype::q8_groups, ints.data() + first, n, out.data());
    adaptk::decode(dtype::q8_groups, ints.data() + first, n, wide.data());
    const auto* first_scale = reinterpret_cast<const std::byte*>(scales.data() + first / group);
    adaptk::apply_group_scales(first_scale, group, first % group, n, out.data());
    adaptk::apply_group_scales(first_scale, group, first % group, n, wide.data());
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = first + i;
        const float expected = static_cast<float>(static_cast<std::int8_t>(ints[at])) * scales[at / group];
        BOOST_TEST(std::bit_cast<std::uint32_t>(out[i]) == std::bit_cast<std::uint32_t>(expected), at);
        BOOST_TEST(wide[i] == static_cast<double>(expected), at);
    }
}

BOOST_AUTO_TEST_SUITE_END()
