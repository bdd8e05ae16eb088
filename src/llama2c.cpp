#include "adaptk/llama2c.hpp"

#include <array>
#include <cstring>
#include <optional>

#include "adaptk/error.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

constexpr std::uint64_t legacy_header_bytes = 7 * 4;
constexpr std::uint64_t shared_flag_at = 36;
constexpr std::uint64_t group_size_at = 37;  // version 2: an int32 right after the flag, unaligned
// Real llama2.c models have dim <= 8192 and vocab <= 2^17: anything near 2^31 is corrupt.
constexpr std::int64_t max_field = std::int64_t{1} << 30;

std::int32_t int_at(std::span<const std::byte> file, std::uint64_t at) {
    std::int32_t value;
    std::memcpy(&value, file.data() + at, sizeof value);
    return value;
}

// The 7 config ints at `at`; `legacy`: a negative vocab_size flags a stored classifier.
llama2c_config read_config(std::span<const std::byte> file, std::uint64_t at, const std::string& file_name,
                           bool legacy) {
    static constexpr std::array<const char*, 7> names{"dim", "hidden_dim", "n_layers", "n_heads",
                                                      "n_kv_heads", "vocab_size", "seq_len"};
    std::array<std::uint64_t, 7> fields{};
    llama2c_config config;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        std::int64_t value = int_at(file, at + 4 * i);
        if (legacy && i == 5 && value < 0) {
            config.shared_classifier = false;
            value = -value;
        }
        if (value <= 0 || value > max_field)
            throw format_error(file_name, "", std::string(names[i]) + " is " + std::to_string(value) +
                                                  "; expected a positive count below 2^30",
                               at + 4 * i);
        fields[i] = static_cast<std::uint64_t>(value);
    }
    config.dim = fields[0];
    config.hidden_dim = fields[1];
    config.layers = fields[2];
    config.heads = fields[3];
    config.kv_heads = fields[4];
    config.vocab = fields[5];
    config.seq_len = fields[6];
    if (config.dim % config.heads != 0)
        throw format_error(file_name, "", "dim " + std::to_string(config.dim) + " is not a multiple of n_heads " +
                                              std::to_string(config.heads), at);
    if (config.heads % config.kv_heads != 0)
        throw format_error(file_name, "", "n_heads " + std::to_string(config.heads) +
                                              " is not a multiple of n_kv_heads " + std::to_string(config.kv_heads),
                           at);
    return config;
}

// Version 2's group size. export.py halves 64 until it divides dim (runq.c
// quantizes dim-long activations in the same groups), so every matrix, a
// multiple of dim values, is whole groups; a group may run across rows.
std::uint64_t read_group_size(std::span<const std::byte> head, const llama2c_config& c, const std::string& file_name) {
    const std::int64_t group = int_at(head, group_size_at);
    if (group <= 0 || group > max_field)
        throw format_error(file_name, "", "group_size is " + std::to_string(group) +
                                              "; expected a positive count below 2^30", group_size_at);
    if (c.dim % static_cast<std::uint64_t>(group) != 0)
        throw format_error(file_name, "", "group_size " + std::to_string(group) + " does not divide dim " +
                                              std::to_string(c.dim), group_size_at);
    return static_cast<std::uint64_t>(group);
}

// Lays out the tensors in file order from `offset`. Runs only after
// expected_bytes has matched the file size, so no offset overflows.
class layout {
public:
    explicit layout(std::uint64_t offset) : offset_(offset) {}

    /// Tensors added from now on are Q8_GROUPS, `group` values per scale:
    /// their int8 values, then their float32 scales (version 2's matrices).
    void quantize_in_groups(std::uint64_t group) { group_ = group; }

