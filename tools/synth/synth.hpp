#pragma once
// adaptk-synth's model: a Llama-shaped checkpoint whose weight types have
// known spectra over the hidden axis. For each type t (q k v o gate up down
// embed head) a random orthonormal basis B_t (d × d) and singular values
// s_i = (i+1)^(-alpha_t); each matrix's n hidden-axis vectors are the rows of
//     G · diag(s) · B_tᵀ,   G an n × d standard Gaussian block scaled by 1/√n,
// so one matrix's Gram over the hidden axis is ≈ B_t diag(s²) B_tᵀ and the
// type's Gram summed over L layers is ≈ B_t diag(L·s²) B_tᵀ.
// Cost: 2·n·d² flops per matrix (sgemm), n·d Gaussian draws. With a rank
// r < d only B_t's first r columns and s_1..s_r are used (the rest of the
// spectrum is 0): 2·n·d·r flops and n·r draws, which is what makes d = 16384
// checkpoints take minutes instead of hours.

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adaptk/dtype.hpp"

namespace adaptk::synth {

/// The nine weight types, in the order of their default decay table.
enum class matrix_type { q, k, v, o, gate, up, down, embed, head };
inline constexpr std::size_t matrix_type_count = 9;

/// "q_proj", "k_proj", ..., "embed_tokens", "lm_head": the names in tensor names.
std::string_view matrix_type_name(matrix_type t) noexcept;

/// Model dimensions; `type` is the element type of every tensor.
struct shape_config {
    std::uint64_t hidden = 64;
    std::uint64_t ffn = 172;
    std::uint64_t kv = 32;
    std::uint64_t layers = 3;
    std::uint64_t vocab = 256;
    dtype type = dtype::f32;
    bool tied = false;
};

/// Exponents alpha_t, indexed by matrix_type: types differ in compressibility.
using decay_table = std::array<double, matrix_type_count>;
inline constexpr decay_table default_decay{0.6, 1.0, 0.4, 0.4, 0.2, 0.2, 0.25, 0.5, 0.5};

struct options {
    shape_config shape;
    decay_table decay = default_decay;
    std::uint64_t seed = 0;
    std::uint64_t shards = 1;
    std::optional<std::uint64_t> rank;  ///< nonzero singular values per type; empty: hidden (full rank)
};

/// opts.rank, or the hidden size when it is not set.
std::uint64_t spectrum_rank(const options& opts) noexcept;

/// One tensor of the checkpoint. `type` is empty for norm weights (all ones).
struct tensor_spec {
    std::string name;
    std::vector<std::uint64_t> shape;  ///< [out, in], row-major, as HF Llama stores it
    std::optional<matrix_type> type;
    std::uint64_t bytes;               ///< elements · dtype_bytes(shape.type)
};

/// Every tensor in HF Llama order: embed, per layer (q k v o gate up down,
/// the two layer norms), final norm, lm_head unless tied. Throws
/// std::invalid_argument when a byte count overflows 64 bits.
std::vector<tensor_spec> llama_tensors(const shape_config& shape);

/// Shard index of each tensor: contiguous runs in order, cut where the bytes
/// so far pass k/N of the total, every shard non-empty. Precondition:
/// 1 <= shards <= tensors.size().
std::vector<std::uint64_t> assign_shards(const std::vector<tensor_spec>& tensors, std::uint64_t shards);

/// "model.safetensors" for one shard, else "model-00002-of-00004.safetensors".
std::string shard_file_name(std::uint64_t shard, std::uint64_t shards);

/// HF config.json for LlamaForCausalLM plus an "adaptk_synth" entry holding
/// the seed and the decay exponents (the ground truth a test compares with).
nlohmann::ordered_json llama_config(const options& opts);

/// Called after every tensor: its index, the tensor count, its spec and the
/// data bytes written so far of `bytes_total`.
using progress_fn = std::function<void(std::size_t index, std::size_t count, const tensor_spec& tensor,
                                       std::uint64_t bytes_done, std::uint64_t bytes_total)>;

/// Writes the checkpoint into `directory` (created if missing): the shard
/// files, the index when shards > 1, config.json; each appears complete or not
/// at all. Returns the names of files of the other layout (a stale single file
/// or index/shards from an earlier run) that it removed so a reader finds only
/// this checkpoint. Same options, same bytes (for one BLAS thread count).
/// Throws std::system_error (I/O, with the path), std::invalid_argument,
/// numerical_error (QR failed). Memory: 9 d × rank float matrices, one block
/// of vectors, and for down_proj its whole ffn × rank Gaussian factor.
std::vector<std::string> write_checkpoint(const std::filesystem::path& directory, const options& opts,
                                          const progress_fn& progress);

}  // namespace adaptk::synth
