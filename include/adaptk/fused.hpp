#pragma once
// A fused tensor (q/k/v or gate/up in one weight) as the separate weight
// matrices it holds, so Phi-3, GPT-NeoX and GPT-2 checkpoints give the same
// types as Llama's. No bytes move: each part is a tensor_part view (a row or
// column range, or NeoX's per-head period) over the stored tensor.
//
// Layouts relied on (HF transformers modeling files), H heads, Hkv kv heads,
// hd head_dim, d hidden size, parts taken along the output axis:
//   qkv           [q; k; v] contiguous: q H·hd, k and v Hkv·hd each
//                 (Phi-3 qkv_proj Linear [out, in]; GPT-2 c_attn Conv1D [in, out] = [d, 3d])
//   qkv_per_head  output viewed as [H, 3·hd]: per head q, k, v of hd each; Hkv = H
//                 (GPT-NeoX query_key_value [3d, d])
//   gate_up       [gate; up] halves (Phi-3 gate_up_proj [2·ffn, d])
// hd is config.json's head_dim, else d / H.

#include <cstdint>
#include <string>
#include <vector>

#include "adaptk/model_config.hpp"
#include "adaptk/weight_matrix.hpp"

namespace adaptk {

/// The parts of `whole` (a stored tensor [rows, cols] whose kind.fused is not
/// none) in part order, each typed q, k, v or gate, up with the layer of the
/// whole and a name ending "[q]", "[gate]", .... Its input axis must be the
/// hidden size d. Throws format_error naming `file` and the tensor when the
/// config lacks what the split needs (num_attention_heads for q/k/v) or the
/// output axis does not hold the parts exactly.
std::vector<weight_matrix> split_fused(const weight_matrix& whole, const model_config& config, std::uint64_t d,
                                       const std::string& file);

}  // namespace adaptk
