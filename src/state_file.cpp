#include "adaptk/state_file.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>

#include "adaptk/error.hpp"
#include "adaptk/partition.hpp"
#include "adaptk/safetensors_writer.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view format_tag = "adaptk-state";
// Largest hidden size a state may declare: its packed Gram (d²/2 doubles) fits 2⁵¹ bytes.
constexpr std::uint64_t max_state_dim = 1u << 24;
constexpr std::size_t max_state_parts = 1u << 20;

// FNV-1a over 64-bit little-endian words, a trailing partial word byte by
// byte: a corruption check, not a cryptographic one. Callers hash the same
// segments in the same order (data comes in whole doubles).
class word_hash {
public:
    void add(std::span<const std::byte> bytes) {
        std::size_t i = 0;
        for (; i + 8 <= bytes.size(); i += 8) {
            std::uint64_t word;
            std::memcpy(&word, bytes.data() + i, 8);
            mix(word);
        }
        for (; i < bytes.size(); ++i) mix(static_cast<std::uint64_t>(bytes[i]));
    }
    void add(std::string_view text) { add(std::as_bytes(std::span(text.data(), text.size()))); }
    std::uint64_t value() const noexcept { return hash_; }

private:
    void mix(std::uint64_t word) noexcept { hash_ = (hash_ ^ word) * 0x100000001b3ull; }
    std::uint64_t hash_ = 0xcbf29ce484222325ull;
};

std::string hex16(std::uint64_t value) {
    std::string text(16, '0');
    for (std::size_t i = 16; i-- > 0; value >>= 4) text[i] = "0123456789abcdef"[value & 15];
    return text;
}

std::string matrices_text(const std::vector<weight_matrix>& matrices) {
    json list = json::array();
    for (const auto& m : matrices)
        list.push_back({{"name", m.name},
                        {"type", type_name(m.kind.type)},
                        {"layer", m.kind.layer ? json(*m.kind.layer) : json(nullptr)},
                        {"dtype", dtype_name(m.type)},
                        {"rows", m.rows},
                        {"cols", m.cols},
                        {"vectors", m.vectors_are_rows ? "rows" : "cols"}});
    return list.dump();
}

std::string fingerprint_of(std::uint64_t d, bool center, const std::string& matrices) {
    word_hash hash;
    hash.add("dim=" + std::to_string(d) + ";center=" + (center ? "true" : "false") + ";");
    hash.add(matrices);
    return hex16(hash.value());
}

// Types in report order as the matrix list groups them, and what part `part`
// (1-based) of `parts` streams of each: its matrices and their vectors.
struct part_layout {
    std::vector<weight_type> types;
    std::vector<std::uint64_t> vectors;
    std::vector<std::vector<std::size_t>> reads;  ///< per type, indices into the matrix list
};

part_layout layout_of(const std::vector<weight_matrix>& matrices, std::size_t part, std::size_t parts) {
    const auto part_of = split_by_bytes(matrices, parts);
    part_layout layout;
    for (std::size_t m = 0; m < matrices.size(); ++m) {
        if (m == 0 || matrices[m].kind.type != matrices[m - 1].kind.type) {
            layout.types.push_back(matrices[m].kind.type);
            layout.vectors.push_back(0);
            layout.reads.emplace_back();
        }
        if (part_of[m] + 1 != part) continue;
        layout.vectors.back() += matrices[m].vector_count();
        layout.reads.back().push_back(m);
    }
    return layout;
}

std::string vectors_text(const part_layout& layout) {
    json counts = json::object();
    for (std::size_t t = 0; t < layout.types.size(); ++t) counts[std::string(type_name(layout.types[t]))] = layout.vectors[t];
    return counts.dump();
}

std::string gram_name(weight_type t) { return std::string(type_name(t)) + ".gram"; }
std::string sum_name(weight_type t) { return std::string(type_name(t)) + ".sum"; }
std::string rounding_name(weight_type t) { return std::string(type_name(t)) + ".rounding"; }
std::string eigenvalues_name(const weight_matrix& m) { return m.name + ".eigenvalues"; }
constexpr std::string_view checksum_name = "checksum";

