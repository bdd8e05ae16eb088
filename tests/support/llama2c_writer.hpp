#pragma once
// llama2.c checkpoints for the tests, written from llama2.c's export.py layout
// (legacy and version 1, float32; version 2, matrices quantized to int8 groups
// here); shares no code with src/llama2c.cpp or src/dtype.cpp.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace adaptk::test {

struct llama2c_spec {
    std::int32_t dim = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, seq_len = 0;
    bool shared = true;
    int version = 0;  ///< 0: legacy, 1: "ak42" version 1, 2: version 2 (int8 groups)
    std::int32_t group = 0;  ///< version 2: values per scale
};

struct llama2c_tensor {
    std::string name;  ///< HF name
    std::uint64_t rows, cols;  ///< cols 0 for a vector
    bool weight;  ///< false: the legacy freq_cis tables (not a tensor of the model)
};

/// The arrays of a llama2.c file in file order, named as the HF Llama layout names them.
inline std::vector<llama2c_tensor> llama2c_layout(const llama2c_spec& s) {
    const std::uint64_t d = s.dim, kv = std::uint64_t(s.kv_heads) * (s.dim / s.heads), h = s.hidden;
    std::vector<llama2c_tensor> out;
    auto layers = [&](const std::string& suffix, std::uint64_t rows, std::uint64_t cols) {
        for (int l = 0; l < s.layers; ++l) out.push_back({"model.layers." + std::to_string(l) + "." + suffix, rows, cols, true});
    };
    if (s.version == 0) {
        out.push_back({"model.embed_tokens.weight", std::uint64_t(s.vocab), d, true});
        layers("input_layernorm.weight", d, 0);
    } else {
        layers("input_layernorm.weight", d, 0);
        layers("post_attention_layernorm.weight", d, 0);
        out.push_back({"model.norm.weight", d, 0, true});
        out.push_back({"model.embed_tokens.weight", std::uint64_t(s.vocab), d, true});
    }
    layers("self_attn.q_proj.weight", d, d);
    layers("self_attn.k_proj.weight", kv, d);
    layers("self_attn.v_proj.weight", kv, d);
    layers("self_attn.o_proj.weight", d, d);
    if (s.version == 0) layers("post_attention_layernorm.weight", d, 0);
    layers("mlp.gate_proj.weight", h, d);  // w1
    layers("mlp.down_proj.weight", d, h);  // w2
    layers("mlp.up_proj.weight", h, d);    // w3
    if (s.version == 0) {
        out.push_back({"model.norm.weight", d, 0, true});
        const std::uint64_t half_head = d / s.heads / 2;
        out.push_back({"freq_cis_real", std::uint64_t(s.seq_len), half_head, false});
        out.push_back({"freq_cis_imag", std::uint64_t(s.seq_len), half_head, false});
    }
    if (!s.shared) out.push_back({"lm_head.weight", std::uint64_t(s.vocab), d, true});
    return out;
}

inline std::uint64_t llama2c_elements(const llama2c_tensor& t) { return t.rows * (t.cols == 0 ? 1 : t.cols); }

/// True for the arrays version 2 stores in int8 groups: the matrices.
inline bool llama2c_quantized(const llama2c_spec& s, const llama2c_tensor& t) { return s.version == 2 && t.cols != 0; }

/// Bytes the array takes in the file: float32, or int8 values and a float32 scale per group.
inline std::uint64_t llama2c_bytes(const llama2c_spec& s, const llama2c_tensor& t) {
    const std::uint64_t n = llama2c_elements(t);
    return llama2c_quantized(s, t) ? n + 4 * (n / std::uint64_t(s.group)) : 4 * n;
}

/// export.py's quantize_q80: per group of the flattened array, scale =
/// max|w| / 127 and q = round(w / scale), halves to even as torch.round.
struct int8_groups {
    std::vector<std::int8_t> values;
    std::vector<float> scales;
};
inline int8_groups quantize_int8_groups(const std::vector<float>& w, std::size_t group) {
    int8_groups q{std::vector<std::int8_t>(w.size()), std::vector<float>(w.size() / group)};
    for (std::size_t g = 0; g < q.scales.size(); ++g) {
        float max_abs = 0;
        for (std::size_t i = 0; i < group; ++i) max_abs = std::max(max_abs, std::fabs(w[g * group + i]));
        q.scales[g] = max_abs / 127.0f;
        for (std::size_t i = 0; i < group; ++i)
            q.values[g * group + i] =
                q.scales[g] == 0 ? 0 : static_cast<std::int8_t>(std::nearbyint(w[g * group + i] / q.scales[g]));
    }
    return q;
}

/// The value runq.c computes for element i: the int8 times its group's scale, a float32 product.
inline float dequantized(std::int8_t value, float scale) { return static_cast<float>(value) * scale; }

/// The file image; `values(tensor)` gives each array's row-major floats.
inline std::vector<std::byte> llama2c_image(const llama2c_spec& s,
                                            const std::function<std::vector<float>(const llama2c_tensor&)>& values) {
    std::vector<std::byte> image;
    auto put = [&](const void* p, std::size_t n) {
        const auto* b = static_cast<const std::byte*>(p);
        image.insert(image.end(), b, b + n);
    };
    if (s.version != 0) {
        const std::uint32_t magic = 0x616b3432;
        const std::int32_t version = s.version;
        put(&magic, 4);
        put(&version, 4);
    }
    const std::int32_t vocab_field = s.version == 0 && !s.shared ? -s.vocab : s.vocab;
    for (const std::int32_t field : {s.dim, s.hidden, s.layers, s.heads, s.kv_heads, vocab_field, s.seq_len}) put(&field, 4);
    if (s.version != 0) {
        image.push_back(std::byte{static_cast<unsigned char>(s.shared ? 1 : 0)});
        if (s.version == 2) put(&s.group, 4);  // at byte 37, unaligned
        image.resize(256);
    }
    for (const auto& tensor : llama2c_layout(s)) {
        const std::vector<float> v = values(tensor);
        if (llama2c_quantized(s, tensor)) {
            const int8_groups q = quantize_int8_groups(v, std::size_t(s.group));
            put(q.values.data(), q.values.size());
            put(q.scales.data(), q.scales.size() * sizeof(float));
        } else {
            put(v.data(), v.size() * sizeof(float));
        }
    }
    return image;
}

}  // namespace adaptk::test
