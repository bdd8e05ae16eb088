#pragma once
// Partial accumulator states on disk, for runs split between jobs that share
// no MPI (Slurm job arrays, several machines, a resumable run): part I of N
// streams the matrices split_by_bytes gives it and writes each type's
// gram_state; the N files merged with gram_accumulator::operator+= are the
// whole run's Grams. A state file is untrusted input, validated completely
// before use, like a checkpoint.
//
// Format version 2 is a safetensors file. Tensors, in this order: for each
// type the part read, with per-matrix rows first "<matrix>.eigenvalues" F64
// [own_eigenvalue_count] for each of its matrices the part read (that
// matrix's own spectrum, descending, ≥ 0: ≤ d doubles, never its Gram),
// then "<type>.gram" F64 [d(d+1)/2] (the packed upper
// triangle, gram.hpp), with center "<type>.sum" F64 [d], and "<type>.rounding"
// U64 [2] (the longest float32 run and the float64 flushes, gram_state: data
// rather than metadata because they are known only after the stream); last
// "checksum" U64 [1] at the end of the data section: FNV-1a over 64-bit
// words of the metadata values (in the key order below) and every data byte
// before it. Metadata (strings):
//   format "adaptk-state", format_version "2", tool, model (the path it was
//   read from; not compared), dim, center "true"/"false", per_matrix "no",
//   "single" or "double" (the precision of the eigenvalue solves), part "I/N",
//   matrices (JSON: every analysed matrix of the whole model, in analysis
//   order: name, type, layer, dtype, rows, cols, vectors "rows"/"cols"),
//   vectors (JSON: {type: vectors this part read}), fingerprint (16 hex
//   digits: FNV-1a of dim, center and matrices).
// Version 1 is version 2 without per_matrix and eigenvalues; it is still read
// (for the type tables).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adaptk/analysis.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/mapped_file.hpp"
#include "adaptk/safetensors.hpp"
#include "adaptk/weight_matrix.hpp"

namespace adaptk {

inline constexpr int state_format_version = 2;
inline constexpr int oldest_state_format_version = 1;

/// Recorded in a state for the reader's report; not compared when merging.
struct state_origin {
    std::string model;  ///< the path the weights were read from
    std::string tool;   ///< "adaptk-stream 0.1.0"
};

/// Streams part `part` (1-based) of `parts` of `matrices` (as
/// checkpoint::matrices() returns them) with options.center,
/// options.block_vectors and, with options.per_matrix, each matrix's own
/// eigenvalues at options.matrix_precision, and writes its state to `path` atomically: the file
/// appears complete or not at all. Throws std::invalid_argument for a part
/// outside 1..parts, and what accumulate_grams and atomic_file throw.
void write_state(const std::filesystem::path& path, const state_origin& origin, const std::vector<weight_matrix>& matrices,
                 std::uint64_t d, const analysis_options& options, std::size_t part, std::size_t parts);

/// One state file's header, validated: metadata consistent with itself, the
/// tensors exactly those its part must hold, the checksum right.
struct state_part {
    int version = state_format_version;
    std::uint64_t dim = 0;
    bool center = false;
    /// The precision of its per-matrix solves; nullopt: no per-matrix rows.
    std::optional<eig_precision> per_matrix;
    std::size_t part = 0;   ///< 1-based
    std::size_t parts = 0;
    std::string fingerprint;
    std::string model;
    std::string tool;
    /// The whole model's analysed matrices (bytes empty: not mapped).
    std::vector<weight_matrix> matrices;
    /// Per type (report order in matrices): its vectors in this part, its
    /// rounding inputs (longest float run, flushes; checked against the
    /// vectors), and the indices into header.tensors of the tensors that hold
    /// its state (no_tensor when the part read none of that type, or no sums).
    std::vector<std::uint64_t> vectors;
    std::vector<std::uint64_t> longest_float_runs;
    std::vector<std::uint64_t> flushes;
    std::vector<std::size_t> grams;
    std::vector<std::size_t> sums;
    /// Per matrix (per_matrix only): the index of its eigenvalues' tensor,
    /// no_tensor for the matrices other parts read. Checked: finite, ≥ 0, descending.
    std::vector<std::size_t> eigenvalues;
    static constexpr std::size_t no_tensor = static_cast<std::size_t>(-1);
};

/// Validates a state file image whose safetensors structure `header` already
/// passed parse_safetensors. Throws format_error naming `file_name` and what
/// is wrong. Cost: one pass over the file for the checksum, in pieces of
/// state_hash_piece bytes; `hashed`, when given, gets each piece once it was
/// read (a mapped file drops its pages there, so a part never is resident whole).
inline constexpr std::size_t state_hash_piece = 8u << 20;
state_part parse_state(std::span<const std::byte> file, const safetensors_header& header, const std::string& file_name,
                       const std::function<void(std::span<const std::byte>)>& hashed = {});

/// The N parts of one run, each validated, and checked to belong together:
/// the same model fingerprint and options, every part 1..N exactly once.
class state_set {
public:
    /// Throws format_error (naming the file and the reason) or std::system_error.
    explicit state_set(const std::vector<std::filesystem::path>& files);

    std::uint64_t dim() const noexcept { return parts_.front().dim; }
    bool center() const noexcept { return parts_.front().center; }
    const std::string& model() const noexcept { return parts_.front().model; }
    const std::vector<weight_matrix>& matrices() const noexcept { return parts_.front().matrices; }
    /// The precision of the parts' per-matrix solves; nullopt: they hold no per-matrix rows.
    std::optional<eig_precision> per_matrix() const noexcept { return parts_.front().per_matrix; }

    /// Throws format_error naming the first file and why, when the parts hold
    /// no per-matrix rows, which `needed_by` (a command) needs.
    void require_per_matrix(const std::string& needed_by) const;
    /// Matrix `matrix_index`'s own eigenvalues, from the part that read it
    /// (per_matrix() only).
    arma::vec eigenvalues(std::size_t matrix_index) const;
    /// Checks that `weights` (checkpoint::matrices() of the model `model`) are
    /// the states' analysed matrices: the same names, types, layers, dtypes and
    /// shapes in the same order. Throws format_error naming `model`, the tensor
    /// and the difference.
    void check_weights(const std::vector<weight_matrix>& weights, const std::string& model) const;
    /// Adds type `type_index`'s state of every part to `gram` (with +=); the
    /// sums only when `gram` tracks one.
    void add_to(std::size_t type_index, gram_accumulator& gram) const;

private:
    /// A state file's mapping (shared, as tensor_file shares its own) and header.
    struct mapped_state {
        std::shared_ptr<const mapped_file> mapping;
        safetensors_header header;
    };
    std::vector<mapped_state> files_;
    std::vector<std::filesystem::path> paths_;
    std::vector<std::size_t> reader_;  ///< per matrix: the index of the part that read it
    std::vector<state_part> parts_;
};

}  // namespace adaptk