// The metadata keys in the order the checksum covers their values; version 1
// has no per_matrix.
constexpr std::array<std::string_view, 11> metadata_keys{"format", "format_version", "tool",     "model",
                                                         "dim",    "center",         "per_matrix", "part",
                                                         "matrices", "vectors",      "fingerprint"};
std::vector<std::string_view> metadata_keys_of(int version) {
    std::vector<std::string_view> keys(metadata_keys.begin(), metadata_keys.end());
    if (version == 1) std::erase(keys, "per_matrix");
    return keys;
}

std::string per_matrix_text(const analysis_options& options) {
    return options.per_matrix ? std::string(eig_precision_name(options.matrix_precision)) : "no";
}

template <class T>
std::span<const std::byte> bytes_of(std::span<const T> values) {
    return std::as_bytes(values);
}

// ---- reading ----

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

class metadata_reader {
public:
    metadata_reader(const safetensors_header& header, const std::string& file) : header_(header), file_(file) {}
    const std::string& operator()(std::string_view key) const {
        for (const auto& [name, value] : header_.metadata)
            if (name == key) return value;
        throw format_error(file_, "", "not an adaptk-stream state file: no '" + std::string(key) + "' metadata");
    }
    [[noreturn]] void fail(std::string_view key, const std::string& defect) const {
        throw format_error(file_, "", "metadata '" + std::string(key) + "': " + defect);
    }

private:
    const safetensors_header& header_;
    const std::string& file_;
};

// One entry of the 'matrices' list, checked against the hidden size.
weight_matrix parse_matrix(const json& entry, std::uint64_t d, const metadata_reader& meta) {
    auto bad = [&](const std::string& defect) { meta.fail("matrices", defect); };
    if (!entry.is_object()) bad("an entry is not an object");
    auto field = [&](const char* key) -> const json& {
        const auto found = entry.find(key);
        if (found == entry.end()) bad(std::string("an entry has no '") + key + "'");
        return *found;
    };
    auto text = [&](const char* key) {
        const json& value = field(key);
        if (!value.is_string()) bad(std::string("'") + key + "' is not a string");
        return value.get<std::string>();
    };
    auto extent = [&](const char* key) {
        const json& value = field(key);
        if (!value.is_number_unsigned() || value.get<std::uint64_t>() == 0 || value.get<std::uint64_t>() > (1ull << 40))
            bad(std::string("'") + key + "' is not an extent in 1..2^40");
        return value.get<std::uint64_t>();
    };
    weight_matrix m;
    m.name = text("name");
    const auto type = parse_type(text("type"));
    if (!type) bad("'" + m.name + "' has an unknown type");
    m.kind = {*type, group_of(*type), std::nullopt};
    const json& layer = field("layer");
    if (layer.is_number_integer() && layer.get<std::int64_t>() >= 0 && layer.get<std::int64_t>() < (1 << 30))
        m.kind.layer = layer.get<int>();
    else if (!layer.is_null())
        bad("'" + m.name + "' has a layer that is neither null nor an integer in 0..2^30");
    const auto type_code = parse_dtype(text("dtype"));
    if (!type_code || !is_floating_decodable(*type_code)) bad("'" + m.name + "' has a dtype the analysis does not read");
    m.type = *type_code;
    m.rows = extent("rows");
    m.cols = extent("cols");
    const std::string vectors = text("vectors");
    if (vectors != "rows" && vectors != "cols") bad("'" + m.name + "': 'vectors' is not 'rows' or 'cols'");
    m.vectors_are_rows = vectors == "rows";
    if ((m.vectors_are_rows ? m.cols : m.rows) != d)
        bad("'" + m.name + "' has no hidden axis of length " + std::to_string(d));
    return m;
}

