#pragma once
// One tensor catalogue over whatever the user points at: a single
// .safetensors or .gguf file, a directory with model.safetensors.index.json
// (sharded), or a directory of *.safetensors files; plus config.json when it
// is there (else a GGUF file's own key-values).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adaptk/classify.hpp"
#include "adaptk/tensor_file.hpp"

namespace adaptk {

/// The config.json fields the analysis uses; absent ones stay empty. GPT-2's
/// names (n_embd, n_layer, n_inner, n_head) fill the same fields.
struct model_config {
    std::optional<std::uint64_t> hidden_size;
    std::optional<std::uint64_t> num_layers;
    std::optional<std::uint64_t> intermediate_size;
    std::optional<std::uint64_t> vocab_size;
    std::optional<std::uint64_t> num_attention_heads;
    std::optional<std::uint64_t> num_key_value_heads;
    std::optional<std::uint64_t> head_dim;
    bool tie_word_embeddings = false;  ///< true only when the config says so
};

/// Reads the fields above from a config.json. Throws format_error when the file
/// is not a JSON object or a field is present but not a positive integer (a
/// boolean for tie_word_embeddings).
model_config read_model_config(const std::filesystem::path& config_json);

struct tensor_entry {
    std::size_t file = 0;   ///< index into checkpoint::files()
    std::size_t index = 0;  ///< index into that file's tensors()
    std::optional<tensor_class> kind;  ///< nullopt: not analysed (norms, biases, ...)
};

/// Which rows (vectors_are_rows) or columns of a stored tensor a matrix takes
/// when it is one part of a fused tensor: its vector j is stored row or column
/// first + (j / run)·period + j % run. The default takes them all, in order.
struct tensor_part {
    std::uint64_t first = 0;
    std::uint64_t run = 0;          ///< 0: one contiguous run
    std::uint64_t period = 0;       ///< stored rows or columns from one run's start to the next
    std::uint64_t stored_cols = 0;  ///< the stored tensor's row length; 0: cols

    std::uint64_t stored_index(std::uint64_t j) const noexcept {
        return run == 0 ? first + j : first + (j / run) * period + j % run;
    }
};

/// A 2-D floating matrix chosen for analysis, with its hidden axis resolved.
/// It shares ownership of its file's mapping, so `bytes` stay valid however
/// long the matrix lives, also after its checkpoint is destroyed.
struct weight_matrix {
    std::string name;  ///< the tensor's; a fused part adds "[q]", "[gate]", ...
    tensor_class kind;
    dtype type;
    std::uint64_t rows = 0;  ///< row-major [rows, cols]; a fused part's own shape
    std::uint64_t cols = 0;
    bool vectors_are_rows = true;  ///< false: the hidden-axis vectors are columns (down_proj)
    std::span<const std::byte> bytes;  ///< the whole stored tensor, inside *mapping
    std::shared_ptr<const mapped_file> mapping;  ///< owns `bytes`; also for read-ahead and page release hints
    std::uint64_t file_offset = 0;
    tensor_part part{};

    std::uint64_t vector_count() const noexcept { return vectors_are_rows ? rows : cols; }
    std::uint64_t stored_cols() const noexcept { return part.stored_cols != 0 ? part.stored_cols : cols; }
    /// Bytes this matrix's vectors occupy (less than bytes.size() for a fused
    /// part): a block type's bytes per block spread over its elements per block.
    std::uint64_t vector_bytes() const noexcept {
        return rows * cols * dtype_bytes(type) / dtype_block_elements(type);
    }
};

class checkpoint {
public:
    /// Opens and validates every file of the checkpoint at `path`, naming its
    /// tensors with `rules` (the built-in ones by default). Throws
    /// format_error / std::system_error naming the file (and tensor) at fault.
    explicit checkpoint(const std::filesystem::path& path, type_rules rules = {});

    const std::vector<tensor_file>& files() const noexcept { return files_; }
    /// Every tensor, files in order, each file's tensors in header order.
    const std::vector<tensor_entry>& tensors() const noexcept { return tensors_; }
    const tensor_info& info(const tensor_entry& entry) const noexcept {
        return files_[entry.file].tensors()[entry.index];
    }
    const model_config& config() const noexcept { return config_; }
    /// Where the config was read from: config.json, or the GGUF file whose
    /// key-values gave it when there is no config.json; empty when neither.
    const std::filesystem::path& config_path() const noexcept { return config_path_; }
    /// Non-fatal observations for stderr (e.g. shard tensors not in the index).
    const std::vector<std::string>& notes() const noexcept { return notes_; }

    /// The hidden size: `requested` if given, else the config's hidden_size,
    /// else the most common axis length of the classified non-empty 2-D
    /// matrices (a note says so). Throws format_error when no tensor is
    /// classified (the fix is --types), none is a non-empty matrix, or the
    /// requested or configured size is no axis length of one.
    std::uint64_t hidden_size(std::optional<std::uint64_t> requested, std::vector<std::string>& notes) const;

    /// The analysed matrices for hidden size d, ordered by type (report order),
    /// then layer (numeric), then name. Fused tensors come out as their parts
    /// (fused.hpp); throws format_error when config.json does not determine a
    /// split. A tied output head is left out, with a note, so the embedding
    /// counts once. Classified tensors that cannot be analysed (not 2-D,
    /// empty, no axis of length d, non-float dtype) get a note.
    std::vector<weight_matrix> matrices(std::uint64_t d, std::vector<std::string>& notes) const;

private:
    void open_index(const std::filesystem::path& index_json);
    void add_file(const std::filesystem::path& file);
    void drop_tied_head(std::vector<weight_matrix>& chosen, std::vector<std::string>& notes) const;

    std::vector<tensor_file> files_;
    std::vector<tensor_entry> tensors_;
    type_rules rules_;
    model_config config_;
    std::filesystem::path config_path_;
    std::vector<std::string> notes_;
};

}  // namespace adaptk
