#include "detail/ggml_quants.hpp"

#include <cstdint>
#include <cstring>

// Block layouts are ggml's block_* structs (ggml-common.h); the formulas are
// those of ggml-quants.c's reference dequantize_row_*. Products are written in
// ggml's order, e.g. (d · scale) · q for Q6_K, since that is where rounding
// happens: most others are exact (d · scale · q needs at most 21 bits).

namespace adaptk::detail {
namespace {

constexpr std::size_t super_block = 256;  // ggml's QK_K

template <class T>
T load(const std::byte* p) noexcept {
    T value;
    std::memcpy(&value, p, sizeof value);
    return value;
}

float half_at(const std::byte* p) noexcept { return half_to_float(load<std::uint16_t>(p)); }

std::uint8_t byte_at(const std::byte* p, std::size_t i) noexcept { return static_cast<std::uint8_t>(p[i]); }

// Q4_0 {d; qs[16]}: x = (nibble - 8)·d; low nibbles are elements 0..15, high ones 16..31.
void q4_0(const std::byte* b, float* y) noexcept {
    const float d = half_at(b);
    for (int j = 0; j < 16; ++j) {
        const std::uint8_t q = byte_at(b + 2, j);
        y[j] = static_cast<float>((q & 0x0f) - 8) * d;
        y[j + 16] = static_cast<float>((q >> 4) - 8) * d;
    }
}

// Q4_1 {d; m; qs[16]}: x = nibble·d + m.
void q4_1(const std::byte* b, float* y) noexcept {
    const float d = half_at(b), m = half_at(b + 2);
    for (int j = 0; j < 16; ++j) {
        const std::uint8_t q = byte_at(b + 4, j);
        y[j] = static_cast<float>(q & 0x0f) * d + m;
        y[j + 16] = static_cast<float>(q >> 4) * d + m;
    }
}

// Fifth bits of Q5_0/Q5_1: bit j of qh for element j, bit j + 16 for element j + 16.
int fifth_low(std::uint32_t qh, int j) noexcept { return static_cast<int>(((qh >> j) << 4) & 0x10); }
int fifth_high(std::uint32_t qh, int j) noexcept { return static_cast<int>((qh >> (j + 12)) & 0x10); }

// Q5_0 {d; qh[4]; qs[16]}: x = (5-bit value - 16)·d.
void q5_0(const std::byte* b, float* y) noexcept {
    const float d = half_at(b);
    const auto qh = load<std::uint32_t>(b + 2);
    for (int j = 0; j < 16; ++j) {
        const std::uint8_t q = byte_at(b + 6, j);
        y[j] = static_cast<float>(((q & 0x0f) | fifth_low(qh, j)) - 16) * d;
        y[j + 16] = static_cast<float>(((q >> 4) | fifth_high(qh, j)) - 16) * d;
    }
}

// Q5_1 {d; m; qh[4]; qs[16]}: x = 5-bit value·d + m.
void q5_1(const std::byte* b, float* y) noexcept {
    const float d = half_at(b), m = half_at(b + 2);
    const auto qh = load<std::uint32_t>(b + 4);
    for (int j = 0; j < 16; ++j) {
        const std::uint8_t q = byte_at(b + 8, j);
        y[j] = static_cast<float>((q & 0x0f) | fifth_low(qh, j)) * d + m;
        y[j + 16] = static_cast<float>((q >> 4) | fifth_high(qh, j)) * d + m;
    }
}

// Q2_K {scales[16]; qs[64]; d; dmin}: 16 sub-blocks of 16, each with a 4-bit
// scale and a 4-bit min: x = (d·scale)·q - dmin·min, q the 2-bit value.
void q2_k(const std::byte* b, float* y) noexcept {
    const std::byte* scales = b;
    const std::byte* q = b + 16;
    const float d = half_at(b + 80), dmin = half_at(b + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; ++half) {
                const std::uint8_t sc = byte_at(scales, is++);
                const float dl = d * static_cast<float>(sc & 0x0f);
                const float ml = dmin * static_cast<float>(sc >> 4);
                for (int l = 0; l < 16; ++l)
                    *y++ = dl * static_cast<float>((byte_at(q, l + 16 * half) >> shift) & 3) - ml;
            }
        }
        q += 32;
    }
}