std::vector<weight_matrix> parse_matrices(const std::string& text, std::uint64_t d, const metadata_reader& meta) {
    const json list = json::parse(text, nullptr, false);
    if (list.is_discarded() || !list.is_array() || list.empty()) meta.fail("matrices", "not a non-empty JSON array");
    std::vector<weight_matrix> matrices;
    std::set<std::string> names;
    std::uint64_t total_bytes = 0;
    for (const json& entry : list) {
        matrices.push_back(parse_matrix(entry, d, meta));
        const weight_matrix& m = matrices.back();
        if (!names.insert(m.name).second) meta.fail("matrices", "'" + m.name + "' is listed twice");
        // The byte total must fit 64 bits for split_by_bytes and the progress meter.
        const auto bytes = detail::checked_mul(m.rows, m.cols);
        const auto stored = bytes ? detail::checked_mul(*bytes, dtype_bytes(m.type)) : std::nullopt;
        const auto sum = stored ? detail::checked_add(total_bytes, *stored) : std::nullopt;
        if (!sum) meta.fail("matrices", "the byte total overflows 64 bits");
        total_bytes = *sum;
        if (matrices.size() > 1) {
            const weight_type before = matrices[matrices.size() - 2].kind.type;
            if (static_cast<int>(m.kind.type) < static_cast<int>(before))
                meta.fail("matrices", "'" + m.name + "' is out of analysis order (types grouped in report order)");
        }
    }
    return matrices;
}

void check_tensor(const tensor_info& tensor, dtype type, std::uint64_t elements, const std::string& file) {
    if (tensor.type != type || tensor.shape.size() != 1 || tensor.shape[0] != elements)
        throw format_error(file, tensor.name,
                           "expected " + std::string(dtype_name(type)) + " [" + std::to_string(elements) + "], found " +
                               std::string(dtype_name(tensor.type)) + " " + dims_list(tensor.shape));
}

// A matrix's own spectrum: d values, or N when its N < d vectors were
// decomposed through XᵀX (own_eigenvalue_count: which one depends on the
// block size, not recorded); finite, ≥ 0 and descending, as eigenvalues_descending gives them.
void check_eigenvalues(std::span<const std::byte> file, const safetensors_header& header, const tensor_info& tensor,
                       const weight_matrix& matrix, std::uint64_t d, const std::string& file_name) {
    const std::uint64_t vectors = matrix.vector_count();
    const std::uint64_t count = tensor.shape.size() == 1 ? tensor.shape[0] : 0;
    check_tensor(tensor, dtype::f64, count == vectors && vectors < d ? vectors : d, file_name);
    double before = std::numeric_limits<double>::infinity();
    for (std::uint64_t i = 0; i < count; ++i) {
        double value;
        std::memcpy(&value, file.data() + header.data_offset + tensor.begin + 8 * i, sizeof value);
        if (!std::isfinite(value) || value < 0 || value > before)
            throw format_error(file_name, tensor.name,
                               "eigenvalue " + std::to_string(i + 1) + " (" + std::to_string(value) +
                                   ") is not finite, non-negative and at most the one before");
        before = value;
    }
}

}  // namespace

