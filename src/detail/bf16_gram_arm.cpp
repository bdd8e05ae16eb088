// C += X·Xᵀ, upper triangle, X d×n BF16: n·d(d+1)/2 multiply-adds on BFDOT
// (AArch64 FEAT_BF16, Armv8.6: Graviton3, Neoverse V1/N2, Cortex-X2/A710,
// Apple M2), in the shared blocking of bf16_tiles.hpp.
//
// BFDOT by element (vbfdotq_laneq_f32) adds to each of 4 float32 lanes the
// two exact products of a lane's BF16 pair with one broadcast pair: the same
// pair packing as vdpbf16ps, 4 rows per panel. A micro-tile is 12 rows × 8
// columns of C: 24 q-register accumulators, per pair 3 row loads and 2 column
// loads (8 pairs, broadcast by lane) for 24 BFDOTs, 29 of the 32 registers.
// Built only for AArch64, and only this file with -march=armv8.2-a+bf16
// (arm_neon.h's BF16 intrinsics need it): the rest of the binary runs on any
// Armv8-A; gram_kernel.cpp calls it only when HWCAP2_BF16 is set.

#include <arm_neon.h>

#include "detail/bf16_gram.hpp"
#include "detail/bf16_tiles.hpp"

namespace adaptk::detail {
namespace {

using bf16_tiles::output_panel;
using bf16_tiles::packed_block;

struct neon_bf16 {
    static constexpr std::size_t lanes = 4;         // fp32 lanes of a q register: rows per panel
    static constexpr std::size_t tile_columns = 8;  // two panels of broadcast columns
    static constexpr std::size_t tile_panels = 3;   // 3 × 8 = 24 accumulators

    static constexpr auto pack_pairs = bf16_tiles::pack_pairs<lanes>;

    static bfloat16x8_t load_pairs(const std::uint32_t* q) { return vreinterpretq_bf16_u32(vld1q_u32(q)); }

    // C[i0 .. i0+rows) × [j0 .. j0+columns) (+)= the packed rows times the packed
    // columns over pairs [p0, p0+chunk), stored only where i ≤ j.
    template <std::size_t Panels>
    static void micro_tile(const packed_block<lanes>& x, std::size_t i0, std::size_t rows, std::size_t j0,
                           std::size_t columns, std::size_t p0, std::size_t chunk, const output_panel& c, bool accumulate) {
        float32x4_t sums[Panels][tile_columns];
        for (auto& panel : sums)
            for (auto& s : panel) s = vdupq_n_f32(0.0f);
        const std::size_t stride = x.panel_stride();
        const std::uint32_t* a = x.at(i0, p0);
        const std::uint32_t* low = x.at(j0, p0);  // columns j0 .. j0+3 (j0 is a multiple of 4)
        // Columns j0+4 .. j0+7 live in the next panel, absent past d: then the
        // low panel stands in and its sums are dropped below.
        const std::uint32_t* high = columns > lanes ? low + stride : low;
        for (std::size_t p = 0; p < chunk; ++p) {
            const bfloat16x8_t first = load_pairs(low + p * lanes);
            const bfloat16x8_t second = load_pairs(high + p * lanes);
            for (std::size_t m = 0; m < Panels; ++m) {
                const bfloat16x8_t r = load_pairs(a + m * stride + p * lanes);
                sums[m][0] = vbfdotq_laneq_f32(sums[m][0], r, first, 0);
                sums[m][1] = vbfdotq_laneq_f32(sums[m][1], r, first, 1);
                sums[m][2] = vbfdotq_laneq_f32(sums[m][2], r, first, 2);
                sums[m][3] = vbfdotq_laneq_f32(sums[m][3], r, first, 3);
                sums[m][4] = vbfdotq_laneq_f32(sums[m][4], r, second, 0);
                sums[m][5] = vbfdotq_laneq_f32(sums[m][5], r, second, 1);
                sums[m][6] = vbfdotq_laneq_f32(sums[m][6], r, second, 2);
                sums[m][7] = vbfdotq_laneq_f32(sums[m][7], r, second, 3);
            }
        }
        for (std::size_t n = 0; n < columns; ++n) {
            const std::size_t j = j0 + n;
            const std::size_t upper_rows = std::min(rows, j - i0 + 1);  // i ≤ j
            float* target = c.at(i0, j);
            for (std::size_t m = 0; m < Panels && m * lanes < upper_rows; ++m) {
                float* out = target + m * lanes;
                const std::size_t valid = std::min(lanes, upper_rows - m * lanes);
                if (valid == lanes) {
                    vst1q_f32(out, accumulate ? vaddq_f32(sums[m][n], vld1q_f32(out)) : sums[m][n]);
                } else {
                    float values[lanes];
                    vst1q_f32(values, sums[m][n]);
                    for (std::size_t l = 0; l < valid; ++l) out[l] = accumulate ? out[l] + values[l] : values[l];
                }
            }
        }
    }
};

}  // namespace

void arm_bf16_syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* panels,
                         const panel_sink& finished, std::vector<std::uint32_t>& pack, int threads) {
    bf16_tiles::syrk_upper<neon_bf16>(x, d, count, panels, finished, pack, threads);
}

}  // namespace adaptk::detail
