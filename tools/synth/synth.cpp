// adaptk-synth's generator. Per weight type t, with d the hidden size:
//   B_t      = Q of a d × d Gaussian X = QR, columns signed so diag(R) > 0   (8/3·d³ flops, once)
//   A_t      = B_t diag(s) / √n_t,  s_i = (i+1)^(-alpha_t),  n_t vectors per matrix of type t
//   vector j = A_t g_j,  g_j ~ N(0, I_d)                                       (2·d² flops each)
// so Σ_j A_t g_j g_jᵀ A_tᵀ ≈ A_t (n_t I) A_tᵀ = B_t diag(s²) B_tᵀ per matrix.
// Vectors are produced a block at a time by one sgemm and handed straight to
// the writer, so memory holds the nine A_t, one block and (down_proj only)
// one matrix's Gaussian factor, never a whole tensor of another type.

#include "synth.hpp"

#include <algorithm>
#include <armadillo>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>
#include <regex>
#include <span>
#include <stdexcept>
#include <thread>

#include "adaptk/atomic_file.hpp"
#include "adaptk/error.hpp"
#include "adaptk/safetensors_writer.hpp"

namespace adaptk::synth {
namespace {

namespace fs = std::filesystem;

// Vectors per sgemm. On a 4-layer d = 2048 model (2 cores, OpenBLAS 0.3.21)
// blocks of 64, 256 and 1024 ran within noise of each other (12-14 s), and
// 1024 adds 22 MB of peak RSS.
constexpr std::uint64_t block_vectors = 256;

// Independent random streams, one per (stream, index, chunk): the bases are
// stream 0 (index = type), the coefficients stream 1 (index = the tensor's
// position in the full tensor list, chunk = see draw_coefficients), so a
// tensor's bytes depend neither on the sharding nor on the tensors before it.
std::mt19937_64 make_engine(std::uint64_t seed, std::uint32_t stream, std::uint64_t index, std::uint64_t chunk) {
    std::seed_seq sequence{static_cast<std::uint32_t>(seed),  static_cast<std::uint32_t>(seed >> 32),
                           stream,
                           static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                           static_cast<std::uint32_t>(chunk), static_cast<std::uint32_t>(chunk >> 32)};
    return std::mt19937_64(sequence);
}

template <class T>
void fill_gaussian(std::mt19937_64& engine, std::span<T> out) {
    std::normal_distribution<T> normal;
    for (T& value : out) value = normal(engine);
}

// Vectors per coefficient chunk, each chunk drawn from its own engine so the
// chunks can be drawn on all cores with values that do not depend on the
// thread count. Why threads: a draw costs ~20 ns (mt19937_64 + the polar
// method), 1.1e9 draws are ~22 s of the 1.1B preset's ~85 CPU-seconds, and
// BLAS is idle meanwhile. Reseeding costs ~2 µs per chunk of ~2.6 ms.
constexpr std::uint64_t chunk_vectors = 64;
static_assert(block_vectors % chunk_vectors == 0, "blocks must start on chunk boundaries");

// Gaussian coefficients of vectors [first, first + count) of tensor `tensor`
// into `out`, `rank` floats per vector. Precondition: first % chunk_vectors == 0.
void draw_coefficients(std::uint64_t seed, std::uint64_t tensor, std::uint64_t first, std::uint64_t count,
                       std::uint64_t rank, float* out) {
    const std::uint64_t first_chunk = first / chunk_vectors;
    const std::uint64_t chunks = (count + chunk_vectors - 1) / chunk_vectors;
    std::atomic<std::uint64_t> next{0};
    auto worker = [&] {
        for (std::uint64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
            const std::uint64_t begin = c * chunk_vectors;
            const std::uint64_t end = std::min(count, begin + chunk_vectors);
            auto engine = make_engine(seed, 1, tensor, first_chunk + c);
            fill_gaussian(engine, std::span<float>(out + begin * rank, (end - begin) * rank));
        }
    };
    const std::uint64_t threads = std::min<std::uint64_t>(std::max(1u, std::thread::hardware_concurrency()), chunks);
    std::vector<std::jthread> helpers;
    for (std::uint64_t t = 1; t < threads; ++t) helpers.emplace_back(worker);
    worker();
}  // helpers join here

// The first `columns` vectors of a Haar-distributed orthonormal basis: Q of
// the QR of a d × columns Gaussian matrix with each column multiplied by
// sign(R_ii) (Mezzadri 2007, "How to generate random matrices from the
// classical compact groups", §5). Single precision: its orthonormality error
// (~1e-6) is far below the F16/BF16 rounding of the output, and sgeqrf halves
// the startup against dgeqrf (4 s of 8 at d = 2048).
arma::fmat haar_basis(std::uint64_t d, std::uint64_t columns, std::mt19937_64& engine) {
    arma::fmat gaussian(d, columns);
    fill_gaussian(engine, std::span<float>(gaussian.memptr(), gaussian.n_elem));
    arma::fmat q;
    arma::fmat r;
    if (!arma::qr_econ(q, r, gaussian))
        throw numerical_error("adaptk-synth: QR of the " + std::to_string(d) + " x " + std::to_string(d) +
                              " Gaussian basis matrix failed");
    arma::frowvec signs(columns);
    for (arma::uword i = 0; i < columns; ++i) signs[i] = r(i, i) < 0 ? -1.0f : 1.0f;
    q.each_row() %= signs;
    return q;
}

std::uint64_t vectors_per_matrix(matrix_type t, const shape_config& shape) {
    switch (t) {
    case matrix_type::q:
    case matrix_type::o: return shape.hidden;
    case matrix_type::k:
    case matrix_type::v: return shape.kv;
    case matrix_type::gate:
    case matrix_type::up:
    case matrix_type::down: return shape.ffn;
    case matrix_type::embed:
    case matrix_type::head: return shape.vocab;
    }
    return 0;
}

// A_t = B_t diag(s) / √n_t (d × rank); for down_proj its transpose, because
// there the blocks are rows of A_t (see write_columns).
arma::fmat type_factor(matrix_type t, const options& opts) {
    const std::uint64_t d = opts.shape.hidden;
    const std::uint64_t rank = spectrum_rank(opts);
    auto engine = make_engine(opts.seed, 0, static_cast<std::uint64_t>(t), 0);
    arma::fmat factor = haar_basis(d, rank, engine);
    arma::frowvec scale(rank);
    const double alpha = opts.decay[static_cast<std::size_t>(t)];
    const double per_vector = 1.0 / std::sqrt(static_cast<double>(vectors_per_matrix(t, opts.shape)));
    for (arma::uword i = 0; i < rank; ++i)
        scale[i] = static_cast<float>(std::pow(static_cast<double>(i + 1), -alpha) * per_vector);
    factor.each_row() %= scale;
    if (t == matrix_type::down) arma::inplace_trans(factor);
    return factor;
}

// W [n, d] row-major, rows are the vectors. Block of b rows: coefficients
// C (rank × b, column j = g_j), out = A C (d × b) whose column j is row j of
// W, i.e. out's column-major memory is the row-major block.   2·d·rank·b flops
void write_rows(safetensors_writer& writer, const arma::fmat& factor, std::uint64_t n, std::uint64_t seed,
                std::uint64_t tensor) {
    const arma::uword rank = factor.n_cols;
    arma::fmat coefficients;
    arma::fmat block;
    for (std::uint64_t row = 0; row < n; row += block_vectors) {
        const auto b = static_cast<arma::uword>(std::min(block_vectors, n - row));
        coefficients.set_size(rank, b);  // reallocates only for a shorter last block
        draw_coefficients(seed, tensor, row, b, rank, coefficients.memptr());
        block = factor * coefficients;
        writer.write_values(std::span<const float>(block.memptr(), block.n_elem));
    }
}

// down_proj W [d, n] row-major, columns are the vectors: W = A C with
// C = [g_1 … g_n] (rank × n, drawn vector by vector as in write_rows).
// Row block [r, r+b) of W is A[r:r+b, :] C; its transpose Cᵀ A[r:r+b, :]ᵀ
// (n × b) has the block's rows as columns. `factor_t` holds Aᵀ, so
// A[r:r+b, :]ᵀ is its contiguous columns r..r+b-1.   2·rank·n·b flops per block
// The whole C stays in memory (n·rank floats): every row block needs all of it.
void write_columns(safetensors_writer& writer, arma::fmat& factor_t, std::uint64_t n, std::uint64_t seed,
                   std::uint64_t tensor) {
    const arma::uword rank = factor_t.n_rows;
    const arma::uword d = factor_t.n_cols;
    arma::fmat coefficients(rank, n);
    draw_coefficients(seed, tensor, 0, n, rank, coefficients.memptr());
    arma::fmat block;
    for (std::uint64_t row = 0; row < d; row += block_vectors) {
        const auto b = static_cast<arma::uword>(std::min<std::uint64_t>(block_vectors, d - row));
        // An alias of the columns, not a copy (copy_aux_mem = false, strict).
        const arma::fmat rows_t(factor_t.colptr(row), rank, b, false, true);
        block = coefficients.t() * rows_t;
        writer.write_values(std::span<const float>(block.memptr(), block.n_elem));
    }
}

void write_json(const fs::path& path, const nlohmann::ordered_json& value) {
    atomic_file file(path);
    file.stream() << value.dump(2) << '\n';
    file.commit();
}

std::string_view torch_dtype(dtype t) {
    switch (t) {
    case dtype::f64: return "float64";
    case dtype::f32: return "float32";
    case dtype::f16: return "float16";
    case dtype::bf16: return "bfloat16";
    default: throw std::invalid_argument("adaptk-synth: dtype " + std::string(dtype_name(t)) + " is not generated");
    }
}

std::uint64_t checked_bytes(const std::string& name, std::initializer_list<std::uint64_t> shape, dtype type) {
    std::uint64_t bytes = dtype_bytes(type);
    for (const auto extent : shape)
        if (__builtin_mul_overflow(bytes, extent, &bytes))
            throw std::invalid_argument("adaptk-synth: byte count of tensor '" + name + "' overflows 64 bits");
    return bytes;
}

}  // namespace

std::string_view matrix_type_name(matrix_type t) noexcept {
    constexpr std::array<std::string_view, matrix_type_count> names{
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens", "lm_head"};
    return names[static_cast<std::size_t>(t)];
}

std::uint64_t spectrum_rank(const options& opts) noexcept { return opts.rank.value_or(opts.shape.hidden); }

std::vector<tensor_spec> llama_tensors(const shape_config& shape) {
    std::vector<tensor_spec> tensors;
    auto add = [&](std::string name, std::initializer_list<std::uint64_t> extents, std::optional<matrix_type> t) {
        const std::uint64_t bytes = checked_bytes(name, extents, shape.type);
        tensors.push_back({std::move(name), std::vector<std::uint64_t>(extents), t, bytes});
    };
    const std::uint64_t d = shape.hidden;
    add("model.embed_tokens.weight", {shape.vocab, d}, matrix_type::embed);
    for (std::uint64_t layer = 0; layer < shape.layers; ++layer) {
        const std::string prefix = "model.layers." + std::to_string(layer) + ".";
        add(prefix + "self_attn.q_proj.weight", {d, d}, matrix_type::q);
        add(prefix + "self_attn.k_proj.weight", {shape.kv, d}, matrix_type::k);
        add(prefix + "self_attn.v_proj.weight", {shape.kv, d}, matrix_type::v);
        add(prefix + "self_attn.o_proj.weight", {d, d}, matrix_type::o);
        add(prefix + "mlp.gate_proj.weight", {shape.ffn, d}, matrix_type::gate);
        add(prefix + "mlp.up_proj.weight", {shape.ffn, d}, matrix_type::up);
        add(prefix + "mlp.down_proj.weight", {d, shape.ffn}, matrix_type::down);
        add(prefix + "input_layernorm.weight", {d}, std::nullopt);
        add(prefix + "post_attention_layernorm.weight", {d}, std::nullopt);
    }
    add("model.norm.weight", {d}, std::nullopt);
    if (!shape.tied) add("lm_head.weight", {shape.vocab, d}, matrix_type::head);
    return tensors;
}

std::vector<std::uint64_t> assign_shards(const std::vector<tensor_spec>& tensors, std::uint64_t shards) {
    if (shards == 0 || shards > tensors.size())
        throw std::invalid_argument("adaptk-synth: " + std::to_string(shards) + " shards for " +
                                    std::to_string(tensors.size()) + " tensors");
    long double total = 0;
    for (const auto& t : tensors) total += static_cast<long double>(t.bytes);
    std::vector<std::uint64_t> shard_of(tensors.size());
    std::uint64_t shard = 0;
    std::uint64_t in_shard = 0;
    long double before = 0;  // bytes of the tensors already placed
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const std::uint64_t tensors_left = tensors.size() - i;
        const std::uint64_t shards_after = shards - 1 - shard;
        const bool full = before >= total * static_cast<long double>(shard + 1) / static_cast<long double>(shards);
        if (in_shard > 0 && shards_after > 0 && (full || tensors_left == shards_after)) {
            ++shard;
            in_shard = 0;
        }
        shard_of[i] = shard;
        ++in_shard;
        before += static_cast<long double>(tensors[i].bytes);
    }
    return shard_of;
}

std::string shard_file_name(std::uint64_t shard, std::uint64_t shards) {
    if (shards == 1) return "model.safetensors";
    char name[64];
    std::snprintf(name, sizeof name, "model-%05llu-of-%05llu.safetensors", static_cast<unsigned long long>(shard + 1),
                  static_cast<unsigned long long>(shards));
    return name;
}

nlohmann::ordered_json llama_config(const options& opts) {
    const shape_config& s = opts.shape;
    const std::uint64_t heads = std::max<std::uint64_t>(1, s.hidden / 64);
    const std::uint64_t kv_heads = std::max<std::uint64_t>(1, s.kv / 64);
    nlohmann::ordered_json decay = nlohmann::ordered_json::object();
    for (std::size_t t = 0; t < matrix_type_count; ++t)
        if (!(s.tied && static_cast<matrix_type>(t) == matrix_type::head))
            decay[std::string(matrix_type_name(static_cast<matrix_type>(t)))] = opts.decay[t];
    return {
        {"architectures", {"LlamaForCausalLM"}},
        {"model_type", "llama"},
        {"hidden_size", s.hidden},
        {"intermediate_size", s.ffn},
        {"num_hidden_layers", s.layers},
        {"num_attention_heads", heads},
        {"num_key_value_heads", kv_heads},
        {"head_dim", s.hidden / heads},
        {"vocab_size", s.vocab},
        {"hidden_act", "silu"},
        {"max_position_embeddings", 2048},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 10000.0},
        {"tie_word_embeddings", s.tied},
        {"torch_dtype", torch_dtype(s.type)},
        {"adaptk_synth",
         {{"seed", opts.seed},
          {"singular_values", opts.rank ? "s_i = (i+1)^-alpha for i < rank, 0 beyond, per weight type"
                                        : "s_i = (i+1)^-alpha for i < hidden_size, per weight type"},
          {"rank", spectrum_rank(opts)},
          {"decay_alpha", decay}}},
    };
}