// Q3_K {hmask[32]; qs[64]; scales[12]; d}: 16 sub-blocks with 6-bit scales
// packed into 12 bytes (low 4 bits in bytes 0..7, high 2 in bytes 8..11):
// x = (d·(scale - 32))·(q - 4·(high bit clear)).
void q3_k(const std::byte* b, float* y) noexcept {
    const std::byte* hmask = b;
    const std::byte* q = b + 32;
    const float d = half_at(b + 108);
    std::uint32_t aux[4];
    std::memcpy(aux, b + 96, 12);
    constexpr std::uint32_t low2 = 0x03030303, low4 = 0x0f0f0f0f;
    const std::uint32_t high = aux[2];
    aux[2] = ((aux[0] >> 4) & low4) | (((high >> 4) & low2) << 4);
    aux[3] = ((aux[1] >> 4) & low4) | (((high >> 6) & low2) << 4);
    aux[0] = (aux[0] & low4) | (((high >> 0) & low2) << 4);
    aux[1] = (aux[1] & low4) | (((high >> 2) & low2) << 4);
    std::int8_t scales[16];
    std::memcpy(scales, aux, sizeof scales);
    int is = 0;
    std::uint8_t m = 1;
    for (int n = 0; n < 256; n += 128) {
        for (int shift = 0; shift < 8; shift += 2, m = static_cast<std::uint8_t>(m << 1)) {
            for (int half = 0; half < 2; ++half) {
                const float dl = d * static_cast<float>(scales[is++] - 32);
                for (int l = 16 * half; l < 16 * half + 16; ++l) {
                    const int value = ((byte_at(q, l) >> shift) & 3) - ((byte_at(hmask, l) & m) ? 0 : 4);
                    *y++ = dl * static_cast<float>(value);
                }
            }
        }
        q += 32;
    }
}

// The 6-bit scale and min of sub-block j in Q4_K/Q5_K's 12 packed bytes.
void scale_min_k4(int j, const std::byte* q, std::uint8_t& scale, std::uint8_t& min) noexcept {
    if (j < 4) {
        scale = byte_at(q, j) & 63;
        min = byte_at(q, j + 4) & 63;
    } else {
        scale = static_cast<std::uint8_t>((byte_at(q, j + 4) & 0x0f) | ((byte_at(q, j - 4) >> 6) << 4));
        min = static_cast<std::uint8_t>((byte_at(q, j + 4) >> 4) | ((byte_at(q, j) >> 6) << 4));
    }
}

// Q4_K {d; dmin; scales[12]; qs[128]} and Q5_K {..., qh[32], qs[128]}: 8
// sub-blocks of 32, x = (d·scale)·q - dmin·min; Q5_K adds 16 when the
// sub-block's bit of qh is set. qh == nullptr for Q4_K.
void q4_5_k(const std::byte* b, const std::byte* qh, const std::byte* ql, float* y) noexcept {
    const float d = half_at(b), dmin = half_at(b + 2);
    const std::byte* scales = b + 4;
    std::uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2) {
        std::uint8_t sc, m;
        scale_min_k4(is, scales, sc, m);
        const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
        scale_min_k4(is + 1, scales, sc, m);
        const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
        for (int l = 0; l < 32; ++l) {
            const int high = qh != nullptr && (byte_at(qh, l) & u1) ? 16 : 0;
            *y++ = d1 * static_cast<float>((byte_at(ql, l) & 0x0f) + high) - m1;
        }
        for (int l = 0; l < 32; ++l) {
            const int high = qh != nullptr && (byte_at(qh, l) & u2) ? 16 : 0;
            *y++ = d2 * static_cast<float>((byte_at(ql, l) >> 4) + high) - m2;
        }
        ql += 32;
        u1 = static_cast<std::uint8_t>(u1 << 2);
        u2 = static_cast<std::uint8_t>(u2 << 2);
    }
}

void q4_k(const std::byte* b, float* y) noexcept { q4_5_k(b, nullptr, b + 16, y); }
void q5_k(const std::byte* b, float* y) noexcept { q4_5_k(b, b + 16, b + 48, y); }

