#define BOOST_TEST_MODULE fused
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <armadillo>
#include <cmath>
#include <functional>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "adaptk/analysis.hpp"
#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/fused.hpp"
#include "adaptk/tables.hpp"
#include "adaptk/vectors.hpp"
#include "model_fixture.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using adaptk::checkpoint;
using adaptk::dtype;
using adaptk::format_error;
using adaptk::weight_matrix;
using adaptk::weight_type;
using adaptk::test::named_matrix;
using adaptk::test::temp_dir;

namespace {

constexpr std::uint64_t d = 16, heads = 4, head_dim = 4, ffn = 24, vocab = 40;
constexpr int layer_count = 2;

// One layer's weights in the torch Linear [out, in] layout, as Llama stores them.
struct layer_weights {
    arma::mat q, k, v, o, gate, up, down;
};
struct model_weights {
    std::vector<layer_weights> layers;
    arma::mat embed, head;

    // The Llama-layout matrix of a type (down is [d, ffn]).
    const arma::mat& of(weight_type type, std::optional<int> layer) const {
        if (type == weight_type::embed) return embed;
        if (type == weight_type::head) return head;
        const auto& l = layers.at(static_cast<std::size_t>(layer.value()));
        switch (type) {
        case weight_type::q: return l.q;
        case weight_type::k: return l.k;
        case weight_type::v: return l.v;
        case weight_type::o: return l.o;
        case weight_type::gate: return l.gate;
        case weight_type::up: return l.up;
        default: return l.down;
        }
    }
};

model_weights random_weights(std::uint64_t kv_heads, bool with_gate, unsigned seed) {
    arma::arma_rng::set_seed(seed);
    model_weights w;
    for (int l = 0; l < layer_count; ++l) {
        layer_weights x;
        x.q = arma::randn(heads * head_dim, d);
        x.k = 0.5 * arma::randn(kv_heads * head_dim, d);
        x.v = 2.0 * arma::randn(kv_heads * head_dim, d);
        x.o = arma::randn(d, heads * head_dim);
        if (with_gate) x.gate = arma::randn(ffn, d);
        x.up = arma::randn(ffn, d);
        x.down = arma::randn(d, ffn);
        w.layers.push_back(std::move(x));
    }
    w.embed = arma::randn(vocab, d);
    w.head = arma::randn(vocab, d);
    return w;
}

std::string layer_name(int l, const std::string& module) {
    return "model.layers." + std::to_string(l) + "." + module + ".weight";
}

// The separately stored equivalent: Llama names, one tensor per matrix.
std::vector<named_matrix> llama_tensors(const model_weights& w, bool with_head) {
    std::vector<named_matrix> out;
    for (int l = 0; l < layer_count; ++l) {
        const auto& x = w.layers[static_cast<std::size_t>(l)];
        out.push_back({layer_name(l, "self_attn.q_proj"), x.q});
        out.push_back({layer_name(l, "self_attn.k_proj"), x.k});
        out.push_back({layer_name(l, "self_attn.v_proj"), x.v});
        out.push_back({layer_name(l, "self_attn.o_proj"), x.o});
        if (!x.gate.empty()) out.push_back({layer_name(l, "mlp.gate_proj"), x.gate});
        out.push_back({layer_name(l, "mlp.up_proj"), x.up});
        out.push_back({layer_name(l, "mlp.down_proj"), x.down});
    }
    out.push_back({"model.embed_tokens.weight", w.embed});
    if (with_head) out.push_back({"lm_head.weight", w.head});
    return out;
}

// Phi-3: qkv_proj rows [q; k; v], gate_up_proj rows [gate; up].
std::vector<named_matrix> phi3_tensors(const model_weights& w) {
    std::vector<named_matrix> out;
    for (int l = 0; l < layer_count; ++l) {
        const auto& x = w.layers[static_cast<std::size_t>(l)];
        out.push_back({layer_name(l, "self_attn.qkv_proj"), arma::join_cols(x.q, x.k, x.v)});
        out.push_back({layer_name(l, "self_attn.o_proj"), x.o});
        out.push_back({layer_name(l, "mlp.gate_up_proj"), arma::join_cols(x.gate, x.up)});
        out.push_back({layer_name(l, "mlp.down_proj"), x.down});
    }
    out.push_back({"model.embed_tokens.weight", w.embed});
    out.push_back({"lm_head.weight", w.head});
    return out;
}

// GPT-NeoX: query_key_value rows head by head, each head's q, k, v rows.
std::vector<named_matrix> neox_tensors(const model_weights& w) {
    std::vector<named_matrix> out;
    for (int l = 0; l < layer_count; ++l) {
        const auto& x = w.layers[static_cast<std::size_t>(l)];
        arma::mat qkv(3 * heads * head_dim, d);
        for (std::uint64_t h = 0; h < heads; ++h) {
            const std::uint64_t at = 3 * h * head_dim, from = h * head_dim;
            qkv.rows(at, at + head_dim - 1) = x.q.rows(from, from + head_dim - 1);
            qkv.rows(at + head_dim, at + 2 * head_dim - 1) = x.k.rows(from, from + head_dim - 1);
            qkv.rows(at + 2 * head_dim, at + 3 * head_dim - 1) = x.v.rows(from, from + head_dim - 1);
        }
        const std::string prefix = "gpt_neox.layers." + std::to_string(l) + ".";
        out.push_back({prefix + "attention.query_key_value.weight", qkv});
        out.push_back({prefix + "attention.dense.weight", x.o});
        out.push_back({prefix + "mlp.dense_h_to_4h.weight", x.up});
        out.push_back({prefix + "mlp.dense_4h_to_h.weight", x.down});
    }
    out.push_back({"gpt_neox.embed_in.weight", w.embed});
    out.push_back({"embed_out.weight", w.head});
    return out;
}

// GPT-2: Conv1D [in, out], the transpose of each Linear; c_attn columns [q | k | v];
// no lm_head (tied to wte).
std::vector<named_matrix> gpt2_tensors(const model_weights& w) {
    std::vector<named_matrix> out;
    for (int l = 0; l < layer_count; ++l) {
        const auto& x = w.layers[static_cast<std::size_t>(l)];
        const std::string prefix = "transformer.h." + std::to_string(l) + ".";
        out.push_back({prefix + "attn.c_attn.weight", arma::join_rows(x.q.t(), x.k.t(), x.v.t())});
        out.push_back({prefix + "attn.c_proj.weight", x.o.t()});
        out.push_back({prefix + "mlp.c_fc.weight", x.up.t()});
        out.push_back({prefix + "mlp.c_proj.weight", x.down.t()});
    }
    out.push_back({"transformer.wte.weight", w.embed});
    return out;
}

struct family {
    std::string name;
    std::uint64_t kv_heads;
    bool gate;
    bool head;
    std::string config;
    std::function<std::vector<named_matrix>(const model_weights&)> fused;
};
std::ostream& operator<<(std::ostream& out, const family& f) { return out << f.name; }

std::vector<family> families() {
    return {
        {"phi3", 2, true, true, R"({"hidden_size": 16, "num_attention_heads": 4, "num_key_value_heads": 2})",
         phi3_tensors},
        {"neox", heads, false, true, R"({"hidden_size": 16, "num_attention_heads": 4})", neox_tensors},
        {"gpt2", heads, false, false, R"({"n_embd": 16, "n_head": 4, "n_layer": 2})", gpt2_tensors},
    };
}

// The fused checkpoint and its separately stored Llama-named equivalent.
struct model_pair {
    temp_dir dir;
    model_weights weights;
    fs::path fused, separate;