void write_state(const std::filesystem::path& path, const state_origin& origin, const std::vector<weight_matrix>& matrices,
                 std::uint64_t d, const analysis_options& options, std::size_t part, std::size_t parts) {
    if (parts == 0 || part == 0 || part > parts || parts > max_state_parts)
        throw std::invalid_argument("write_state: part " + std::to_string(part) + "/" + std::to_string(parts) +
                                    " is not in 1..N with N <= " + std::to_string(max_state_parts));
    const auto part_of = split_by_bytes(matrices, parts);
    const part_layout layout = layout_of(matrices, part, parts);
    const std::string matrices_json = matrices_text(matrices);
    const std::string values[] = {std::string(format_tag),
                                  std::to_string(state_format_version),
                                  origin.tool,
                                  origin.model,
                                  std::to_string(d),
                                  options.center ? "true" : "false",
                                  per_matrix_text(options),
                                  std::to_string(part) + "/" + std::to_string(parts),
                                  matrices_json,
                                  vectors_text(layout),
                                  fingerprint_of(d, options.center, matrices_json)};
    safetensors_writer out(path);
    word_hash hash;
    for (std::size_t i = 0; i < metadata_keys.size(); ++i) {
        out.metadata(std::string(metadata_keys[i]), values[i]);
        hash.add(values[i]);
    }
    for (std::size_t t = 0; t < layout.types.size(); ++t) {
        if (layout.vectors[t] == 0) continue;
        if (options.per_matrix)
            for (const std::size_t m : layout.reads[t])
                out.declare(eigenvalues_name(matrices[m]), dtype::f64, {own_eigenvalue_count(matrices[m], d, options)});
        out.declare(gram_name(layout.types[t]), dtype::f64, {packed_upper_size(d)});
        if (options.center) out.declare(sum_name(layout.types[t]), dtype::f64, {d});
        out.declare(rounding_name(layout.types[t]), dtype::u64, {2});
    }
    out.declare(std::string(checksum_name), dtype::u64, {1});

    analysis_options share = options;
    share.reads = [&](std::size_t m) { return part_of[m] + 1 == part; };
    auto put = [&](std::span<const std::byte> bytes) {
        out.write(bytes);
        hash.add(bytes);
    };
    auto put_gram = [&](std::size_t t, gram_accumulator& gram) {
        if (layout.vectors[t] == 0) return;
        const gram_state state = gram.state();
        if (state.count != layout.vectors[t]) throw std::logic_error("write_state: the part's vector count disagrees");
        put(bytes_of(std::span<const double>(state.upper)));
        if (options.center) put(bytes_of(std::span<const double>(state.sum.memptr(), state.sum.n_elem)));
        const std::uint64_t rounding[2] = {state.longest_float_run, state.flushes};
        put(bytes_of(std::span<const std::uint64_t>(rounding)));
    };
    // A type's matrices' eigenvalues arrive before its Gram, as declared.
    auto put_eigenvalues = [&](std::size_t, const arma::vec& values) {
        put(bytes_of(std::span<const double>(values.memptr(), values.n_elem)));
    };
    accumulate_grams(matrices, d, share, put_gram, put_eigenvalues);
    const std::uint64_t checksum = hash.value();
    out.write(std::as_bytes(std::span(&checksum, 1)));
    out.finish();
}

namespace {
std::string per_matrix_label(const std::optional<eig_precision>& precision) {
    return precision ? "solved in " + std::string(eig_precision_name(*precision)) : std::string("absent");
}
}  // namespace

