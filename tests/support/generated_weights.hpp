#pragma once
// The weights tools/ggml-fixtures quantized with llama.cpp: integers times
// 2^-12 from splitmix64 (rank-4 structure plus noise), exact in float32, so
// this C++ copy of the tool's Python generator gives the same bits; the tests
// check it against the `source` tensor the tool stored.

#include <cstdint>
#include <vector>

namespace adaptk::test {

inline std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

inline std::int64_t generated_draw(std::uint64_t seed, std::uint64_t stream, std::uint64_t index, std::int64_t span) {
    return static_cast<std::int64_t>(splitmix64((seed << 40) ^ (stream << 32) ^ index) % static_cast<std::uint64_t>(span));
}

/// Row-major [rows, cols]: (Σ_t a_t[r]·b_t[c]·2^(3−t) + noise) / 4096 with
/// a, b in [−7, 7] and noise in [−64, 64].
inline std::vector<float> generated_matrix(std::uint64_t seed, std::uint64_t rows, std::uint64_t cols) {
    std::vector<float> values;
    values.reserve(rows * cols);
    for (std::uint64_t r = 0; r < rows; ++r)
        for (std::uint64_t c = 0; c < cols; ++c) {
            std::int64_t v = 0;
            for (std::uint64_t t = 0; t < 4; ++t)
                v += (generated_draw(seed, t, r, 15) - 7) * (std::int64_t{1} << (3 - t)) *
                     (generated_draw(seed, 4 + t, c, 15) - 7);
            v += generated_draw(seed, 8, r * cols + c, 129) - 64;
            values.push_back(static_cast<float>(v) / 4096.0f);
        }
    return values;
}

}  // namespace adaptk::test
