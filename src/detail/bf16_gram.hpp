#pragma once
// C += X·Xᵀ on the upper triangle for a d×n block X of raw BF16 bit patterns,
// C float32: n·d(d+1)/2 multiply-adds on BF16 dot-product instructions (two
// exact BF16 products per float32 lane, summed in float32). One kernel per
// instruction set, each in its own file compiled with its own target flags
// (bf16_gram_avx512.cpp, bf16_gram_arm.cpp), built only for its architecture;
// gram_kernel.cpp detects the CPU's features and calls the one chosen.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "adaptk/gram_kernel.hpp"

namespace adaptk::detail {

/// C = X·Xᵀ (accumulate false) or C += X·Xᵀ on the upper triangle of the
/// column-major d×d float32 `c`; X is d×count column-major BF16 bits (each
/// vector contiguous). Only the upper triangle is written, as with ssyrk.
/// Subnormal BF16 inputs may count as zero (vdpbf16ps flushes them). `pack`
/// is a reusable buffer (≈ d·count·2 bytes); the work is shared by `threads`
/// threads. Each float32 register sum spans at most 256 vectors before it is
/// added to C. Precondition: gram_kernel_runnable() of the matching kernel.
void avx512_bf16_syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* c, bool accumulate,
                            std::vector<std::uint32_t>& pack, int threads);
void arm_bf16_syrk_upper(const std::uint16_t* x, std::size_t d, std::size_t count, float* c, bool accumulate,
                         std::vector<std::uint32_t>& pack, int threads);

/// The same through `kernel` (a BF16 kernel that gram_kernel_runnable()).
void bf16_syrk_upper(gram_kernel kernel, const std::uint16_t* x, std::size_t d, std::size_t count, float* c,
                     bool accumulate, std::vector<std::uint32_t>& pack, int threads);

}  // namespace adaptk::detail