    void add(const std::string& name, std::vector<std::uint64_t> shape) {
        tensor_info tensor;
        tensor.name = name;
        tensor.type = group_ == 0 ? dtype::f32 : dtype::q8_groups;
        tensor.scale_group = group_;
        tensor.elements = 1;
        for (const std::uint64_t extent : shape) tensor.elements *= extent;  // at most two extents < 2^30
        tensor.shape = std::move(shape);
        tensor.begin = offset_;
        if (group_ == 0)
            skip(tensor.elements);
        else
            offset_ += tensor.elements + 4 * (tensor.elements / group_);
        tensor.end = offset_;
        tensors_.push_back(std::move(tensor));
    }
    /// One tensor per layer, `name` with {} replaced by the layer number.
    void per_layer(std::uint64_t layers, const std::string& name, const std::vector<std::uint64_t>& shape) {
        const auto at = name.find("{}");
        for (std::uint64_t l = 0; l < layers; ++l)
            add(name.substr(0, at) + std::to_string(l) + name.substr(at + 2), shape);
    }
    void skip(std::uint64_t floats) { offset_ += floats * 4; }
    std::vector<tensor_info> take() { return std::move(tensors_); }

private:
    std::uint64_t offset_;
    std::uint64_t group_ = 0;  // 0: float32
    std::vector<tensor_info> tensors_;
};

std::uint64_t freq_cis_floats(const llama2c_config& c) { return c.seq_len * (c.dim / c.heads / 2); }

// Bytes the header says the file has, or nullopt past 2^64; every field is
// below 2^30, so single products fit and only the sums and the layer product
// need checking. Matrices take 4 bytes a value, or in version 2 one byte and
// a 4-byte scale per group (group_size divides dim, so every matrix's count).
std::optional<std::uint64_t> expected_bytes(const llama2c_config& c) {
    using detail::checked_add;
    using detail::checked_mul;
    const std::uint64_t kv_dim = c.kv_heads * (c.dim / c.heads);
    std::optional<std::uint64_t> values =
        checked_mul(c.layers, 2 * c.dim * c.dim + 2 * kv_dim * c.dim + 3 * c.hidden_dim * c.dim);
    for (const std::uint64_t more : {c.vocab * c.dim, c.shared_classifier ? 0 : c.vocab * c.dim})
        if (values) values = checked_add(*values, more);
    if (!values) return std::nullopt;
    const auto matrix_bytes =
        c.version == 2 ? checked_add(*values, *values / c.group_size * 4) : checked_mul(*values, 4);
    // The norms, float32 in every version (below 2^62 bytes), and the legacy freq_cis tables.
    const std::uint64_t norm_bytes = 4 * ((2 * c.layers + 1) * c.dim + (c.version == 0 ? 2 * freq_cis_floats(c) : 0));
    const auto bytes = matrix_bytes ? checked_add(*matrix_bytes, norm_bytes) : std::nullopt;
    return bytes ? checked_add(*bytes, c.version == 0 ? legacy_header_bytes : llama2c_header_bytes) : std::nullopt;
}

const std::string layer = "model.layers.{}.";

void add_norms(layout& out, const llama2c_config& c, bool with_final) {
    out.per_layer(c.layers, layer + "input_layernorm.weight", {c.dim});
    if (with_final) {  // versions 1 and 2 keep the norms together
        out.per_layer(c.layers, layer + "post_attention_layernorm.weight", {c.dim});
        out.add("model.norm.weight", {c.dim});
    }
}

void add_attention(layout& out, const llama2c_config& c) {
    const std::uint64_t kv_dim = c.kv_heads * (c.dim / c.heads);
    out.per_layer(c.layers, layer + "self_attn.q_proj.weight", {c.dim, c.dim});
    out.per_layer(c.layers, layer + "self_attn.k_proj.weight", {kv_dim, c.dim});
    out.per_layer(c.layers, layer + "self_attn.v_proj.weight", {kv_dim, c.dim});
    out.per_layer(c.layers, layer + "self_attn.o_proj.weight", {c.dim, c.dim});
}

void add_mlp(layout& out, const llama2c_config& c) {
    out.per_layer(c.layers, layer + "mlp.gate_proj.weight", {c.hidden_dim, c.dim});
    out.per_layer(c.layers, layer + "mlp.down_proj.weight", {c.dim, c.hidden_dim});
    out.per_layer(c.layers, layer + "mlp.up_proj.weight", {c.hidden_dim, c.dim});
}