state_part parse_state(std::span<const std::byte> file, const safetensors_header& header, const std::string& file_name,
                       const std::function<void(std::span<const std::byte>)>& hashed) {
    const metadata_reader meta(header, file_name);
    if (meta("format") != format_tag)
        throw format_error(file_name, "", "not an adaptk-stream state file (format '" + meta("format") + "')");
    const auto version = parse_unsigned(meta("format_version"));
    if (!version || *version < oldest_state_format_version || *version > state_format_version)
        throw format_error(file_name, "", "state format version '" + meta("format_version") +
                                              "' is not one this tool reads (" + std::to_string(oldest_state_format_version) +
                                              ".." + std::to_string(state_format_version) + ")");
    state_part state;
    state.version = static_cast<int>(*version);
    state.tool = meta("tool");
    state.model = meta("model");
    const auto dim = parse_unsigned(meta("dim"));
    if (!dim || *dim == 0 || *dim > max_state_dim)
        meta.fail("dim", "'" + meta("dim") + "' is not a hidden size in 1.." + std::to_string(max_state_dim));
    state.dim = *dim;
    if (meta("center") != "true" && meta("center") != "false") meta.fail("center", "'" + meta("center") + "' is not true or false");
    state.center = meta("center") == "true";
    if (state.version >= 2) {
        const std::string& per_matrix = meta("per_matrix");
        if (per_matrix == "single") state.per_matrix = eig_precision::float32;
        else if (per_matrix == "double") state.per_matrix = eig_precision::float64;
        else if (per_matrix != "no") meta.fail("per_matrix", "'" + per_matrix + "' is not no, single or double");
    }
    const std::string& part = meta("part");
    const auto slash = part.find('/');
    const auto index = parse_unsigned(std::string_view(part).substr(0, slash));
    const auto count = slash == std::string::npos ? std::nullopt : parse_unsigned(std::string_view(part).substr(slash + 1));
    if (!index || !count || *index == 0 || *index > *count || *count > max_state_parts)
        meta.fail("part", "'" + part + "' is not I/N with 1 <= I <= N <= " + std::to_string(max_state_parts));
    state.part = *index;
    state.parts = *count;
    state.matrices = parse_matrices(meta("matrices"), state.dim, meta);
    state.fingerprint = fingerprint_of(state.dim, state.center, meta("matrices"));
    if (meta("fingerprint") != state.fingerprint) meta.fail("fingerprint", "does not match the file's matrices (corrupted)");
    const part_layout layout = layout_of(state.matrices, state.part, state.parts);
    if (meta("vectors") != vectors_text(layout))
        meta.fail("vectors", "does not match part " + part + " of its matrices (corrupted or written by another tool)");
    state.vectors = layout.vectors;

    // Exactly the tensors the part must hold, the checksum last.
    auto find = [&](const std::string& name) -> std::size_t {
        for (std::size_t i = 0; i < header.tensors.size(); ++i)
            if (header.tensors[i].name == name) return i;
        throw format_error(file_name, name, "missing from the state file");
    };
    std::size_t expected = 1;
    if (state.per_matrix) state.eigenvalues.assign(state.matrices.size(), state_part::no_tensor);
    for (std::size_t t = 0; t < layout.types.size(); ++t) {
        state.grams.push_back(state_part::no_tensor);
        state.sums.push_back(state_part::no_tensor);
        state.longest_float_runs.push_back(0);
        state.flushes.push_back(0);
        if (layout.vectors[t] == 0) continue;
        if (state.per_matrix)
            for (const std::size_t m : layout.reads[t]) {
                state.eigenvalues[m] = find(eigenvalues_name(state.matrices[m]));
                check_eigenvalues(file, header, header.tensors[state.eigenvalues[m]], state.matrices[m], state.dim, file_name);
                ++expected;
            }
        state.grams.back() = find(gram_name(layout.types[t]));
        check_tensor(header.tensors[state.grams.back()], dtype::f64, packed_upper_size(state.dim), file_name);
        ++expected;
        if (state.center) {
            state.sums.back() = find(sum_name(layout.types[t]));
            check_tensor(header.tensors[state.sums.back()], dtype::f64, state.dim, file_name);
            ++expected;
        }
        const tensor_info& rounding = header.tensors[find(rounding_name(layout.types[t]))];
        check_tensor(rounding, dtype::u64, 2, file_name);
        ++expected;
        std::uint64_t values[2];
        std::memcpy(values, file.data() + header.data_offset + rounding.begin, sizeof values);
        // A float32 run spans at most the part's vectors, and every flush adds at least one.
        if (values[0] > layout.vectors[t] || values[1] > layout.vectors[t])
            throw format_error(file_name, rounding.name,
                               "longest float run " + std::to_string(values[0]) + " or flushes " + std::to_string(values[1]) +
                                   " exceed the part's " + std::to_string(layout.vectors[t]) + " vectors");
        state.longest_float_runs.back() = values[0];
        state.flushes.back() = values[1];
    }
    const tensor_info& checksum = header.tensors[find(std::string(checksum_name))];
    check_tensor(checksum, dtype::u64, 1, file_name);
    if (header.tensors.size() != expected)
        throw format_error(file_name, "", std::to_string(header.tensors.size()) + " tensors where part " + part + " holds " +
                                              std::to_string(expected));
    if (checksum.end != header.data_bytes)
        throw format_error(file_name, checksum.name, "is not at the end of the data section");

    word_hash hash;
    for (const auto key : metadata_keys_of(state.version)) hash.add(meta(key));
    // Pieces of whole words hash as the section would at once.
    static_assert(state_hash_piece % 8 == 0);
    const auto data = file.subspan(header.data_offset, checksum.begin);
    for (std::size_t at = 0; at < data.size(); at += state_hash_piece) {
        const auto piece = data.subspan(at, std::min(state_hash_piece, data.size() - at));
        hash.add(piece);
        if (hashed) hashed(piece);
    }
    std::uint64_t stored = 0;
    std::memcpy(&stored, file.data() + header.data_offset + checksum.begin, sizeof stored);
    if (stored != hash.value())
        throw format_error(file_name, "", "checksum " + hex16(hash.value()) + " does not match the stored " + hex16(stored) +
                                              ": the file is corrupted");
    return state;
}

