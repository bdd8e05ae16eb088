#include "adaptk/checkpoint.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>

#include "adaptk/error.hpp"
#include "adaptk/fused.hpp"

namespace adaptk {
namespace fs = std::filesystem;
namespace {

using json = nlohmann::json;

constexpr std::string_view index_name = "model.safetensors.index.json";

json read_json_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::system_error(errno, std::generic_category(), path.string() + ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return json::parse(text.str());
    } catch (const json::parse_error& e) {
        const std::uint64_t at = e.byte > 0 ? e.byte - 1 : 0;  // e.byte is 1-based
        throw format_error(path.string(), "", "not valid JSON near byte " + std::to_string(at), at);
    } catch (const json::exception&) {  // out_of_range.406: a number beyond double, e.g. 1e999
        throw format_error(path.string(), "", "not valid JSON: a number is out of range");
    }
}

std::string shape_text(const std::vector<std::uint64_t>& shape) {
    return shape.empty() ? "scalar" : shape_string(shape);
}

// The hidden-axis vectors run along the input axis when it has length d (rows
// of a Linear [out, in], columns of a Conv1D [in, out]), else along the output
// axis (down projections, whose output is d).
bool vectors_are_rows(storage_layout layout, std::uint64_t rows, std::uint64_t cols, std::uint64_t d) {
    const bool linear = layout == storage_layout::linear;
    return ((linear ? cols : rows) == d) == linear;
}

// Bytes [at, at + count) of a matrix's stored tensor, copied into `out`.
void read_stored(const weight_matrix& m, std::uint64_t at, std::size_t count, std::byte* out) {
    if (m.file != nullptr)
        m.file->read(m.file_offset + at, count, out);
    else
        std::memcpy(out, m.bytes.data() + at, count);
}

// Bytewise equal matrices, compared a chunk at a time through two small
// buffers, so a multi-GB embedding is neither mapped nor resident.
bool same_bytes(const weight_matrix& a, const weight_matrix& b) {
    if (a.type != b.type || a.rows != b.rows || a.cols != b.cols || a.stored_size() != b.stored_size()) return false;
    if (a.file == b.file && a.file_offset == b.file_offset && a.bytes.data() == b.bytes.data()) return true;
    constexpr std::size_t chunk_bytes = 1 << 20;
    std::vector<std::byte> left(chunk_bytes), right(chunk_bytes);
    for (std::uint64_t at = 0; at < a.stored_size(); at += chunk_bytes) {
        const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes, a.stored_size() - at));
        read_stored(a, at, count, left.data());
        read_stored(b, at, count, right.data());
        if (std::memcmp(left.data(), right.data(), count) != 0) return false;
    }
    return true;
}

// llama.cpp's gguf-split names part i (1-based) of n PREFIX-0000i-of-0000n.gguf.
struct split_name {
    std::string prefix;
    std::uint64_t part = 0;
    std::uint64_t count = 0;
};

std::optional<split_name> parse_split_name(const std::string& file_name) {
    static const std::regex pattern(R"((.*)-([0-9]{5,9})-of-([0-9]{5,9})\.gguf)");
    std::smatch match;
    if (!std::regex_match(file_name, match, pattern)) return std::nullopt;
    return split_name{match[1].str(), std::stoull(match[2].str()), std::stoull(match[3].str())};
}

std::string split_file_name(const std::string& prefix, std::uint64_t part, std::uint64_t count) {
    char numbers[48];
    std::snprintf(numbers, sizeof numbers, "-%05llu-of-%05llu.gguf", static_cast<unsigned long long>(part),
                  static_cast<unsigned long long>(count));
    return prefix + numbers;
}

bool is_split_part(const tensor_file& file) {
    return file.gguf() && file.gguf()->split && file.gguf()->split->count > 1;
}

}  // namespace

