#include "adaptk/llama2c.hpp"

#include <array>
#include <cstring>
#include <optional>

#include "adaptk/error.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

constexpr std::uint64_t legacy_header_bytes = 7 * 4;
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

// Lays out the tensors in file order from `offset`. Runs only after
// expected_bytes has matched the file size, so no offset overflows.
class layout {
public:
    explicit layout(std::uint64_t offset) : offset_(offset) {}

    void add(const std::string& name, std::vector<std::uint64_t> shape) {
        tensor_info tensor;
        tensor.name = name;
        tensor.type = dtype::f32;
        tensor.elements = 1;
        for (const std::uint64_t extent : shape) tensor.elements *= extent;  // at most two extents < 2^30
        tensor.shape = std::move(shape);
        tensor.begin = offset_;
        skip(tensor.elements);
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
    std::vector<tensor_info> tensors_;
};

std::uint64_t freq_cis_floats(const llama2c_config& c) { return c.seq_len * (c.dim / c.heads / 2); }

// Bytes the header says the file has, or nullopt past 2^64; every field is
// below 2^30, so single products fit and only the sums and the layer product
// need checking.
std::optional<std::uint64_t> expected_bytes(const llama2c_config& c) {
    using detail::checked_add;
    using detail::checked_mul;
    const std::uint64_t kv_dim = c.kv_heads * (c.dim / c.heads);
    const std::uint64_t per_layer = 2 * c.dim + 2 * c.dim * c.dim + 2 * kv_dim * c.dim + 3 * c.hidden_dim * c.dim;
    std::optional<std::uint64_t> floats = checked_mul(c.layers, per_layer);
    for (const std::uint64_t more : {c.vocab * c.dim, c.dim, c.version == 0 ? 2 * freq_cis_floats(c) : 0,
                                     c.shared_classifier ? 0 : c.vocab * c.dim})
        if (floats) floats = checked_add(*floats, more);
    if (!floats) return std::nullopt;
    const auto bytes = checked_mul(*floats, 4);
    return bytes ? checked_add(*bytes, c.version == 0 ? legacy_header_bytes : llama2c_header_bytes) : std::nullopt;
}

const std::string layer = "model.layers.{}.";

void add_norms(layout& out, const llama2c_config& c, bool with_final) {
    out.per_layer(c.layers, layer + "input_layernorm.weight", {c.dim});
    if (with_final) {  // version 1 keeps the norms together
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

std::vector<tensor_info> version1_tensors(const llama2c_config& c) {
    layout out(llama2c_header_bytes);
    add_norms(out, c, true);
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
        if (version == 2)
            throw format_error(file_name, "", "llama2.c version 2 (int8 groups) is not supported; export it with "
                                              "version 1 (float32)", 4);
        if (version != 1)
            throw format_error(file_name, "", "llama2.c version " + std::to_string(version) +
                                                  " is not supported (only the legacy layout and version 1)", 4);
        header.config = read_config(head, 8, file_name, false);
        header.config.version = 1;
        const auto shared = static_cast<std::uint8_t>(head[36]);
        if (shared > 1)
            throw format_error(file_name, "", "shared_classifier flag is " + std::to_string(shared) + ", not 0 or 1",
                               36);
        header.config.shared_classifier = shared == 1;
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
                               (c.version == 0 ? std::string("legacy") : "version 1") + " checkpoint with dim " +
                               std::to_string(c.dim) + ", hidden_dim " + std::to_string(c.hidden_dim) + ", " +
                               std::to_string(c.layers) + " layers, vocab " + std::to_string(c.vocab) +
                               (c.shared_classifier ? " (shared classifier)" : " (own classifier)") + " takes " +
                               (expected ? std::to_string(*expected) : std::string("more than 2^64")) + " bytes");
    header.tensors = c.version == 0 ? legacy_tensors(c) : version1_tensors(c);
    return header;
}

}  // namespace adaptk