    model_pair(const family& f, dtype type) : weights(random_weights(f.kv_heads, f.gate, 7)) {
        fused = dir / "fused";
        separate = dir / "separate";
        adaptk::test::write_model(fused, d, f.fused(weights), type, 1, f.config);
        adaptk::test::write_model(separate, d, llama_tensors(weights, f.head), type, 1, f.config);
    }
};

std::vector<weight_matrix> matrices_of(const checkpoint& ck, std::vector<std::string>* notes = nullptr) {
    std::vector<std::string> ignored;
    return ck.matrices(d, notes != nullptr ? *notes : ignored);
}

double as_number(const adaptk::cell& c) {
    if (const auto* i = std::get_if<std::int64_t>(&c)) return static_cast<double>(*i);
    return std::get<double>(c);
}

// Every cell equal, numbers to a relative 1e-9 (the same float values in the
// same order make the same Grams; the tolerance only absorbs BLAS blocking).
// Columns in `skip` are left to the caller.
void check_same_table(const adaptk::table& a, const adaptk::table& b, const std::vector<std::string>& skip) {
    BOOST_TEST_REQUIRE(a.columns == b.columns);
    BOOST_TEST_REQUIRE(a.rows.size() == b.rows.size());
    for (std::size_t r = 0; r < a.rows.size(); ++r)
        for (std::size_t c = 0; c < a.columns.size(); ++c) {
            if (std::find(skip.begin(), skip.end(), a.columns[c]) != skip.end()) continue;
            const auto &x = a.rows[r][c], &y = b.rows[r][c];
            BOOST_TEST_CONTEXT(a.name << " row " << r << " column " << a.columns[c]) {
                BOOST_TEST_REQUIRE(x.index() == y.index());
                if (std::holds_alternative<std::string>(x))
                    BOOST_TEST(std::get<std::string>(x) == std::get<std::string>(y));
                else if (!std::holds_alternative<std::monostate>(x))
                    BOOST_TEST(as_number(x) == as_number(y), boost::test_tools::tolerance(1e-9));
            }
        }
}

std::size_t column(const adaptk::table& t, const std::string& name) {
    return static_cast<std::size_t>(std::find(t.columns.begin(), t.columns.end(), name) - t.columns.begin());
}

adaptk::tensor_class fused_class(weight_type first, adaptk::fusion how, adaptk::storage_layout layout) {
    return {first, adaptk::group_of(first), 3, how, layout};
}

// A stored tensor [rows, cols] for split_fused, which looks only at the shape.
weight_matrix stored(const std::string& name, adaptk::tensor_class kind, std::uint64_t rows, std::uint64_t cols) {
    return {name, kind, dtype::f32, rows, cols, true, {}, nullptr, 0};
}

template <class Call>
void expect_split_error(Call&& call, const std::string& defect) {
    try {
        call();
        BOOST_ERROR("no format_error; expected: " << defect);
    } catch (const format_error& e) {
        BOOST_TEST(e.file() == "m.safetensors");
        BOOST_TEST(e.tensor() == "x.weight");
        BOOST_TEST(e.defect() == defect);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fused_test)

BOOST_DATA_TEST_CASE(fused_parts_come_out_as_the_separate_llama_matrices, bdata::make(families()), f) {
    const model_pair models(f, dtype::f32);
    const checkpoint fused(models.fused), separate(models.separate);
    std::vector<std::string> fused_notes, separate_notes;
    const auto parts = matrices_of(fused, &fused_notes);
    const auto whole = matrices_of(separate, &separate_notes);
    BOOST_TEST(fused_notes.size() == separate_notes.size());  // GPT-2: the tied-head note in both
    BOOST_TEST_REQUIRE(parts.size() == whole.size());
    const std::size_t per_layer = f.gate ? 7 : 6;
    BOOST_TEST(parts.size() == layer_count * per_layer + (f.head ? 2 : 1));
    for (std::size_t i = 0; i < parts.size(); ++i) {
        BOOST_TEST_CONTEXT(parts[i].name << " vs " << whole[i].name) {
            BOOST_TEST((parts[i].kind.type == whole[i].kind.type));
            BOOST_TEST((parts[i].kind.group == whole[i].kind.group));
            BOOST_TEST((parts[i].kind.layer == whole[i].kind.layer));
            BOOST_TEST(parts[i].vector_count() == whole[i].vector_count());
            BOOST_TEST(parts[i].rows * parts[i].cols == whole[i].rows * whole[i].cols);
            BOOST_TEST(parts[i].vector_bytes() == whole[i].vector_bytes());
        }
    }
}

// Vector j of a part is row j of the Llama matrix (column j for down), for
// block sizes that do and do not line up with NeoX's 4-row head runs.
BOOST_DATA_TEST_CASE(every_part_streams_its_dense_slice, bdata::make(families()) * bdata::make({1, 3, 5, 64}), f,
                     block) {
    const model_pair models(f, dtype::f32);
    const checkpoint fused(models.fused);
    for (const auto& m : matrices_of(fused)) {
        const arma::mat& reference = models.weights.of(m.kind.type, m.kind.layer);
        const bool columns = m.kind.type == weight_type::down;
        const std::uint64_t total = columns ? reference.n_cols : reference.n_rows;
        adaptk::vector_stream<float> stream(m, static_cast<std::size_t>(block));
        BOOST_TEST_REQUIRE(stream.dim() == d);
        BOOST_TEST_REQUIRE(stream.vectors_total() == total);
        std::vector<float> out(d * static_cast<std::size_t>(block));
        std::uint64_t done = 0, mismatches = 0;
        for (std::size_t count; (count = stream.next(out.data())) != 0; done += count)
            for (std::size_t j = 0; j < count; ++j)
                for (std::size_t r = 0; r < d; ++r) {
                    const double value = columns ? reference(r, done + j) : reference(done + j, r);
                    mismatches += out[j * d + r] != static_cast<float>(value);
                }
        BOOST_TEST(done == total, m.name);
        BOOST_TEST(mismatches == 0u, m.name);
    }
}

BOOST_DATA_TEST_CASE(fused_and_separate_give_the_same_tables, bdata::make(families()), f) {
    const model_pair models(f, dtype::f32);
    const checkpoint fused(models.fused), separate(models.separate);
    adaptk::analysis_options options;
    options.k = 6;
    options.universal_k = 6;
    options.per_matrix = true;
    options.block_vectors = 5;
    const auto a = adaptk::analyse(matrices_of(fused), d, options);
    const auto b = adaptk::analyse(matrices_of(separate), d, options);
    const std::vector<double> thresholds{0.5, 0.9, 0.99};
    check_same_table(adaptk::profile_table(a, thresholds), adaptk::profile_table(b, thresholds), {});
    check_same_table(adaptk::groups_table(a), adaptk::groups_table(b), {});

    // Layers: names differ; GPT-2's Conv1D parts are stored transposed, so only
    // their rows·cols must agree.
    const auto la = adaptk::layers_table(a, thresholds), lb = adaptk::layers_table(b, thresholds);
    check_same_table(la, lb, {"name", "rows", "cols"});
    for (std::size_t r = 0; r < la.rows.size(); ++r) {
        const auto rows = [&](const adaptk::table& t) { return as_number(t.rows[r][column(t, "rows")]); };
        const auto cols = [&](const adaptk::table& t) { return as_number(t.rows[r][column(t, "cols")]); };
        BOOST_TEST(rows(la) * cols(la) == rows(lb) * cols(lb));
        if (f.name != "gpt2") BOOST_TEST((rows(la) == rows(lb) && cols(la) == cols(lb)));
    }
}

BOOST_AUTO_TEST_CASE(part_names_and_geometry) {
    const model_pair models(families()[1], dtype::f32);  // NeoX
    const auto parts = matrices_of(checkpoint(models.fused));
    const auto q0 = std::find_if(parts.begin(), parts.end(), [](const weight_matrix& m) {
        return m.name == "gpt_neox.layers.0.attention.query_key_value.weight[q]";
    });
    BOOST_TEST_REQUIRE((q0 != parts.end()));
    BOOST_TEST(q0->rows == heads * head_dim);
    BOOST_TEST(q0->cols == d);
    BOOST_TEST(q0->part.first == 0u);
    BOOST_TEST(q0->part.run == head_dim);
    BOOST_TEST(q0->part.period == 3 * head_dim);
    BOOST_TEST(q0->part.stored_index(head_dim) == 3 * head_dim);  // head 1's first q row
    const auto v1 = std::find_if(parts.begin(), parts.end(), [](const weight_matrix& m) {
        return m.name == "gpt_neox.layers.1.attention.query_key_value.weight[v]";
    });
    BOOST_TEST_REQUIRE((v1 != parts.end()));
    BOOST_TEST(v1->part.stored_index(0) == 2 * head_dim);
    BOOST_TEST(v1->part.stored_index(heads * head_dim - 1) == 3 * heads * head_dim - 1);
}

BOOST_AUTO_TEST_CASE(head_dim_from_the_config_overrides_d_over_heads) {
    adaptk::model_config config;
    config.num_attention_heads = 4;
    config.num_key_value_heads = 2;
    config.head_dim = 5;  // 4·5 = 20 query rows for d = 16
    const auto parts = adaptk::split_fused(
        stored("x.weight", fused_class(weight_type::q, adaptk::fusion::qkv, adaptk::storage_layout::linear), 40, 16),
        config, 16, "m.safetensors");
    BOOST_TEST_REQUIRE(parts.size() == 3u);
    BOOST_TEST(parts[0].rows == 20u);
    BOOST_TEST(parts[1].rows == 10u);
    BOOST_TEST(parts[1].part.first == 20u);
    BOOST_TEST(parts[2].rows == 10u);
    BOOST_TEST(parts[2].part.first == 30u);
    for (const auto& p : parts) BOOST_TEST((p.kind.layer == std::optional<int>(3)));
}

BOOST_AUTO_TEST_CASE(conv1d_qkv_parts_are_column_ranges) {
    adaptk::model_config config;
    config.num_attention_heads = 4;
    const auto parts = adaptk::split_fused(
        stored("x.weight", fused_class(weight_type::q, adaptk::fusion::qkv, adaptk::storage_layout::conv1d), 16, 48),
        config, 16, "m.safetensors");
    BOOST_TEST_REQUIRE(parts.size() == 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        BOOST_TEST(!parts[i].vectors_are_rows);
        BOOST_TEST(parts[i].rows == 16u);
        BOOST_TEST(parts[i].cols == 16u);
        BOOST_TEST(parts[i].stored_cols() == 48u);
        BOOST_TEST(parts[i].part.first == 16 * i);
    }
}

BOOST_AUTO_TEST_CASE(missing_head_count_names_the_tensor) {
    const auto how = fused_class(weight_type::q, adaptk::fusion::qkv, adaptk::storage_layout::linear);
    expect_split_error([&] { adaptk::split_fused(stored("x.weight", how, 48, 16), {}, 16, "m.safetensors"); },
                       "fused qkv: splitting it needs num_attention_heads (or n_head) in config.json");
}

BOOST_AUTO_TEST_CASE(missing_head_count_fails_the_whole_checkpoint) {
    family phi3 = families()[0];
    phi3.config = R"({"hidden_size": 16})";
    const model_pair models(phi3, dtype::f32);
    const checkpoint fused(models.fused);
    try {
        matrices_of(fused);
        BOOST_ERROR("no format_error");
    } catch (const format_error& e) {
        BOOST_TEST(std::string(e.what()) == (models.fused / "model.safetensors").string() +
                                                ": tensor 'model.layers.0.self_attn.qkv_proj.weight': fused qkv: "
                                                "splitting it needs num_attention_heads (or n_head) in config.json");
    }
}

BOOST_AUTO_TEST_CASE(fused_rows_that_disagree_with_the_config_are_refused) {
    adaptk::model_config config;
    config.num_attention_heads = 4;
    config.num_key_value_heads = 2;
    const auto qkv = fused_class(weight_type::q, adaptk::fusion::qkv, adaptk::storage_layout::linear);
    expect_split_error([&] { adaptk::split_fused(stored("x.weight", qkv, 47, 16), config, 16, "m.safetensors"); },
                       "fused qkv: 47 output rows do not hold q, k and v of the config's 16 + 8 + 8 "
                       "(num_attention_heads 4, num_key_value_heads 2, head_dim 4)");
    const auto gpt2 = fused_class(weight_type::q, adaptk::fusion::qkv, adaptk::storage_layout::conv1d);
    expect_split_error([&] { adaptk::split_fused(stored("x.weight", gpt2, 16, 47), config, 16, "m.safetensors"); },
                       "fused qkv: 47 output columns do not hold q, k and v of the config's 16 + 8 + 8 "
                       "(num_attention_heads 4, num_key_value_heads 2, head_dim 4)");
    const auto gate_up = fused_class(weight_type::gate, adaptk::fusion::gate_up, adaptk::storage_layout::linear);
    expect_split_error([&] { adaptk::split_fused(stored("x.weight", gate_up, 47, 16), config, 16, "m.safetensors"); },
                       "fused gate_up: 47 output rows do not split into equal gate and up halves");
    config.intermediate_size = 20;
    expect_split_error([&] { adaptk::split_fused(stored("x.weight", gate_up, 48, 16), config, 16, "m.safetensors"); },
                       "fused gate_up: halves of 24 disagree with intermediate_size 20");
}

BOOST_AUTO_TEST_CASE(per_head_qkv_needs_equal_head_counts_and_whole_heads) {
    adaptk::model_config config;
    config.num_attention_heads = 4;
    config.num_key_value_heads = 2;
    const auto neox = fused_class(weight_type::q, adaptk::fusion::qkv_per_head, adaptk::storage_layout::linear);
    expect_split_error([&] { adaptk::split_fused(stored("x.weight", neox, 48, 16), config, 16, "m.safetensors"); },
                       "fused qkv_heads: per-head q/k/v needs as many key/value heads as heads "
                       "(num_attention_heads 4, num_key_value_heads 2, head_dim 4)");
    config.num_attention_heads = 3;
    config.num_key_value_heads.reset();
    expect_split_error([&] { adaptk::split_fused(stored("x.weight", neox, 48, 16), config, 16, "m.safetensors"); },
                       "fused qkv_heads: hidden size 16 is not a multiple of num_attention_heads 3 and config.json "
                       "has no head_dim");
    expect_split_error([&] { adaptk::split_fused(stored("x.weight", neox, 48, 12), config, 16, "m.safetensors"); },
                       "fused qkv_heads: input axis 12 is not the hidden size 16");
}

// --- tied embeddings

namespace {

struct tie_case {
    std::string name;
    std::string config;
    bool head_is_embed_bytes;
    bool with_head;
    std::size_t heads_expected;
    std::string note;  ///< a fragment of the one note, or empty for none
};
std::ostream& operator<<(std::ostream& out, const tie_case& c) { return out << c.name; }

std::vector<tie_case> tie_cases() {
    return {
        {"config_ties", R"({"hidden_size": 16, "tie_word_embeddings": true})", false, true, 0,
         "config.json sets tie_word_embeddings: 'lm_head.weight' left out, the embedding counts once as embed"},
        {"same_bytes", R"({"hidden_size": 16, "tie_word_embeddings": false})", true, true, 0,
         "'lm_head.weight' holds the same bytes as 'model.embed_tokens.weight' (tied embeddings): left out"},
        {"untied", R"({"hidden_size": 16, "tie_word_embeddings": false})", false, true, 1, ""},
        {"no_head", R"({"hidden_size": 16})", false, false, 0,
         "no output head tensor besides 'model.embed_tokens.weight': tied embeddings, counted once as embed"},
    };
}

}  // namespace

BOOST_DATA_TEST_CASE(tied_embeddings_count_once, bdata::make(tie_cases()), c) {
    temp_dir dir;
    arma::arma_rng::set_seed(3);
    const arma::mat embed = arma::randn(vocab, d);
    arma::mat head = c.head_is_embed_bytes ? embed : arma::mat(arma::randn(vocab, d));
    std::vector<named_matrix> tensors{{"model.layers.0.self_attn.q_proj.weight", arma::randn(d, d)},
                                      {"model.embed_tokens.weight", embed}};
    if (c.with_head) tensors.push_back({"lm_head.weight", head});
    adaptk::test::write_model(dir.path(), d, tensors, dtype::bf16, 1, c.config);
    std::vector<std::string> notes;
    const auto matrices = matrices_of(checkpoint(dir / "model.safetensors"), &notes);
    const auto count = [&](weight_type type) {
        return std::count_if(matrices.begin(), matrices.end(), [&](const auto& m) { return m.kind.type == type; });
    };
    BOOST_TEST(count(weight_type::embed) == 1);
    BOOST_TEST(count(weight_type::head) == static_cast<long>(c.heads_expected));
    if (c.note.empty()) {
        BOOST_TEST(notes.empty());
    } else {
        BOOST_TEST_REQUIRE(notes.size() == 1u);
        BOOST_TEST(notes[0].find(c.note) != std::string::npos, notes[0]);
    }
}

BOOST_AUTO_TEST_SUITE_END()