std::vector<std::string> write_checkpoint(const fs::path& directory, const options& opts, const progress_fn& progress) {
    (void)torch_dtype(opts.shape.type);  // refuse a dtype the writer cannot encode before any work
    const std::vector<tensor_spec> tensors = llama_tensors(opts.shape);
    const std::vector<std::uint64_t> shard_of = assign_shards(tensors, opts.shards);
    std::uint64_t bytes_total = 0;
    for (const auto& t : tensors) bytes_total += t.bytes;  // no overflow: each fits, and they share one address space

    fs::create_directories(directory);

    std::array<arma::fmat, matrix_type_count> factors;
    for (std::size_t t = 0; t < matrix_type_count; ++t)
        if (!(opts.shape.tied && static_cast<matrix_type>(t) == matrix_type::head))
            factors[t] = type_factor(static_cast<matrix_type>(t), opts);

    const std::vector<float> ones(opts.shape.hidden, 1.0f);
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    std::vector<std::string> written;
    std::uint64_t bytes_done = 0;
    std::size_t next = 0;
    for (std::uint64_t shard = 0; shard < opts.shards; ++shard) {
        const std::string file_name = shard_file_name(shard, opts.shards);
        written.push_back(file_name);
        safetensors_writer writer(directory / file_name);
        writer.metadata("format", "pt");
        const std::size_t first = next;
        while (next < tensors.size() && shard_of[next] == shard) {
            writer.declare(tensors[next].name, opts.shape.type, tensors[next].shape);
            weight_map[tensors[next].name] = file_name;
            ++next;
        }
        for (std::size_t i = first; i < next; ++i) {
            const tensor_spec& tensor = tensors[i];
            if (!tensor.type)
                writer.write_values(std::span<const float>(ones));
            else if (*tensor.type == matrix_type::down)
                write_columns(writer, factors[static_cast<std::size_t>(matrix_type::down)], tensor.shape[1], opts.seed, i);
            else
                write_rows(writer, factors[static_cast<std::size_t>(*tensor.type)], tensor.shape[0], opts.seed, i);
            bytes_done += tensor.bytes;
            if (progress) progress(i, tensors.size(), tensor, bytes_done, bytes_total);
        }
        writer.finish();
    }

    if (opts.shards > 1)
        write_json(directory / "model.safetensors.index.json",
                   {{"metadata", {{"total_size", bytes_total}}}, {"weight_map", weight_map}});
    write_json(directory / "config.json", llama_config(opts));

    // A stale file of the other layout would win (an index) or add duplicate
    // tensors (a single file next to shards) when the directory is read.
    std::vector<std::string> removed;
    const std::regex shard_pattern(R"(model-\d{5}-of-\d{5}\.safetensors)");
    for (const auto& entry : fs::directory_iterator(directory)) {
        const std::string name = entry.path().filename().string();
        const bool ours = opts.shards == 1 ? name == "model.safetensors.index.json" ||
                                                 std::regex_match(name, shard_pattern)
                                           : name == "model.safetensors" ||
                                                 (std::regex_match(name, shard_pattern) &&
                                                  std::find(written.begin(), written.end(), name) == written.end());
        if (ours) removed.push_back(name);
    }
    for (const auto& name : removed) fs::remove(directory / name);
    return removed;
}

}  // namespace adaptk::synth
