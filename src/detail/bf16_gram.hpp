#pragma once
// C = X·Xᵀ on the upper triangle for a d×n block X of raw BF16 bit patterns,
// C float32, in row panels: n·d(d+1)/2 multiply-adds on BF16 dot-product instructions (two
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

/// Called with (first_row, rows) when a panel of C is complete.
using panel_sink = std::function<void(std::size_t first_row, std::size_t rows)>;
/// Panel heights must be multiples of this: every kernel's row blocks (48
/// rows for AVX512-BF16, 12 for Arm) end on a panel boundary.
inline constexpr std::size_t bf16_panel_rows_multiple = 48;

/// C = X·Xᵀ on the upper triangle, one row panel at a time: X is d×count
/// column-major BF16 bits (each vector contiguous); rows [r, r + h) of C,
/// h = min(panel_rows, d − r), columns r .. d−1, are written as float32 into
/// `panel` (column j at panel + (j − r)·h, only i ≤ j) and then `finished(r, h)`
/// is called, for r = 0, panel_rows, … Subnormal BF16 inputs may count as zero
/// (vdpbf16ps flushes them). `pack` is a reusable buffer (≈ d·count·2 bytes);
/// the work is shared by `threads` threads. Each float32 register sum spans at
/// most 256 vectors before it is added to the panel. Preconditions:
/// gram_kernel_runnable() of the matching kernel; panel_rows a positive
/// multiple of bf16_panel_rows_multiple; `panel` holds panel_rows·d floats.
void avx512_bf16_syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* panel,
                            std::size_t panel_rows, const panel_sink& finished, std::vector<std::uint32_t>& pack,
                            int threads);
void arm_bf16_syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* panel,
                         std::size_t panel_rows, const panel_sink& finished, std::vector<std::uint32_t>& pack,
                         int threads);

/// The same through `kernel` (a BF16 kernel that gram_kernel_runnable()).
void bf16_syrk_upper(gram_kernel kernel, const std::uint16_t* x, std::size_t d, std::size_t count, float* panel,
                     std::size_t panel_rows, const panel_sink& finished, std::vector<std::uint32_t>& pack,
                     int threads);

}  // namespace adaptk::detail
