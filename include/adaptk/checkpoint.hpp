#pragma once
// One tensor catalogue over whatever the user points at: a single
// .safetensors or .gguf file, a directory with model.safetensors.index.json
// (sharded), or a directory of *.safetensors files; plus config.json when it
// is there (else a GGUF file's own key-values).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adaptk/classify.hpp"
#include "adaptk/tensor_file.hpp"

namespace adaptk {

/// The config.json fields the analysis uses; absent ones stay empty.
struct model_config {
    std::optional<std::uint64_t> hidden_size;
    std::optional<std::uint64_t> num_layers;
    std::optional<std::uint64_t> intermediate_size;
    std::optional<std::uint64_t> vocab_size;
    std::optional<std::uint64_t> num_attention_heads;
    std::optional<std::uint64_t> num_key_value_heads;
};

/// Reads the fields above from a config.json. Throws format_error when the file
/// is not a JSON object or a field is present but not a positive integer.
model_config read_model_config(const std::filesystem::path& config_json);

struct tensor_entry {
    std::size_t file = 0;   ///< index into checkpoint::files()
    std::size_t index = 0;  ///< index into that file's tensors()
    std::optional<tensor_class> kind;  ///< nullopt: not analysed (norms, biases, ...)
};

/// A 2-D floating matrix chosen for analysis, with its hidden axis resolved.
struct weight_matrix {
    std::string name;
    tensor_class kind;
    dtype type;
    std::uint64_t rows = 0;  ///< row-major [rows, cols]
    std::uint64_t cols = 0;
    bool vectors_are_rows = true;  ///< false: the hidden-axis vectors are columns (down_proj)
    std::span<const std::byte> bytes;
    const mapped_file* mapping = nullptr;  ///< for read-ahead and page release hints
    std::uint64_t file_offset = 0;

    std::uint64_t vector_count() const noexcept { return vectors_are_rows ? rows : cols; }
};

class checkpoint {
public:
    /// Opens and validates every file of the checkpoint at `path`. Throws
    /// format_error / std::system_error naming the file (and tensor) at fault.
    explicit checkpoint(const std::filesystem::path& path);

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
    /// else the most common axis length of the classified 2-D matrices (a note
    /// says so). Throws format_error when none can be found.
    std::uint64_t hidden_size(std::optional<std::uint64_t> requested, std::vector<std::string>& notes) const;

    /// The analysed matrices for hidden size d, ordered by type (report order),
    /// then layer (numeric), then name. Classified tensors that cannot be
    /// analysed (not 2-D, no axis of length d, non-float dtype) get a note.
    std::vector<weight_matrix> matrices(std::uint64_t d, std::vector<std::string>& notes) const;

private:
    void open_index(const std::filesystem::path& index_json);
    void add_file(const std::filesystem::path& file);

    std::vector<tensor_file> files_;
    std::vector<tensor_entry> tensors_;
    model_config config_;
    std::filesystem::path config_path_;
    std::vector<std::string> notes_;
};

}  // namespace adaptk