namespace {

// A validated state tensor's float64 values, copied out of the mapping, whose
// pages the copy read are dropped (see state_set's constructor).
std::vector<double> read_doubles(const mapped_file& file, const safetensors_header& header, std::size_t tensor) {
    const tensor_info& info = header.tensors[tensor];
    const std::span<const std::byte> bytes(file.data() + header.data_offset + info.begin, info.bytes());
    std::vector<double> values(bytes.size() / sizeof(double));
    std::memcpy(values.data(), bytes.data(), bytes.size());
    file.release_pages(bytes);
    return values;
}

}  // namespace

state_set::state_set(const std::vector<std::filesystem::path>& files) {
    if (files.empty()) throw std::invalid_argument("state_set: no state files");
    files_.reserve(files.size());
    for (const auto& path : files) {
        auto mapping = std::make_shared<const mapped_file>(path);
        const std::span<const std::byte> image(mapping->data(), mapping->size());
        safetensors_header header = parse_safetensors(image, path.string());
        // Validation reads every page: each checksum piece's are dropped once
        // hashed, the rest here and after every read below, so the parts do
        // not stay resident beside the merge (1.1B shape, 2 parts: 256.8 MiB
        // peak against a plan of 110.6 while they did).
        parts_.push_back(parse_state(image, header, path.string(),
                                     [&](std::span<const std::byte> piece) { mapping->release_pages(piece); }));
        mapping->release_pages();
        files_.push_back({std::move(mapping), std::move(header)});
    }
    const state_part& first = parts_.front();
    const std::string first_name = files.front().string();
    std::vector<std::size_t> given(first.parts, files.size());  // part -> index of its file
    for (std::size_t i = 0; i < parts_.size(); ++i) {
        const state_part& p = parts_[i];
        const std::string name = files[i].string();
        if (p.dim != first.dim)
            throw format_error(name, "", "hidden size " + std::to_string(p.dim) + " differs from " + first_name + "'s " +
                                             std::to_string(first.dim));
        if (p.center != first.center)
            throw format_error(name, "", std::string("accumulated ") + (p.center ? "with" : "without") +
                                             " --center, unlike " + first_name);
        if (p.per_matrix != first.per_matrix)
            throw format_error(name, "", "per-matrix rows " + per_matrix_label(p.per_matrix) + ", unlike " + first_name +
                                             "'s " + per_matrix_label(first.per_matrix));
        if (p.fingerprint != first.fingerprint)
            throw format_error(name, "", "model fingerprint " + p.fingerprint + " differs from " + first_name + "'s " +
                                             first.fingerprint + ": another model or other --types/--hidden-size");
        if (p.parts != first.parts)
            throw format_error(name, "", "part " + std::to_string(p.part) + "/" + std::to_string(p.parts) +
                                             " of a run split into " + std::to_string(first.parts) + " parts by " +
                                             first_name);
        if (given[p.part - 1] != files.size())
            throw format_error(name, "", "part " + std::to_string(p.part) + "/" + std::to_string(p.parts) +
                                             " is also given as " + files[given[p.part - 1]].string());
        given[p.part - 1] = i;
    }
    for (std::size_t part = 0; part < given.size(); ++part)
        if (given[part] == files.size())
            throw format_error(first_name, "", "part " + std::to_string(part + 1) + "/" + std::to_string(first.parts) +
                                                   " of this run is missing");
    paths_ = files;
    // Each matrix's eigenvalues are in the part that read it (parse_state checked each part holds exactly its own).
    if (first.per_matrix) {
        const auto part_of = split_by_bytes(first.matrices, first.parts);
        for (const std::size_t part : part_of) reader_.push_back(given[part]);
    }
}