model_config read_model_config(const fs::path& config_json) {
    const json root = read_json_file(config_json);
    if (!root.is_object()) throw format_error(config_json.string(), "", "config is not a JSON object");
    model_config config;
    // The first of `keys` present decides (GPT-2 spells them n_embd, n_head, ...).
    auto field = [&](std::initializer_list<const char*> keys, std::optional<std::uint64_t>& slot) {
        for (const char* key : keys) {
            const auto it = root.find(key);
            if (it == root.end() || it->is_null()) continue;
            if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0)
                throw format_error(config_json.string(), "", std::string("'") + key + "' is not a positive integer");
            slot = it->get<std::uint64_t>();
            return;
        }
    };
    field({"hidden_size", "n_embd"}, config.hidden_size);
    field({"num_hidden_layers", "n_layer"}, config.num_layers);
    field({"intermediate_size", "n_inner"}, config.intermediate_size);
    field({"vocab_size"}, config.vocab_size);
    field({"num_attention_heads", "n_head"}, config.num_attention_heads);
    field({"num_key_value_heads"}, config.num_key_value_heads);
    field({"head_dim"}, config.head_dim);
    if (const auto tied = root.find("tie_word_embeddings"); tied != root.end() && !tied->is_null()) {
        if (!tied->is_boolean())
            throw format_error(config_json.string(), "", "'tie_word_embeddings' is not true or false");
        config.tie_word_embeddings = tied->get<bool>();
    }
    return config;
}

checkpoint::checkpoint(const fs::path& path, type_rules rules) : rules_(std::move(rules)) {
    std::error_code error;
    const auto status = fs::status(path, error);
    if (error || !fs::exists(status))
        throw std::system_error(error ? error : std::make_error_code(std::errc::no_such_file_or_directory),
                                path.string() + ": cannot open");

    fs::path directory;
    if (fs::is_directory(status)) {
        directory = path;
        if (fs::exists(path / index_name)) {
            open_index(path / index_name);
        } else {
            std::vector<fs::path> weights;
            for (const auto& item : fs::directory_iterator(path))
                if (item.path().extension() == ".safetensors" && item.is_regular_file()) weights.push_back(item.path());
            if (weights.empty())
                throw format_error(path.string(), "", "directory holds no .safetensors files and no " +
                                                          std::string(index_name));
            std::sort(weights.begin(), weights.end());
            for (const auto& file : weights) add_file(file);
        }
    } else {
        directory = path.parent_path();
        if (path.filename().string().ends_with(".index.json")) {
            open_index(path);
        } else {
            add_file(path);
            if (is_split_part(files_.front())) open_split_gguf(path);
        }
    }

    const fs::path config_json = (directory.empty() ? fs::path(".") : directory) / "config.json";
    if (fs::exists(config_json)) {
        config_ = read_model_config(config_json);
        config_path_ = config_json;
    } else if (const auto& gguf = files_.front().gguf()) {
        config_.hidden_size = gguf->embedding_length;
        config_.num_layers = gguf->block_count;
        config_.intermediate_size = gguf->feed_forward_length;
        config_.num_attention_heads = gguf->head_count;
        config_.num_key_value_heads = gguf->head_count_kv;
        config_path_ = files_.front().path();
    } else if (const auto& llama2c = files_.front().llama2c()) {
        config_.hidden_size = llama2c->dim;
        config_.num_layers = llama2c->layers;
        config_.intermediate_size = llama2c->hidden_dim;
        config_.vocab_size = llama2c->vocab;
        config_.num_attention_heads = llama2c->heads;
        config_.num_key_value_heads = llama2c->kv_heads;
        config_path_ = files_.front().path();
    }

    std::map<std::string, std::size_t> seen;  // name -> file, to refuse a tensor stored twice
    for (const auto& entry : tensors_) {
        const auto& name = info(entry).name;
        const auto [at, fresh] = seen.emplace(name, entry.file);
        if (!fresh)
            throw format_error(files_[entry.file].path().string(), name,
                               "also stored in " + files_[at->second].path().string());
    }
}

