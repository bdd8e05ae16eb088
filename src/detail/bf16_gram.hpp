#pragma once
// C = X·Xᵀ on the upper triangle for a d×n block X of raw BF16 bit patterns,
// C float32, one row block at a time: n·d(d+1)/2 multiply-adds on BF16 dot-product instructions (two
// exact BF16 products per float32 lane, summed in float32). One kernel per
// instruction set, each in its own file compiled with its own target flags
// (bf16_gram_avx512.cpp, bf16_gram_arm.cpp), built only for its architecture;
// gram_kernel.cpp detects the CPU's features and calls the one chosen.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "adaptk/gram_kernel.hpp"

namespace adaptk::detail {

/// Called with a finished float32 panel of C: rows [first_row, first_row +
/// rows), columns first_row .. d−1, column j at panel + (j − first_row)·rows,
/// only i ≤ j meaningful. Called from several threads at once, for disjoint rows.
using panel_sink = std::function<void(const float* panel, std::size_t first_row, std::size_t rows)>;
/// Rows of one thread's panel: at least every kernel's row block (48 rows
/// for AVX512-BF16, 12 for Arm).
inline constexpr std::size_t bf16_panel_rows = 48;

/// C = X·Xᵀ on the upper triangle, one row block at a time: X is d×count
/// column-major BF16 bits (each vector contiguous); each row block of C is
/// summed in float32 into the calling thread's slot of `panels` (room for
/// threads·bf16_panel_rows·d floats) and handed to `finished`. Subnormal
/// BF16 inputs may count as zero (vdpbf16ps flushes them). `pack` is a
/// reusable buffer (≈ d·count·2 bytes); the work is shared by `threads`
/// threads. Each float32 register sum spans at most 256 vectors before it is
/// added to the panel. Precondition: gram_kernel_runnable() of the matching kernel.
void avx512_bf16_syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* panels,
                            const panel_sink& finished, std::vector<std::uint32_t>& pack, int threads);
void arm_bf16_syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* panels,
                         const panel_sink& finished, std::vector<std::uint32_t>& pack, int threads);

/// The same through `kernel` (a BF16 kernel that gram_kernel_runnable()).
void bf16_syrk_upper(gram_kernel kernel, const std::uint16_t* x, std::size_t d, std::size_t count, float* panels,
                     const panel_sink& finished, std::vector<std::uint32_t>& pack, int threads);

}  // namespace adaptk::detail
