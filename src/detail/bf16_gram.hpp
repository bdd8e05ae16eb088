#pragma once
// C += X·Xᵀ on the upper triangle for a d×n block X of raw BF16 bit patterns,
// C float32: n·d(d+1)/2 multiply-adds (plus ≈ n·d·24 for the lower half of
// the 48-wide diagonal tiles, computed and dropped), on AVX512-BF16
// dot-product instructions (vdpbf16ps: two BF16 products per fp32 lane, each
// exact, summed in fp32).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace adaptk::detail {

/// True when this CPU and OS run vdpbf16ps (AVX512-BF16 and AVX-512 state).
bool cpu_has_bf16_dot() noexcept;

/// C = X·Xᵀ (accumulate false) or C += X·Xᵀ on the upper triangle of the
/// column-major d×d float32 `c`; X is d×count column-major BF16 bits (each
/// vector contiguous). Only the upper triangle is written, as with ssyrk.
/// Subnormal BF16 inputs count as zero (vdpbf16ps flushes them). `pack` is a
/// reusable buffer (≈ d·count·2 bytes); the work is shared by `threads`
/// threads. Precondition: cpu_has_bf16_dot().
void bf16_syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* c, bool accumulate,
                     std::vector<std::uint32_t>& pack, int threads);

}  // namespace adaptk::detail