void checkpoint::add_file(const fs::path& file) {
    files_.emplace_back(file);
    const std::size_t file_index = files_.size() - 1;
    const auto& tensors = files_.back().tensors();
    for (std::size_t i = 0; i < tensors.size(); ++i) tensors_.push_back({file_index, i, rules_.classify(tensors[i].name)});
}

void checkpoint::open_index(const fs::path& index_json) {
    const std::string index_file = index_json.string();
    const json root = read_json_file(index_json);
    if (!root.is_object() || !root.contains("weight_map") || !root["weight_map"].is_object())
        throw format_error(index_file, "", "has no 'weight_map' object");

    std::map<std::string, std::set<std::string>> wanted;  // shard -> tensors the index puts there
    for (const auto& [tensor, shard] : root["weight_map"].items()) {
        if (!shard.is_string()) throw format_error(index_file, tensor, "weight_map value is not a file name");
        wanted[shard.get<std::string>()].insert(tensor);
    }
    if (wanted.empty()) throw format_error(index_file, "", "weight_map is empty");

    const fs::path directory = index_json.parent_path();
    for (const auto& [shard, names] : wanted) {
        const fs::path shard_path = directory / shard;
        if (!fs::exists(shard_path))
            throw format_error(index_file, *names.begin(), "its shard '" + shard + "' does not exist");
        const std::size_t first_entry = tensors_.size();
        add_file(shard_path);
        std::set<std::string> present;
        for (std::size_t i = first_entry; i < tensors_.size(); ++i) present.insert(info(tensors_[i]).name);
        for (const auto& name : names)
            if (!present.contains(name))
                throw format_error(index_file, name, "missing from its shard " + shard_path.string());
        const auto unlisted = static_cast<std::size_t>(
            std::count_if(present.begin(), present.end(), [&listed = names](const auto& name) {
                return !listed.contains(name);  // init-capture: clang < 16 cannot capture a structured binding
            }));
        if (unlisted > 0)
            notes_.push_back(shard_path.string() + ": " + std::to_string(unlisted) +
                             " tensor(s) not listed in the index weight_map; read anyway");
    }
}

// Every part in order, so the first (which carries the key-values) gives the
// config. Each must agree with the given part's split keys and the first
// part's model; a tensor stored in two parts is refused like any other.
void checkpoint::open_split_gguf(const fs::path& given_part) {
    const gguf_split split = *files_.front().gguf()->split;
    const std::string given = given_part.string();
    const std::string of_count = " of " + std::to_string(split.count);
    const auto name = parse_split_name(given_part.filename().string());
    if (!name)
        throw format_error(given, "", "is part " + std::to_string(split.number + 1) + of_count +
                                          " of a split GGUF (split.no, split.count), but its name does not end in "
                                          "-NNNNN-of-NNNNN.gguf, so the other parts cannot be found");
    if (name->part != split.number + 1 || name->count != split.count)
        throw format_error(given, "", "its name says part " + std::to_string(name->part) + " of " +
                                          std::to_string(name->count) + " but its keys say part " +
                                          std::to_string(split.number + 1) + of_count + " (split.no, split.count)");
    files_.clear();
    tensors_.clear();
    for (std::uint64_t part = 1; part <= split.count; ++part) {
        const fs::path path = given_part.parent_path() / split_file_name(name->prefix, part, split.count);
        const std::string part_name = path.string();
        const std::string expected = "part " + std::to_string(part) + of_count;
        if (!fs::exists(path))
            throw format_error(part_name, "", expected + " of the split GGUF " + given + " does not exist");
        add_file(path);
        const auto& first = *files_.front().gguf();
        const auto& model = files_.back().gguf();
        if (!model || !model->split)
            throw format_error(part_name, "", "has no split keys (split.count), but it is named as " + expected);
        auto disagree = [&](const std::string& what, const std::string& value, const std::string& wanted,
                            const std::string& of) {
            throw format_error(part_name, "", what + " " + value + " disagrees with the " + wanted + " of " + of);
        };
        const std::string first_name = files_.front().path().string();
        if (model->split->count != split.count)
            disagree("split.count", std::to_string(model->split->count), std::to_string(split.count), given);
        if (model->split->number != part - 1)
            throw format_error(part_name, "", "split.no " + std::to_string(model->split->number) + " says part " +
                                                  std::to_string(model->split->number + 1) + ", but it is named as " +
                                                  expected);
        if (model->split->tensors != split.tensors)
            disagree("split.tensors.count", std::to_string(model->split->tensors), std::to_string(split.tensors),
                     given);
        if (!model->architecture.empty() && model->architecture != first.architecture)
            disagree("architecture", "'" + model->architecture + "'", "'" + first.architecture + "'", first_name);
        if (model->embedding_length && first.embedding_length && model->embedding_length != first.embedding_length)
            disagree(first.architecture + ".embedding_length", std::to_string(*model->embedding_length),
                     std::to_string(*first.embedding_length), first_name);
    }
    if (tensors_.size() != split.tensors)
        throw format_error(files_.front().path().string(), "",
                           "the " + std::to_string(split.count) + " parts of the split GGUF hold " +
                               std::to_string(tensors_.size()) + " tensors together, but split.tensors.count is " +
                               std::to_string(split.tensors));
}