void state_set::require_per_matrix(const std::string& needed_by) const {
    if (per_matrix()) return;
    const state_part& first = parts_.front();
    throw format_error(paths_.front().string(), "",
                       (first.version < 2 ? "state format version " + std::to_string(first.version) + " holds"
                                          : std::string("accumulated without --per-matrix: it holds")) +
                           " no per-matrix rows, which " + needed_by + " needs (accumulate the parts with --per-matrix)");
}

arma::vec state_set::eigenvalues(std::size_t matrix_index) const {
    const std::size_t i = reader_.at(matrix_index);
    const mapped_state& file = files_[i];
    return arma::vec(read_doubles(*file.mapping, file.header, parts_[i].eigenvalues.at(matrix_index)));
}

void state_set::check_weights(const std::vector<weight_matrix>& weights, const std::string& model) const {
    const std::vector<weight_matrix>& analysed = matrices();
    const std::string states = paths_.front().string();
    for (std::size_t m = 0; m < std::max(weights.size(), analysed.size()); ++m) {
        if (m == weights.size())
            throw format_error(model, analysed[m].name, "is not among its analysed matrices, but " + states + " has it");
        if (m == analysed.size())
            throw format_error(model, weights[m].name, "is not among " + states + "'s analysed matrices");
        const weight_matrix &w = weights[m], &a = analysed[m];
        std::string difference;
        if (w.name != a.name)
            difference = "stands where " + states + " has '" + a.name + "' (another model, or other --types)";
        else if (w.kind.type != a.kind.type || w.kind.layer != a.kind.layer)
            difference = "is classified otherwise than in " + states;
        else if (w.type != a.type || w.rows != a.rows || w.cols != a.cols || w.vectors_are_rows != a.vectors_are_rows)
            difference = std::string(dtype_name(w.type)) + " " + shape_string({w.rows, w.cols}) + " differs from " +
                         std::string(dtype_name(a.type)) + " " + shape_string({a.rows, a.cols}) + " in " + states;
        if (!difference.empty()) throw format_error(model, w.name, difference);
    }
}

void state_set::add_to(std::size_t type_index, gram_accumulator& gram) const {
    auto read = [](const mapped_state& file, std::size_t tensor) { return read_doubles(*file.mapping, file.header, tensor); };
    for (std::size_t i = 0; i < parts_.size(); ++i) {
        const state_part& part = parts_[i];
        if (part.grams.at(type_index) == state_part::no_tensor) continue;
        gram_state state;
        state.upper = read(files_[i], part.grams[type_index]);
        if (gram.tracks_sum() && part.sums[type_index] == state_part::no_tensor)
            throw std::logic_error("state_set: sums asked of states accumulated without --center");
        if (gram.tracks_sum()) state.sum = arma::vec(read(files_[i], part.sums[type_index]));
        state.count = part.vectors[type_index];
        state.longest_float_run = part.longest_float_runs[type_index];
        state.flushes = part.flushes[type_index];
        gram += gram_accumulator::from_state(part.dim, std::move(state));
    }
}

}  // namespace adaptk