std::vector<tensor_info> legacy_tensors(const llama2c_config& c) {
    layout out(legacy_header_bytes);
    out.add("model.embed_tokens.weight", {c.vocab, c.dim});
    add_norms(out, c, false);
    add_attention(out, c);
    out.per_layer(c.layers, layer + "post_attention_layernorm.weight", {c.dim});
    add_mlp(out, c);
    out.add("model.norm.weight", {c.dim});
    out.skip(2 * freq_cis_floats(c));  // freq_cis_real and freq_cis_imag: RoPE tables, not weights
    if (!c.shared_classifier) out.add("lm_head.weight", {c.vocab, c.dim});
    return out.take();
}

// Versions 1 and 2 store the same arrays in the same order; version 2 all
// but the norms in int8 groups.
std::vector<tensor_info> versioned_tensors(const llama2c_config& c) {
    layout out(llama2c_header_bytes);
    add_norms(out, c, true);
    if (c.version == 2) out.quantize_in_groups(c.group_size);
    out.add("model.embed_tokens.weight", {c.vocab, c.dim});
    add_attention(out, c);
    add_mlp(out, c);
    if (!c.shared_classifier) out.add("lm_head.weight", {c.vocab, c.dim});
    return out.take();
}

}  // namespace

bool has_llama2c_magic(std::span<const std::byte> file) noexcept {
    std::uint32_t magic = 0;
    if (file.size() < sizeof magic) return false;
    std::memcpy(&magic, file.data(), sizeof magic);
    return magic == llama2c_magic;
}

llama2c_header parse_llama2c(std::span<const std::byte> file, const std::string& file_name) {
    return parse_llama2c(file, file.size(), file_name);
}

llama2c_header parse_llama2c(std::span<const std::byte> head, std::uint64_t file_size, const std::string& file_name) {
    llama2c_header header;
    if (has_llama2c_magic(head)) {
        if (head.size() < llama2c_header_bytes)
            throw format_error(file_name, "", "file is " + std::to_string(file_size) + " bytes, shorter than the " +
                                                  std::to_string(llama2c_header_bytes) + "-byte llama2.c header", 0);
        const std::int32_t version = int_at(head, 4);
        if (version != 1 && version != 2)
            throw format_error(file_name, "", "llama2.c version " + std::to_string(version) +
                                                  " is not supported (only the legacy layout and versions 1 and 2)", 4);
        header.config = read_config(head, 8, file_name, false);
        header.config.version = static_cast<std::uint32_t>(version);
        const auto shared = static_cast<std::uint8_t>(head[shared_flag_at]);
        if (shared > 1)
            throw format_error(file_name, "", "shared_classifier flag is " + std::to_string(shared) + ", not 0 or 1",
                               shared_flag_at);
        header.config.shared_classifier = shared == 1;
        if (version == 2) header.config.group_size = read_group_size(head, header.config, file_name);
    } else {
        if (head.size() < legacy_header_bytes)
            throw format_error(file_name, "", "file is " + std::to_string(file_size) +
                                                  " bytes, too short for a llama2.c header", 0);
        header.config = read_config(head, 0, file_name, true);
    }
    const auto& c = header.config;
    const auto expected = expected_bytes(c);
    if (!expected || *expected != file_size)
        throw format_error(file_name, "",
                           "file is " + std::to_string(file_size) + " bytes but a llama2.c " +
                               (c.version == 0 ? std::string("legacy") : "version " + std::to_string(c.version)) +
                               " checkpoint with dim " + std::to_string(c.dim) +
                               (c.version == 2 ? ", group_size " + std::to_string(c.group_size) : std::string()) +
                               ", hidden_dim " + std::to_string(c.hidden_dim) + ", " +
                               std::to_string(c.layers) + " layers, vocab " + std::to_string(c.vocab) +
                               (c.shared_classifier ? " (shared classifier)" : " (own classifier)") + " takes " +
                               (expected ? std::to_string(*expected) : std::string("more than 2^64")) + " bytes");
    header.tensors = c.version == 0 ? legacy_tensors(c) : versioned_tensors(c);
    return header;
}

}  // namespace adaptk