std::uint64_t checkpoint::hidden_size(std::optional<std::uint64_t> requested, std::vector<std::string>& notes) const {
    std::map<std::uint64_t, std::size_t> axis_counts;  // of the classified, non-empty matrices
    std::size_t classified = 0;
    for (const auto& entry : tensors_) {
        if (!entry.kind) continue;
        ++classified;
        const auto& tensor = info(entry);
        if (tensor.shape.size() != 2 || tensor.elements == 0) continue;
        ++axis_counts[tensor.shape[0]];
        ++axis_counts[tensor.shape[1]];
    }
    const std::string model = files_.front().path().string();
    if (classified == 0)
        throw format_error(model, "", "no tensor is named like a weight matrix of a known family, so there is "
                                      "nothing to analyse (--types FILE adds naming rules)");
    if (axis_counts.empty())
        throw format_error(model, "", "none of the " + std::to_string(classified) +
                                          " weight tensors is a non-empty matrix, so the hidden size is unknown");
    // A size from the user or the config must be an axis of some matrix: it
    // sizes d×d buffers, and a typo should not fail as an allocation.
    auto check = [&](std::uint64_t d, const std::string& where, const std::string& source) {
        if (axis_counts.contains(d)) return d;
        std::string axes;
        for (const auto& [length, count] : axis_counts) {
            if (axes.size() > 60) {
                axes += ", ...";
                break;
            }
            axes += (axes.empty() ? "" : ", ") + std::to_string(length);
        }
        throw format_error(where, "", source + " " + std::to_string(d) +
                                          " is no axis length of the weight matrices (their axes: " + axes + ")");
    };
    if (requested) return check(*requested, model, "--hidden-size");
    if (config_.hidden_size) return check(*config_.hidden_size, config_path_.string(), "hidden size");
    const auto best = std::max_element(axis_counts.begin(), axis_counts.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    notes.push_back("hidden size " + std::to_string(best->first) +
                    " inferred as the most common axis length of the weight matrices (no hidden_size in a "
                    "config.json; --hidden-size overrides)");
    return best->first;
}

// Tied embeddings count once: the output head goes when config.json ties it to
// the embedding or it holds the embedding's bytes.
void checkpoint::drop_tied_head(std::vector<weight_matrix>& chosen, const std::set<weight_type>& skipped,
                                std::vector<std::string>& notes) const {
    auto of_type = [&](weight_type type) {
        std::vector<std::vector<weight_matrix>::iterator> found;
        for (auto it = chosen.begin(); it != chosen.end(); ++it)
            if (it->kind.type == type) found.push_back(it);
        return found;
    };
    const auto embeds = of_type(weight_type::embed);
    const auto heads = of_type(weight_type::head);
    if (embeds.size() != 1 || heads.size() > 1) return;
    if (heads.empty()) {
        if (skipped.contains(weight_type::head)) return;  // there is a head: it was left out, with its own note
        notes.push_back("no output head tensor besides '" + embeds[0]->name +
                        "': tied embeddings, counted once as embed");
        return;
    }
    if (config_.tie_word_embeddings)
        notes.push_back(config_path_.string() + " sets tie_word_embeddings: '" + heads[0]->name +
                        "' left out, the embedding counts once as embed");
    else if (same_bytes(*embeds[0], *heads[0]))
        notes.push_back("'" + heads[0]->name + "' holds the same bytes as '" + embeds[0]->name +
                        "' (tied embeddings): left out, the embedding counts once as embed");
    else
        return;
    chosen.erase(heads[0]);
}

std::vector<weight_matrix> checkpoint::matrices(std::uint64_t d, std::vector<std::string>& notes) const {
    std::vector<weight_matrix> chosen;
    std::set<weight_type> skipped;  // types with a tensor left out: never reported as tied or absent
    std::map<std::pair<std::size_t, dtype>, std::vector<std::string>> undecodable;  // (file, dtype) -> tensors
    for (const auto& entry : tensors_) {
        if (!entry.kind) continue;
        const auto& tensor = info(entry);
        const auto& file = files_[entry.file];
        auto skip = [&](const std::string& why) {
            notes.push_back(file.path().string() + ": tensor '" + tensor.name + "': " + why + "; left out");
            skipped.insert(entry.kind->type);
        };
        if (!is_floating_decodable(tensor.type)) {
            undecodable[{entry.file, tensor.type}].push_back(tensor.name);
            skipped.insert(entry.kind->type);
            continue;
        }
        if (tensor.shape.size() != 2) {
            skip("shape " + shape_text(tensor.shape) + " is not a matrix");
            continue;
        }
        if (tensor.elements == 0) {
            skip("shape " + shape_text(tensor.shape) + " holds no values");
            continue;
        }
        const std::uint64_t rows = tensor.shape[0];
        const std::uint64_t cols = tensor.shape[1];
        // Q8_GROUPS: the scales follow the int8 values, one byte each.
        weight_matrix whole{tensor.name, *entry.kind, tensor.type, rows, cols, true, {}, file.shared_source(),
                            file.file_offset(tensor), {}, tensor.bytes(), tensor.scale_group,
                            tensor.scale_group != 0 ? tensor.elements : 0};
        if (entry.kind->fused != fusion::none) {
            for (auto& part : split_fused(whole, config_, d, file.path().string())) chosen.push_back(std::move(part));
            continue;
        }
        if (cols != d && rows != d) {
            skip("shape " + shape_text(tensor.shape) + " has no axis of the hidden size " + std::to_string(d));
            continue;
        }
        whole.vectors_are_rows = vectors_are_rows(entry.kind->layout, rows, cols, d);
        chosen.push_back(std::move(whole));
    }
    // One note per file and dtype, with its count: a GGUF file holds hundreds of tensors of one type.
    for (const auto& [where, names] : undecodable) {
        std::string listed;
        for (std::size_t i = 0; i < std::min<std::size_t>(names.size(), 3); ++i)
            listed += (i ? ", '" : "'") + names[i] + "'";
        if (names.size() > 3) listed += " and " + std::to_string(names.size() - 3) + " more";
        notes.push_back(files_[where.first].path().string() + ": dtype " + std::string(dtype_name(where.second)) +
                        " is not analysed: " + std::to_string(names.size()) + " tensor" +
                        (names.size() == 1 ? "" : "s") + " left out (" + listed + ")");
    }
    drop_tied_head(chosen, skipped, notes);
    std::stable_sort(chosen.begin(), chosen.end(), [](const weight_matrix& a, const weight_matrix& b) {
        if (a.kind.type != b.kind.type) return a.kind.type < b.kind.type;
        if (a.kind.layer != b.kind.layer) return a.kind.layer < b.kind.layer;
        return a.name < b.name;
    });
    return chosen;
}

}  // namespace adaptk