// Q6_K {ql[128]; qh[64]; scales[16] (int8); d}: x = (d·scale)·(q - 32), q
// the 6-bit value of a low nibble and two high bits.
void q6_k(const std::byte* b, float* y) noexcept {
    const std::byte* ql = b;
    const std::byte* qh = b + 128;
    const std::byte* sc = b + 192;
    const float d = half_at(b + 208);
    auto scale = [&](int i) { return static_cast<float>(static_cast<std::int8_t>(sc[i])); };
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const std::uint8_t h = byte_at(qh, l);
            const int q1 = ((byte_at(ql, l) & 0x0f) | (((h >> 0) & 3) << 4)) - 32;
            const int q2 = ((byte_at(ql, l + 32) & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
            const int q3 = ((byte_at(ql, l) >> 4) | (((h >> 4) & 3) << 4)) - 32;
            const int q4 = ((byte_at(ql, l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32;
            y[l] = d * scale(is) * static_cast<float>(q1);
            y[l + 32] = d * scale(is + 2) * static_cast<float>(q2);
            y[l + 64] = d * scale(is + 4) * static_cast<float>(q3);
            y[l + 96] = d * scale(is + 6) * static_cast<float>(q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

// Q8_K {d (float32); qs[256]; bsums[16]}: x = d·q.
void q8_k(const std::byte* b, float* y) noexcept {
    const float d = load<float>(b);
    for (std::size_t i = 0; i < super_block; ++i) y[i] = d * static_cast<float>(static_cast<std::int8_t>(b[4 + i]));
}

// IQ4_NL and IQ4_XS map each nibble through this non-uniform 16-entry grid.
constexpr std::int8_t iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

void iq4_nibbles(float d, const std::byte* qs, float* y) noexcept {
    for (int j = 0; j < 16; ++j) {
        y[j] = d * static_cast<float>(iq4_grid[byte_at(qs, j) & 0x0f]);
        y[j + 16] = d * static_cast<float>(iq4_grid[byte_at(qs, j) >> 4]);
    }
}

// IQ4_NL {d; qs[16]}: x = d·grid[nibble].
void iq4_nl(const std::byte* b, float* y) noexcept { iq4_nibbles(half_at(b), b + 2, y); }

// IQ4_XS {d; scales_h (u16); scales_l[4]; qs[128]}: 8 sub-blocks of 32 with
// 6-bit scales: x = (d·(scale - 32))·grid[nibble].
void iq4_xs(const std::byte* b, float* y) noexcept {
    const float d = half_at(b);
    const auto scales_h = load<std::uint16_t>(b + 2);
    for (int ib = 0; ib < 8; ++ib) {
        const int ls = ((byte_at(b + 4, ib / 2) >> (4 * (ib % 2))) & 0x0f) | (((scales_h >> (2 * ib)) & 3) << 4);
        iq4_nibbles(d * static_cast<float>(ls - 32), b + 8 + 16 * ib, y + 32 * ib);
    }
}

using block_decoder = void (*)(const std::byte*, float*) noexcept;

block_decoder decoder_of(dtype t) noexcept {
    switch (t) {
    case dtype::q4_0: return q4_0;
    case dtype::q4_1: return q4_1;
    case dtype::q5_0: return q5_0;
    case dtype::q5_1: return q5_1;
    case dtype::q2_k: return q2_k;
    case dtype::q3_k: return q3_k;
    case dtype::q4_k: return q4_k;
    case dtype::q5_k: return q5_k;
    case dtype::q6_k: return q6_k;
    case dtype::q8_k: return q8_k;
    case dtype::iq4_nl: return iq4_nl;
    case dtype::iq4_xs: return iq4_xs;
    default: return nullptr;
    }
}

}  // namespace

bool is_ggml_dequantizable(dtype t) noexcept { return decoder_of(t) != nullptr; }

void dequantize_blocks(dtype t, const std::byte* src, std::size_t blocks, float* dst) noexcept {
    const block_decoder decode_block = decoder_of(t);
    const std::size_t elements = dtype_block_elements(t);
    const std::size_t bytes = dtype_bytes(t);
    for (std::size_t i = 0; i < blocks; ++i) decode_block(src + i * bytes, dst + i * elements);
}

}  // namespace adaptk::detail
