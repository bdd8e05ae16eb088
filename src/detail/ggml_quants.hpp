#pragma once
// ggml's block-quantized types decoded to the float values llama.cpp's own
// dequantize_row_* produce, bit for bit: the same integer unpacking and the
// same float operations in the same order (tests/data/ggml-quants compares
// with the values libggml-base reports). One block at a time, so the vector
// stream never holds a dequantized tensor.

#include <cstddef>

#include "adaptk/dtype.hpp"

namespace adaptk::detail {

/// True for the ggml block types dequantize_blocks decodes (Q8_0 is decoded
/// inline in dtype.cpp): Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, Q8_K, IQ4_NL, IQ4_XS.
bool is_ggml_dequantizable(dtype t) noexcept;

/// Decodes `blocks` whole blocks of type `t` from `src` (any alignment) into
/// blocks · dtype_block_elements(t) floats. Precondition: is_ggml_dequantizable(t).
void dequantize_blocks(dtype t, const std::byte* src, std::size_t blocks, float* dst) noexcept;

}  // namespace adaptk::detail
