#pragma once
// One tensor catalogue over whatever the user points at: a single
// .safetensors or .gguf file, any part of a split GGUF (llama.cpp's gguf-split:
// every part is found by name and checked), a directory with model.safetensors.index.json
// (sharded), or a directory of *.safetensors files; plus config.json when it
// is there (else a GGUF file's own key-values).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adaptk/classify.hpp"
#include "adaptk/model_config.hpp"
#include "adaptk/tensor_file.hpp"
#include "adaptk/weight_matrix.hpp"

namespace adaptk {

/// Reads model_config's fields from a config.json. Throws format_error when the file
/// is not a JSON object or a field is present but not a positive integer (a
/// boolean for tie_word_embeddings).
model_config read_model_config(const std::filesystem::path& config_json);

struct tensor_entry {
    std::size_t file = 0;   ///< index into checkpoint::files()
    std::size_t index = 0;  ///< index into that file's tensors()
    std::optional<tensor_class> kind;  ///< nullopt: not analysed (norms, biases, ...)
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
    /// Where the config was read from: config.json, or the GGUF or llama2.c file whose
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
    /// counts once; a head that was left out is never called tied. Classified
    /// tensors that cannot be analysed (not 2-D, empty, no axis of length d)
    /// get a note each; those of a dtype without a decoder one note per file
    /// and dtype with their count.
    std::vector<weight_matrix> matrices(std::uint64_t d, std::vector<std::string>& notes) const;

private:
    void open_index(const std::filesystem::path& index_json);
    void open_split_gguf(const std::filesystem::path& given_part);
    void add_file(const std::filesystem::path& file);
    void drop_tied_head(std::vector<weight_matrix>& chosen, const std::set<weight_type>& skipped,
                        std::vector<std::string>& notes) const;

    std::vector<tensor_file> files_;
    std::vector<tensor_entry> tensors_;
    type_rules rules_;
    model_config config_;
    std::filesystem::path config_path_;
    std::vector<std::string> notes_;
};

}  // namespace adaptk
