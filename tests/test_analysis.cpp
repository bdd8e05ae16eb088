#define BOOST_TEST_MODULE analysis
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <system_error>

#include "adaptk/analysis.hpp"
#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/safetensors.hpp"
#include "adaptk/spectrum.hpp"
#include "adaptk/tables.hpp"
#include "adaptk/vectors.hpp"
#include "detail/spill.hpp"
#include "model_fixture.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
BOOST_TEST_DONT_PRINT_LOG_VALUE(adaptk::dtype)
using namespace adaptk;
using adaptk::test::named_matrix;

namespace {

// ---- independent reference statistics (plain loops, float64) ----

double ref_pr(const arma::vec& lambda) {
    double sum = 0, squares = 0;
    for (double v : lambda) {
        sum += v;
        squares += v * v;
    }
    return sum * sum / squares;
}

std::size_t ref_k(arma::vec lambda, double fraction) {
    lambda = arma::sort(lambda, "descend");
    const double total = arma::accu(lambda);
    double running = 0;
    for (std::size_t i = 0; i < lambda.n_elem; ++i) {
        running += lambda[i];
        if (running >= fraction * total) return i + 1;
    }
    return lambda.n_elem;
}

double ref_kept(arma::vec lambda, std::size_t k) {
    lambda = arma::sort(lambda, "descend");
    return arma::accu(lambda.head(k)) / arma::accu(lambda);
}

void check_close(double actual, double expected, double relative, const std::string& what) {
    const double scale = std::max(std::abs(expected), 1e-300);
    BOOST_TEST(std::abs(actual - expected) / scale <= relative, what << ": " << actual << " vs " << expected);
}

analysis_result run(const std::filesystem::path& dir, analysis_options options) {
    checkpoint model(dir);
    std::vector<std::string> notes;
    const auto d = model.hidden_size(std::nullopt, notes);
    return analyse(model.matrices(d, notes), d, options);
}

// ---- known spectra: every type's Gram is diagonal in one shared basis Q ----
//
// Type t puts singular value s_i on basis vector Q[:, perm_t[i]], so
// C_t = Q diag(e_t) Qᵀ with e_t[perm_t[i]] = Σ_layers s_i². All C_t commute,
// the universal top-K basis is Q restricted to the K largest entries of Σ_t e_t,
// and every statistic is a closed-form function of the e_t.

struct type_shape {
    std::string module;  // "self_attn.q_proj", ...
    std::string type;
    std::size_t rows, cols;  // file shape
    bool columns;            // vectors are columns (down_proj)
    double decay;
};

struct known_model {
    std::vector<named_matrix> matrices;
    std::map<std::string, arma::vec> type_energy;       // e_t in Q coordinates
    std::vector<std::pair<std::string, arma::vec>> matrix_energy;  // per matrix, in file order of `matrices`
};

known_model build_known_model(std::size_t d, std::size_t layers) {
    arma::arma_rng::set_seed(20261129);
    const std::size_t kv = d / 3, ffn = d + d / 2, vocab = 2 * d + 7;
    const std::vector<type_shape> shapes{
        {"self_attn.q_proj", "q", d, d, false, 0.9},   {"self_attn.k_proj", "k", kv, d, false, 1.3},
        {"self_attn.v_proj", "v", kv, d, false, 0.3},  {"self_attn.o_proj", "o", d, d, false, 0.4},
        {"mlp.gate_proj", "gate", ffn, d, false, 0.1}, {"mlp.up_proj", "up", ffn, d, false, 0.15},
        {"mlp.down_proj", "down", d, ffn, true, 0.2},
    };
    const arma::mat q = adaptk::test::random_orthonormal(d, d);
    known_model model;
    auto add = [&](const std::string& name, const type_shape& shape, const arma::uvec& perm) {
        const std::size_t vectors = shape.columns ? shape.cols : shape.rows;
        const std::size_t r = std::min(vectors, d);
        arma::vec s(r);
        for (std::size_t i = 0; i < r; ++i) s[i] = (0.5 + arma::randu()) * std::pow(i + 1.0, -shape.decay);
        const arma::mat basis = q.cols(perm.head(r));
        const arma::mat u = adaptk::test::random_orthonormal(vectors, r);
        arma::mat w = shape.columns ? arma::mat(basis * arma::diagmat(s) * u.t()) : arma::mat(u * arma::diagmat(s) * basis.t());
        arma::vec energy(d, arma::fill::zeros);
        for (std::size_t i = 0; i < r; ++i) energy[perm[i]] = s[i] * s[i];
        model.matrices.push_back({name, std::move(w)});
        model.matrix_energy.emplace_back(shape.type, energy);
        auto& total = model.type_energy[shape.type];
        if (total.n_elem == 0) total.zeros(d);
        total += energy;
    };
    for (const auto& shape : shapes) {
        const arma::uvec perm = arma::randperm(d);
        for (std::size_t l = 0; l < layers; ++l) add("model.layers." + std::to_string(l) + "." + shape.module + ".weight", shape, perm);
    }
    add("model.embed_tokens.weight", {"", "embed", vocab, d, false, 0.5}, arma::randperm(d));
    add("lm_head.weight", {"", "head", vocab, d, false, 0.7}, arma::randperm(d));
    return model;
}

// Indices of the k largest entries.
arma::uvec top_indices(const arma::vec& values, std::size_t k) {
    return arma::uvec(arma::sort_index(values, "descend")).head(k);
}

// The closed-form universal top-k basis: Q's columns with the largest pooled energy.
arma::uvec universal_indices(const known_model& known, std::size_t k, bool trace_weighting) {
    arma::vec pooled(known.type_energy.begin()->second.n_elem, arma::fill::zeros);
    for (const auto& [name, energy] : known.type_energy) pooled += trace_weighting ? arma::vec(energy / arma::accu(energy)) : energy;
    return top_indices(pooled, k);
}

// The matrices of a checkpoint written in `dir` with one f32 q_proj of 8
// vectors: what the plan tests plan for (planned_bytes reads only shapes).
std::vector<weight_matrix> one_q_proj(const std::filesystem::path& dir, std::size_t d) {
    adaptk::test::write_model(dir, d, {{"model.layers.0.self_attn.q_proj.weight", arma::mat(8, d, arma::fill::ones)}},
                              dtype::f32);
    std::vector<std::string> notes;
    return checkpoint(dir).matrices(d, notes);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(analysis)

BOOST_DATA_TEST_CASE(known_spectrum_statistics_match_closed_form,
                     bdata::make({dtype::f64, dtype::f32}) * bdata::make({false, true}), type, trace_weighting) {
    constexpr std::size_t d = 45, k = 8;
    const known_model known = build_known_model(d, 3);
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), d, known.matrices, type);
    // Float64 files keep float64 all the way; float32 files carry 2^-24 rounding.
    const double tolerance = type == dtype::f64 ? 1e-9 : 2e-5;

    analysis_options options;
    options.k = k;
    options.trace_weighting = trace_weighting;
    options.per_matrix = true;
    const analysis_result result = run(dir.path(), options);

    const arma::uvec universal = universal_indices(known, k, trace_weighting);

    BOOST_TEST_REQUIRE(result.types.size() == 9u);
    for (const auto& t : result.types) {
        const std::string name(type_name(t.type));
        const arma::vec& e = known.type_energy.at(name);
        BOOST_TEST_CONTEXT("type " << name) {
            check_close(arma::accu(t.eigenvalues), arma::accu(e), tolerance, "energy");
            check_close(participation_ratio(t.eigenvalues), ref_pr(e), tolerance, "pr");
            BOOST_TEST(components_for(t.eigenvalues, 0.5) == ref_k(e, 0.5));
            BOOST_TEST(components_for(t.eigenvalues, 0.9) == ref_k(e, 0.9));
            check_close(energy_kept(t.eigenvalues, k), ref_kept(e, k), tolerance, "r2_type");
            check_close(universal_r2(t, k), arma::accu(e.elem(universal)) / arma::accu(e), tolerance, "r2_universal");
        }
    }

    BOOST_TEST_REQUIRE(result.matrices.size() == known.matrices.size());
    std::map<std::string, arma::uvec> type_top;
    for (const auto& [name, energy] : known.type_energy) type_top[name] = top_indices(energy, k);
    // checkpoint::matrices() orders by type then layer, which is how they were built.
    for (std::size_t m = 0; m < result.matrices.size(); ++m) {
        const auto& [type_label, e] = known.matrix_energy[m];
        const auto& got = result.matrices[m];
        BOOST_TEST_CONTEXT("matrix " << got.name) {
            BOOST_TEST(got.name == known.matrices[m].name);
            check_close(energy_kept(got.eigenvalues, k), ref_kept(e, k), tolerance, "r2_self");
            check_close(got.r2_type, arma::accu(e.elem(type_top.at(type_label))) / arma::accu(e), tolerance, "r2_type");
            check_close(got.r2_universal, arma::accu(e.elem(universal)) / arma::accu(e), tolerance, "r2_universal");
        }
    }
}

// ---- dense float64 reference on unstructured data ----
//
// Values are small integers times 2^-7, exact in every dtype and in float32
// sums, so F32, F16 and BF16 files must agree with float64 to rounding of
// the eigensolver alone.

std::vector<named_matrix> odd_model(std::size_t d) {
    arma::arma_rng::set_seed(7);
    auto exact_random = [](std::size_t rows, std::size_t cols) -> arma::mat {
        return arma::mat(arma::floor(arma::randu(rows, cols) * 255.0) - 127.0) / 128.0;
    };
    std::vector<named_matrix> matrices;
    for (int l = 0; l < 3; ++l) {
        const std::string layer = "model.layers." + std::to_string(l) + ".";
        matrices.push_back({layer + "self_attn.q_proj.weight", exact_random(d, d)});
        matrices.push_back({layer + "self_attn.k_proj.weight", exact_random(l == 1 ? 1 : 5, d)});  // a 1-row matrix
        matrices.push_back({layer + "mlp.down_proj.weight", exact_random(d, 11)});               // vectors are columns
        matrices.push_back({layer + "input_layernorm.weight", exact_random(1, d)});  // not a weight type: ignored
    }
    matrices.push_back({"model.embed_tokens.weight", exact_random(50, d)});
    return matrices;
}

// odd_model(d) written as `type` (over `shards` files) and analysed.
analysis_result run_odd_model(std::size_t d, dtype type, const analysis_options& options, std::size_t shards = 1) {
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), d, odd_model(d), type, shards);
    return run(dir.path(), options);
}

struct dense_reference {
    std::map<std::string, arma::mat> gram;  // per type, float64
};

dense_reference reference_of(const std::vector<named_matrix>& matrices, bool center) {
    std::map<std::string, arma::mat> stacked;  // vectors as rows
    for (const auto& m : matrices) {
        const auto kind = classify(m.name);
        if (!kind) continue;
        const arma::mat vectors = kind->type == weight_type::down ? arma::mat(m.w.t()) : m.w;
        auto& x = stacked[std::string(type_name(kind->type))];
        x = arma::join_cols(x, vectors);
    }
    dense_reference ref;
    for (auto& [name, x] : stacked) {
        if (center) x.each_row() -= arma::mean(x, 0);
        ref.gram[name] = x.t() * x;
    }
    return ref;
}

BOOST_DATA_TEST_CASE(matches_dense_float64_reference,
                     bdata::make({dtype::f32, dtype::f16, dtype::bf16}) * bdata::make({false, true}) *
                         bdata::make({std::size_t{1}, std::size_t{3}}),
                     type, center, shards) {
    constexpr std::size_t d = 37, k = 6;
    analysis_options options;
    options.k = k;
    options.center = center;
    options.block_vectors = 7;
    const analysis_result result = run_odd_model(d, type, options, shards);
    const dense_reference ref = reference_of(odd_model(d), center);

    arma::mat pooled(d, d, arma::fill::zeros);
    for (const auto& [name, c] : ref.gram) pooled += c;
    arma::vec pooled_values;
    arma::mat pooled_vectors;
    BOOST_TEST_REQUIRE(arma::eig_sym(pooled_values, pooled_vectors, pooled));
    const arma::mat universal = arma::fliplr(pooled_vectors).eval().head_cols(k);

    BOOST_TEST_REQUIRE(result.types.size() == ref.gram.size());
    for (const auto& t : result.types) {
        const arma::mat& c = ref.gram.at(std::string(type_name(t.type)));
        arma::vec lambda = arma::eig_sym(c);
        lambda = arma::clamp(lambda, 0.0, arma::datum::inf);
        BOOST_TEST_CONTEXT("type " << type_name(t.type)) {
            BOOST_TEST(arma::norm(t.eigenvalues - arma::sort(lambda, "descend")) <= 1e-10 * arma::norm(lambda));
            check_close(participation_ratio(t.eigenvalues), ref_pr(lambda), 1e-10, "pr");
            BOOST_TEST(components_for(t.eigenvalues, 0.9) == ref_k(lambda, 0.9));
            check_close(universal_r2(t, k), arma::trace(universal.t() * c * universal) / arma::trace(c), 1e-10,
                        "r2_universal");
        }
    }
}

BOOST_DATA_TEST_CASE(per_matrix_mode_gives_the_same_type_spectra, bdata::make({false, true}), center) {
    constexpr std::size_t d = 37;
    analysis_options options;
    options.k = 5;
    options.center = center;
    const analysis_result plain = run_odd_model(d, dtype::bf16, options);
    options.per_matrix = true;
    const analysis_result detailed = run_odd_model(d, dtype::bf16, options);
    BOOST_TEST_REQUIRE(plain.types.size() == detailed.types.size());
    for (std::size_t t = 0; t < plain.types.size(); ++t) {
        BOOST_TEST(arma::norm(plain.types[t].eigenvalues - detailed.types[t].eigenvalues) <=
                   1e-12 * arma::norm(plain.types[t].eigenvalues));
        BOOST_TEST(arma::norm(plain.types[t].universal_capture - detailed.types[t].universal_capture) <= 1e-10);
    }
}

BOOST_AUTO_TEST_CASE(float32_gaussian_data_within_float32_rounding) {
    constexpr std::size_t d = 40, k = 5;
    arma::arma_rng::set_seed(11);
    std::vector<named_matrix> matrices;
    for (int l = 0; l < 4; ++l)
        matrices.push_back({"model.layers." + std::to_string(l) + ".mlp.up_proj.weight",
                            arma::conv_to<arma::mat>::from(arma::fmat(90, d, arma::fill::randn))});
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), d, matrices, dtype::f32);
    analysis_options options;
    options.k = k;
    const analysis_result result = run(dir.path(), options);
    const arma::vec lambda = arma::eig_sym(reference_of(matrices, false).gram.at("up"));
    BOOST_TEST_REQUIRE(result.types.size() == 1u);
    // float32 products summed in float32 per block: relative error ~1e-6.
    BOOST_TEST(arma::norm(result.types[0].eigenvalues - arma::sort(lambda, "descend")) <= 1e-5 * arma::norm(lambda));
    check_close(participation_ratio(result.types[0].eigenvalues), ref_pr(lambda), 1e-5, "pr");
}

// Gaussian values rounded to BF16, so an F32 file holds exactly the same
// numbers: the BF16 file takes the accumulator's BF16 kernel where the CPU
// has it (or, forced to fp32, decode + ssyrk), the F32 file
// ssyrk. d = 50: no multiple of the kernel's 16-row panels.
std::vector<named_matrix> bf16_valued_model(std::size_t d) {
    arma::arma_rng::set_seed(12);
    auto bf16_random = [](std::size_t rows, std::size_t cols) {
        arma::mat w(rows, cols);
        for (double& value : w) value = bf16_to_float(float_to_bf16(static_cast<float>(arma::randn())));
        return w;
    };
    std::vector<named_matrix> matrices;
    for (int l = 0; l < 2; ++l) {
        const std::string layer = "model.layers." + std::to_string(l) + ".";
        matrices.push_back({layer + "self_attn.q_proj.weight", bf16_random(d, d)});
        matrices.push_back({layer + "self_attn.k_proj.weight", bf16_random(6, d)});
        matrices.push_back({layer + "mlp.up_proj.weight", bf16_random(3000, d)});  // > 4096 vectors per type: a flush
        matrices.push_back({layer + "mlp.down_proj.weight", bf16_random(d, 130)});
    }
    return matrices;
}

BOOST_DATA_TEST_CASE(bf16_checkpoint_equals_f32_checkpoint_of_the_same_values,
                     bdata::make({false, true}) * bdata::make({false, true}), per_matrix, force_fp32) {
    constexpr std::size_t d = 50;
    analysis_options options;
    options.k = 5;
    options.block_vectors = 257;
    options.per_matrix = per_matrix;
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir / "f32", d, bf16_valued_model(d), dtype::f32);
    adaptk::test::write_model(dir / "bf16", d, bf16_valued_model(d), dtype::bf16);
    analysis_options bf16_options = options;
    if (force_fp32) bf16_options.kernel = adaptk::gram_kernel::fp32;
    const analysis_result bf16 = run(dir / "bf16", bf16_options);
    const analysis_result f32 = run(dir / "f32", options);
    BOOST_TEST_REQUIRE(bf16.types.size() == f32.types.size());
    for (std::size_t t = 0; t < f32.types.size(); ++t) {
        BOOST_TEST_CONTEXT("type " << type_name(f32.types[t].type)) {
            // Both sum exact products in float32 (≤ 4096 terms), then in float64.
            BOOST_TEST(arma::norm(bf16.types[t].eigenvalues - f32.types[t].eigenvalues) <=
                       1e-5 * arma::norm(f32.types[t].eigenvalues));
            BOOST_TEST(arma::norm(bf16.types[t].universal_capture - f32.types[t].universal_capture) <= 1e-5);
        }
    }
    BOOST_TEST_REQUIRE(bf16.matrices.size() == f32.matrices.size());
    for (std::size_t m = 0; m < f32.matrices.size(); ++m) {
        BOOST_TEST_CONTEXT(f32.matrices[m].name) {
            BOOST_TEST(arma::norm(bf16.matrices[m].eigenvalues - f32.matrices[m].eigenvalues) <=
                       1e-5 * arma::norm(f32.matrices[m].eigenvalues));
            BOOST_TEST(std::abs(bf16.matrices[m].r2_type - f32.matrices[m].r2_type) <= 1e-5);
        }
    }
}

BOOST_DATA_TEST_CASE(block_size_does_not_change_results, bdata::make({1, 7, 64, 257, 1000}), block) {
    constexpr std::size_t d = 37;
    analysis_options options;
    options.k = 4;
    options.block_vectors = static_cast<std::size_t>(block);
    const analysis_result result = run_odd_model(d, dtype::bf16, options);
    const dense_reference ref = reference_of(odd_model(d), false);
    for (const auto& t : result.types) {
        const arma::vec lambda = arma::sort(arma::eig_sym(ref.gram.at(std::string(type_name(t.type)))), "descend");
        BOOST_TEST(arma::norm(t.eigenvalues - arma::clamp(lambda, 0.0, arma::datum::inf)) <= 1e-10 * arma::norm(lambda));
    }
}

BOOST_AUTO_TEST_CASE(universal_k_clamps_to_dimension_and_covers_everything) {
    constexpr std::size_t d = 37;
    analysis_options options;
    options.k = 100;
    const analysis_result result = run_odd_model(d, dtype::f32, options);
    BOOST_TEST(result.k == d);
    BOOST_TEST(result.universal_k == d);
    for (const auto& t : result.types) {
        // With the whole space as the basis, both bases keep all the energy.
        BOOST_TEST(energy_kept(t.eigenvalues, d) == 1.0, boost::test_tools::tolerance(1e-12));
        BOOST_TEST(universal_r2(t, d) == 1.0, boost::test_tools::tolerance(1e-9));
    }
}

// ---- accuracy contract, normalisation, lifetime, spill ----

namespace {

// Float32 values of a wide spread of scales and a shared offset, so float32
// accumulation error is visible; k has 3 vectors per layer in d = 40 (rank
// deficient: 34 zero eigenvalues that come out of LAPACK as ±rounding).
std::vector<named_matrix> rounding_model(std::size_t d) {
    arma::arma_rng::set_seed(41);
    auto values = [&](std::size_t rows) {
        arma::fmat w(rows, d, arma::fill::randn);
        w.each_row() %= arma::exp(arma::linspace<arma::frowvec>(0, 5, d));
        w.col(0) += 30.0f;
        return arma::conv_to<arma::mat>::from(w);
    };
    std::vector<named_matrix> matrices;
    for (int l = 0; l < 2; ++l) {
        const std::string layer = "model.layers." + std::to_string(l) + ".";
        matrices.push_back({layer + "self_attn.q_proj.weight", values(3000)});
        matrices.push_back({layer + "self_attn.k_proj.weight", values(3)});
    }
    return matrices;
}

}  // namespace

BOOST_DATA_TEST_CASE(exact_eigenvalues_stay_within_their_rounding_bound,
                     bdata::make({false, true}) * bdata::make({false, true}), center, per_matrix) {
    constexpr std::size_t d = 40;
    const auto matrices = rounding_model(d);
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), d, matrices, dtype::f32);
    analysis_options options;
    options.k = 4;
    options.center = center;
    options.per_matrix = per_matrix;
    options.block_vectors = 1000;
    const analysis_result result = run(dir.path(), options);
    const dense_reference ref = reference_of(matrices, center);
    BOOST_TEST_REQUIRE(result.types.size() == 2u);
    for (const auto& t : result.types) {
        BOOST_TEST_CONTEXT("type " << type_name(t.type)) {
            const arma::mat& c = ref.gram.at(std::string(type_name(t.type)));
            const arma::vec exact = arma::sort(arma::clamp(arma::eig_sym(c), 0.0, arma::datum::inf), "descend");
            const double error = arma::max(arma::abs(t.eigenvalues - exact));
            BOOST_TEST_MESSAGE(type_name(t.type) << ": error " << error << ", estimate " << t.rounding_estimate
                                                 << ", bound " << t.rounding_bound << ", trace " << arma::trace(c));
            BOOST_TEST(error <= t.rounding_bound);
            BOOST_TEST(t.rounding_estimate <= t.rounding_bound);
            BOOST_TEST(t.rounding_bound > 0.0);
        }
    }
}

// Σλ of a rank-deficient type can pass its trace by the clipped rounding;
// one energy is the denominator of every fraction, and none passes 1.
void check_fractions_at_most_one(const analysis_result& result) {
    for (const auto& t : result.types) {
        BOOST_TEST_CONTEXT("type " << type_name(t.type)) {
            BOOST_TEST(t.energy >= eigenvalue_sum(t.eigenvalues));
            for (std::size_t k = 1; k <= result.universal_k; ++k) BOOST_TEST(universal_r2(t, k) <= 1.0);
        }
    }
    const table spectrum = spectrum_table(result);
    const table profile = profile_table(result, {});
    for (const auto& row : spectrum.rows) BOOST_TEST(std::get<double>(row[3]) <= 1.0);
    for (const auto& row : profile.rows) BOOST_TEST(std::get<double>(row[10]) <= 1.0);  // r2_type
    for (const auto& m : result.matrices) {
        BOOST_TEST(m.r2_type <= 1.0);
        BOOST_TEST(m.r2_universal <= 1.0);
    }
}

BOOST_AUTO_TEST_CASE(energy_fractions_of_rank_deficient_types_never_pass_one) {
    constexpr std::size_t d = 40;
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), d, rounding_model(d), dtype::f32);
    analysis_options options;
    options.k = 8;
    options.universal_k = d;
    options.per_matrix = true;
    check_fractions_at_most_one(run(dir.path(), options));
}

BOOST_AUTO_TEST_CASE(energy_fractions_of_the_bundled_gguf_never_pass_one) {
    analysis_options options;
    options.universal_k = 64;
    options.per_matrix = true;
    check_fractions_at_most_one(run(adaptk::test::data_dir() / "stories260K" / "stories260K.gguf", options));
}

// The matrices share their file's mapping: a checkpoint that was a temporary
// leaves views that still read the weights.
BOOST_AUTO_TEST_CASE(analyse_reads_matrices_of_a_temporary_checkpoint) {
    const auto model = adaptk::test::data_dir() / "stories260K" / "hf" / "f32";
    std::vector<std::string> notes;
    const auto orphans = checkpoint(model).matrices(64, notes);
    analysis_options options;
    options.k = 8;
    const analysis_result orphaned = analyse(orphans, 64, options);
    const analysis_result reference = run(model, options);
    BOOST_TEST_REQUIRE(orphaned.types.size() == reference.types.size());
    for (std::size_t t = 0; t < reference.types.size(); ++t)
        BOOST_TEST(arma::approx_equal(orphaned.types[t].eigenvalues, reference.types[t].eigenvalues, "absdiff", 0.0));
}

// The spill goes where it is told, else to $TMPDIR: a directory that does not
// exist fails naming it.
BOOST_AUTO_TEST_CASE(spill_file_reads_a_matrix_back_rounded_to_float32) {
    constexpr std::size_t n = 70;  // two whole float_chunk_columns and a part
    static_assert(n % adaptk::detail::spill_file::float_chunk_columns != 0);
    adaptk::test::temp_dir dir;
    adaptk::detail::spill_file spill(n, dir.path());
    arma::arma_rng::set_seed(5);
    const arma::mat first(n, n, arma::fill::randn);
    const arma::mat second = 1e-3 * arma::mat(n, n, arma::fill::randn);
    spill.write(first);
    const std::size_t slot = spill.write(second);
    arma::fmat got(n, n);
    spill.read_float(slot, got.memptr());
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n * n; ++i) wrong += got[i] != static_cast<float>(second[i]);
    BOOST_TEST(wrong == 0u);
}

BOOST_AUTO_TEST_CASE(spill_file_goes_to_the_spill_directory_else_tmpdir) {
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), 37, odd_model(37), dtype::f32);
    const checkpoint model(dir.path());
    std::vector<std::string> notes;
    const auto matrices = model.matrices(37, notes);
    auto fails_naming = [&](const analysis_options& options, const std::string& where) {
        BOOST_CHECK_EXCEPTION(analyse(matrices, 37, options), std::system_error, [&](const std::system_error& e) {
            return std::string(e.what()).find(where) != std::string::npos;
        });
    };
    analysis_options options;
    options.spill_directory = dir / "no-such-spill-dir";
    fails_naming(options, (dir / "no-such-spill-dir").string());
    BOOST_TEST(spill_directory(options) == dir / "no-such-spill-dir");
    BOOST_TEST(spill_bytes(matrices, 37, options) == 4u * 37u * 37u * 8u);  // q, k, down, embed

    options.spill_directory.clear();
    {
        const adaptk::test::scoped_env tmpdir("TMPDIR", (dir / "no-such-tmpdir").string());
        fails_naming(options, (dir / "no-such-tmpdir").string());
    }
    const adaptk::test::scoped_env tmpdir("TMPDIR", dir.path().string());
    BOOST_CHECK_NO_THROW(analyse(matrices, 37, options));
}

// ---- the randomized method ----

// Known spectra again, in d = 96 with a 64-column Krylov basis (k = 6,
// ℓ = 16, q = 2): not the whole space, so the Ritz values are approximations.
BOOST_AUTO_TEST_CASE(rsvd_statistics_are_within_their_bounds_of_the_closed_form) {
    constexpr std::size_t d = 96, k = 6;
    const known_model known = build_known_model(d, 2);
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), d, known.matrices, dtype::f64);
    analysis_options options;
    options.how = method::rsvd;
    options.k = k;
    options.randomized.seed = 5;
    const analysis_result result = run(dir.path(), options);
    BOOST_TEST(result.passes == 5u);  // q + 2, and one for C_u alone: its captures still moved
    BOOST_TEST(result.sketch_size == 16u);
    BOOST_TEST(result.universal_k == k);
    const arma::uvec universal = universal_indices(known, k, false);
    BOOST_TEST_REQUIRE(result.types.size() == 9u);
    for (const auto& t : result.types) {
        const std::string name(type_name(t.type));
        const arma::vec& e = known.type_energy.at(name);
        BOOST_TEST_CONTEXT("type " << name) {
            BOOST_TEST_REQUIRE(t.eigenvalues.n_elem == k);
            BOOST_TEST(!has_full_spectrum(t, d));
            check_close(t.energy, arma::accu(e), 1e-12, "energy (streamed exactly)");
            // Ritz values sit below the eigenvalues, within their bounds.
            const arma::vec exact = arma::sort(e, "descend");
            for (std::size_t i = 0; i < k; ++i) {
                BOOST_TEST(t.eigenvalues[i] <= exact[i] * (1 + 1e-12));
                BOOST_TEST(exact[i] - t.eigenvalues[i] <= t.eigenvalue_errors[i] * (1 + 1e-9) + 1e-12 * exact[0]);
            }
            const double r2_error = ref_kept(e, k) - arma::accu(t.eigenvalues) / t.energy;
            BOOST_TEST(r2_error <= arma::accu(t.eigenvalue_errors) / t.energy + 1e-12);
            // The estimate is not a bound, but on this fixture it covers the true error.
            BOOST_TEST(r2_error <= arma::accu(t.eigenvalue_changes) / t.energy + 1e-12);
            // The universal capture is exact for the returned basis, which is near the best one.
            BOOST_TEST(std::abs(universal_r2(t, k) - arma::accu(e.elem(universal)) / arma::accu(e)) <= 0.02);
        }
    }
}

// With ℓ·(q + 2) ≥ d the Krylov basis is the whole space: exact results.
BOOST_DATA_TEST_CASE(rsvd_with_the_whole_space_matches_exact, bdata::make({false, true}), trace_weighting) {
    constexpr std::size_t d = 37, k = 5;
    analysis_options options;
    options.k = k;
    options.trace_weighting = trace_weighting;
    const analysis_result exact = run_odd_model(d, dtype::f32, options);
    options.how = method::rsvd;
    options.randomized.oversample = 8;  // ℓ = 13, 4 blocks > 37
    const analysis_result randomized = run_odd_model(d, dtype::f32, options);
    BOOST_TEST_REQUIRE(randomized.types.size() == exact.types.size());
    for (std::size_t t = 0; t < exact.types.size(); ++t) {
        const auto &a = exact.types[t], &b = randomized.types[t];
        BOOST_TEST_CONTEXT("type " << type_name(a.type)) {
            check_close(b.energy, a.energy, 1e-6, "energy");
            BOOST_TEST(arma::norm(b.eigenvalues - a.eigenvalues.head(k)) <= 1e-5 * arma::norm(a.eigenvalues));
            BOOST_TEST(std::abs(universal_r2(b, k) - universal_r2(a, k)) <= 1e-6);
            BOOST_TEST(arma::max(b.eigenvalue_changes) == 0.0);
        }
    }
}

BOOST_AUTO_TEST_CASE(rsvd_refuses_per_matrix_statistics_and_centering) {
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), 4, {{"model.layers.0.self_attn.q_proj.weight", arma::mat(4, 4, arma::fill::eye)}},
                              dtype::f32);
    analysis_options options;
    options.how = method::rsvd;
    options.per_matrix = true;
    BOOST_CHECK_THROW(run(dir.path(), options), std::invalid_argument);
    options.per_matrix = false;
    options.center = true;
    BOOST_CHECK_THROW(run(dir.path(), options), std::invalid_argument);
}

// `compact`'s tensors behind a hole: a leading unanalysed U8 tensor of
// `hole_bytes` that the file system stores as a hole (no disk blocks), so
// every analysed tensor sits past that offset. Same config.json.
void write_behind_a_hole(const std::filesystem::path& compact, const std::filesystem::path& sparse,
                         std::uint64_t hole_bytes) {
    std::filesystem::create_directories(sparse);
    std::filesystem::copy_file(compact / "config.json", sparse / "config.json");
    const auto image = adaptk::test::read_bytes(compact / "model.safetensors");
    const auto parsed = parse_safetensors(image, "compact");
    std::string header = R"({"extra.blob":{"dtype":"U8","shape":[)" + std::to_string(hole_bytes) +
                         R"(],"data_offsets":[0,)" + std::to_string(hole_bytes) + "]}";
    for (const auto& t : parsed.tensors)
        header += ",\"" + t.name + "\":{\"dtype\":\"" + std::string(dtype_name(t.type)) + "\",\"shape\":" +
                  dims_list(t.shape) + ",\"data_offsets\":[" + std::to_string(hole_bytes + t.begin) + "," +
                  std::to_string(hole_bytes + t.end) + "]}";
    header += "}";
    adaptk::test::write_bytes(sparse / "model.safetensors", adaptk::test::safetensors_image(header));
    const std::uint64_t data_at = 8 + header.size();
    std::filesystem::resize_file(sparse / "model.safetensors", data_at + hole_bytes);
    std::ofstream out(sparse / "model.safetensors", std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(static_cast<std::streamoff>(data_at + hole_bytes));
    out.write(reinterpret_cast<const char*>(image.data() + parsed.data_offset),
              static_cast<std::streamsize>(parsed.data_bytes));
    BOOST_TEST_REQUIRE(out.good());
}

// 32-bit targets read files past 4 GiB through windows and 64-bit offsets:
// the analysed matrices (rows and down_proj's columns) all lie beyond the
// 4 GiB mark, and every table number equals the compact file's.
BOOST_AUTO_TEST_CASE(matrices_past_4_gib_in_a_sparse_file_give_the_compact_files_results,
                     *boost::unit_test::precondition(adaptk::test::mmap_reaches_past_4_gib)) {
    constexpr std::size_t d = 37;
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir / "compact", d, odd_model(d), dtype::bf16);
    const std::uint64_t hole_bytes = (std::uint64_t{9} << 29) + 12'345;  // 4.5 GiB and an odd tail
    write_behind_a_hole(dir / "compact", dir / "sparse", hole_bytes);

    checkpoint sparse(dir / "sparse");
    std::vector<std::string> notes;
    const auto matrices = sparse.matrices(d, notes);
    BOOST_TEST_REQUIRE(sparse.files()[0].source().size() > (std::uint64_t{1} << 32));
    for (const auto& m : matrices) BOOST_TEST(m.file_offset > (std::uint64_t{1} << 32), m.name);

    analysis_options options;
    options.per_matrix = true;
    options.block_vectors = 7;
    const analysis_result far = analyse(matrices, d, options);
    const analysis_result near = run(dir / "compact", options);
    BOOST_TEST_REQUIRE(far.types.size() == near.types.size());
    for (std::size_t t = 0; t < far.types.size(); ++t) {
        BOOST_TEST_CONTEXT("type " << type_name(far.types[t].type)) {
            BOOST_TEST(far.types[t].vectors == near.types[t].vectors);
            BOOST_TEST(arma::approx_equal(far.types[t].eigenvalues, near.types[t].eigenvalues, "absdiff", 0.0));
            BOOST_TEST(arma::approx_equal(far.types[t].universal_capture, near.types[t].universal_capture, "absdiff", 0.0));
        }
    }
    BOOST_TEST_REQUIRE(far.matrices.size() == near.matrices.size());
    for (std::size_t m = 0; m < far.matrices.size(); ++m) {
        BOOST_TEST(far.matrices[m].r2_type == near.matrices[m].r2_type, far.matrices[m].name);
        BOOST_TEST(far.matrices[m].r2_universal == near.matrices[m].r2_universal, far.matrices[m].name);
    }
}

BOOST_AUTO_TEST_CASE(planned_bytes_grow_as_8_d_squared_for_exact_and_d_for_rsvd) {
    auto plan = [](std::size_t d, method how) {
        adaptk::test::temp_dir dir;
        analysis_options options;
        options.how = how;
        options.block_vectors = 8;
        return static_cast<double>(planned_bytes(one_q_proj(dir.path(), d), d, options));
    };
    // Exact: the float64 d×d Gram is the only d² term (8 bytes per entry; the
    // float32 scratch is a panel, linear in d), so the second difference over
    // steps of h is 2·8·h², from d = 2048 on, where the universal phase is the
    // larger one at every step. rsvd is linear in d once (q + 2)ℓ < d.
    const double h = 1024;
    const double second_difference =
        plan(4096, method::exact) - 2 * plan(3072, method::exact) + plan(2048, method::exact);
    BOOST_TEST(second_difference == 2 * 8 * h * h, boost::test_tools::tolerance(1e-9));
    const double rsvd_ratio = (plan(2048, method::rsvd) - plan(1024, method::rsvd)) /
                              (plan(1024, method::rsvd) - plan(512, method::rsvd));
    BOOST_TEST(rsvd_ratio == 2.0, boost::test_tools::tolerance(0.05));
}

BOOST_AUTO_TEST_CASE(rejects_empty_input_and_zero_dimension) {
    BOOST_CHECK_THROW(analyse({}, 8, {}), std::invalid_argument);
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), 4, {{"model.layers.0.self_attn.q_proj.weight", arma::mat(4, 4, arma::fill::eye)}},
                              dtype::f32);
    checkpoint model(dir.path());
    std::vector<std::string> notes;
    BOOST_CHECK_THROW(analyse(model.matrices(4, notes), 0, {}), std::invalid_argument);
}

// ---- compare: two checkpoints against dense float64 references ----

namespace {

// odd_model(d) with every value moved by -2..2 units of 2^-7 (B of compare):
// still small integers times 2^-7, so float32 Gram sums stay exact.
std::vector<named_matrix> perturbed(std::vector<named_matrix> matrices) {
    arma::arma_rng::set_seed(11);
    for (auto& m : matrices) m.w += arma::mat(arma::floor(arma::randu(m.w.n_rows, m.w.n_cols) * 5.0) - 2.0) / 128.0;
    return matrices;
}

std::vector<weight_matrix> matrices_of(const checkpoint& model, std::uint64_t d) {
    std::vector<std::string> notes;
    return model.matrices(d, notes);
}

double cell_number(const table& t, std::size_t row, const std::string& column) {
    const auto at = std::find(t.columns.begin(), t.columns.end(), column);
    BOOST_TEST_REQUIRE((at != t.columns.end()), "no column " << column);
    const cell& c = t.rows.at(row).at(static_cast<std::size_t>(at - t.columns.begin()));
    if (const auto* i = std::get_if<std::int64_t>(&c)) return static_cast<double>(*i);
    return std::get<double>(c);
}

}  // namespace

BOOST_AUTO_TEST_CASE(compare_matches_dense_float64_reference) {
    constexpr std::size_t d = 19, k = 4;
    const auto original = odd_model(d), moved = perturbed(original);
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir / "a", d, original, dtype::f32);
    adaptk::test::write_model(dir / "b", d, moved, dtype::f32);
    const checkpoint model_a(dir / "a"), model_b(dir / "b");
    analysis_options options;
    options.k = k;
    options.block_vectors = 5;  // blocks cut the matrices, columns of down_proj included
    const auto a = matrices_of(model_a, d), b = matrices_of(model_b, d);
    const auto differences = difference_energies(a, "a", b, "b", options);
    const table t = compare_table(analyse(a, d, options), analyse(b, d, options), differences, {0.5, 0.9, 0.99});

    const dense_reference ref_a = reference_of(original, false), ref_b = reference_of(moved, false);
    std::map<std::string, std::pair<double, double>> energies;  // type -> (‖A‖², ‖A − B‖²)
    for (std::size_t i = 0; i < original.size(); ++i)
        if (const auto kind = classify(original[i].name)) {
            auto& [of_a, of_difference] = energies[std::string(type_name(kind->type))];
            of_a += arma::accu(arma::square(original[i].w));
            of_difference += arma::accu(arma::square(original[i].w - moved[i].w));
        }
    BOOST_TEST_REQUIRE(t.rows.size() == energies.size());
    BOOST_TEST(t.columns.back() == "k99_change");
    for (std::size_t row = 0; row < t.rows.size(); ++row) {
        const std::string type = std::get<std::string>(t.rows[row][0]);
        const arma::vec la = arma::clamp(arma::eig_sym(ref_a.gram.at(type)), 0.0, arma::datum::inf);
        const arma::vec lb = arma::clamp(arma::eig_sym(ref_b.gram.at(type)), 0.0, arma::datum::inf);
        BOOST_TEST_CONTEXT("type " << type) {
            const auto& [of_a, of_difference] = energies.at(type);
            BOOST_TEST(of_difference > 0.0);
            check_close(cell_number(t, row, "difference_energy"), of_difference / of_a, 1e-12, "difference_energy");
            check_close(cell_number(t, row, "pr_a"), ref_pr(la), 1e-10, "pr_a");
            check_close(cell_number(t, row, "pr_b"), ref_pr(lb), 1e-10, "pr_b");
            BOOST_TEST(std::abs(cell_number(t, row, "pr_change") - (ref_pr(lb) - ref_pr(la))) <= 1e-9 * ref_pr(la));
            for (const auto& [column, fraction] : std::vector<std::pair<std::string, double>>{
                     {"k50", 0.5}, {"k90", 0.9}, {"k99", 0.99}}) {
                BOOST_TEST(cell_number(t, row, column + "_a") == double(ref_k(la, fraction)), column);
                BOOST_TEST(cell_number(t, row, column + "_b") == double(ref_k(lb, fraction)), column);
                BOOST_TEST(cell_number(t, row, column + "_change") ==
                               double(ref_k(lb, fraction)) - double(ref_k(la, fraction)),
                           column);
            }
            BOOST_TEST(std::abs(cell_number(t, row, "r2_type_change") - (ref_kept(lb, k) - ref_kept(la, k))) <= 1e-10);
        }
    }
}

BOOST_AUTO_TEST_CASE(compare_refuses_unlike_names_and_shapes_naming_the_tensor) {
    constexpr std::size_t d = 8;
    const auto original = odd_model(d);
    auto renamed = original;
    renamed[0].name = "model.layers.0.self_attn.o_proj.weight";
    auto reshaped = original;
    reshaped[1].w = arma::mat(3, d, arma::fill::ones);  // k_proj of layer 0: 5 rows in A
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir / "a", d, original, dtype::f32);
    adaptk::test::write_model(dir / "renamed", d, renamed, dtype::f32);
    adaptk::test::write_model(dir / "reshaped", d, reshaped, dtype::f32);
    const checkpoint a(dir / "a"), b_renamed(dir / "renamed"), b_reshaped(dir / "reshaped");
    auto fails_with = [&](const checkpoint& b, const std::string& model_b, const std::string& message) {
        BOOST_CHECK_EXCEPTION(difference_energies(matrices_of(a, d), "A", matrices_of(b, d), model_b, {}), format_error,
                              [&](const format_error& e) {
                                  BOOST_TEST_INFO("what() = " << e.what());
                                  return std::string(e.what()) == message;
                              });
    };
    fails_with(b_renamed, "B",
               "B: tensor 'model.layers.0.self_attn.q_proj.weight': is not among its analysed matrices, but A has it "
               "(compare needs the same tensor names; a tensor left out has a note above)");
    fails_with(b_reshaped, "B",
               "B: tensor 'model.layers.0.self_attn.k_proj.weight': shape 3x8 differs from 5x8 in A");
    // B's extra tensor, once A's are all matched, is named against A.
    BOOST_CHECK_EXCEPTION(difference_energies(matrices_of(b_renamed, d), "B", matrices_of(a, d), "A", {}), format_error,
                          [](const format_error& e) {
                              return std::string(e.what()).starts_with("A: tensor 'model.layers.0.self_attn.o_proj.weight'");
                          });
}

BOOST_AUTO_TEST_SUITE_END()

// ---- per-matrix spectra against plain float64 ----
//
// The layers table's columns recomputed from scratch: each matrix's vectors
// read into a float64 d×n matrix X, G = X·Xᵀ, eig_sym; the type's and the
// universal top-k bases from the summed float64 Grams.

namespace {

struct layers_reference {
    std::vector<arma::vec> eigenvalues;  // per matrix, descending
    std::vector<double> r2_type, r2_universal;
};

arma::mat top_basis(const arma::mat& c, std::size_t k) {
    arma::vec values;
    arma::mat vectors;
    if (!arma::eig_sym(values, vectors, c)) throw std::runtime_error("eig_sym failed");
    return arma::fliplr(vectors).eval().head_cols(k);
}

layers_reference layers_reference_of(const std::vector<weight_matrix>& matrices, std::uint64_t d, std::size_t k) {
    std::vector<arma::mat> grams;
    std::map<weight_type, arma::mat> type_grams;
    arma::mat pooled(d, d, arma::fill::zeros);
    for (const auto& matrix : matrices) {
        arma::mat x(d, matrix.vector_count());
        vector_stream<double>(matrix, matrix.vector_count()).next(x.memptr());
        grams.push_back(x * x.t());
        auto& type_gram = type_grams[matrix.kind.type];
        if (type_gram.n_elem == 0) type_gram.zeros(d, d);
        type_gram += grams.back();
        pooled += grams.back();
    }
    std::map<weight_type, arma::mat> type_bases;
    for (const auto& [type, c] : type_grams) type_bases[type] = top_basis(c, k);
    const arma::mat universal = top_basis(pooled, k);
    layers_reference ref;
    for (std::size_t m = 0; m < matrices.size(); ++m) {
        const arma::mat& g = grams[m];
        ref.eigenvalues.push_back(arma::sort(arma::clamp(arma::eig_sym(g), 0.0, arma::datum::inf), "descend"));
        const arma::mat& basis = type_bases.at(matrices[m].kind.type);
        ref.r2_type.push_back(arma::trace(basis.t() * g * basis) / arma::trace(g));
        ref.r2_universal.push_back(arma::trace(universal.t() * g * universal) / arma::trace(g));
    }
    return ref;
}

// Every layers column within 1e-4 relative of the float64 reference, K ±1.
void check_layers(const std::filesystem::path& dir, const analysis_options& options) {
    checkpoint model(dir);
    std::vector<std::string> notes;
    const auto d = model.hidden_size(std::nullopt, notes);
    const auto matrices = model.matrices(d, notes);
    const analysis_result result = analyse(matrices, d, options);
    const layers_reference ref = layers_reference_of(matrices, d, result.k);
    BOOST_TEST_REQUIRE(result.matrices.size() == matrices.size());
    for (std::size_t m = 0; m < matrices.size(); ++m) {
        const matrix_spectrum& got = result.matrices[m];
        const arma::vec& lambda = ref.eigenvalues[m];
        BOOST_TEST_CONTEXT(got.name) {
            check_close(arma::accu(got.eigenvalues), arma::accu(lambda), 1e-4, "energy");
            check_close(participation_ratio(got.eigenvalues), ref_pr(lambda), 1e-4, "pr");
            for (const double p : {0.5, 0.9}) {
                const auto k_got = static_cast<double>(components_for(got.eigenvalues, p));
                BOOST_TEST(std::abs(k_got - static_cast<double>(ref_k(lambda, p))) <= 1.0, "k at " << p);
            }
            check_close(energy_kept(got.eigenvalues, result.k), ref_kept(lambda, result.k), 1e-4, "r2_self");
            check_close(got.r2_type, ref.r2_type[m], 1e-4, "r2_type");
            check_close(got.r2_universal, ref.r2_universal[m], 1e-4, "r2_universal");
        }
    }
}

const auto precisions = bdata::make({eig_precision::float32, eig_precision::float64});
const auto solver_thread_counts = bdata::make({std::size_t{0}, std::size_t{1}, std::size_t{2}});

}  // namespace

BOOST_TEST_DONT_PRINT_LOG_VALUE(adaptk::eig_precision)

BOOST_AUTO_TEST_SUITE(analysis_per_matrix)

BOOST_DATA_TEST_CASE(layers_of_the_bundled_model_match_float64, precisions * solver_thread_counts, precision, threads) {
    analysis_options options;
    options.k = 8;
    options.per_matrix = true;
    options.matrix_precision = precision;
    options.solver_threads = threads;
    check_layers(adaptk::test::data_dir() / "llama-2-tiny-random" / "hf" / "bf16", options);
}

// Odd shapes at a d where the solves are not trivial: a square q with a
// decaying spectrum, a 1-row and a 17-row k (the small XᵀX path), a down_proj
// read by columns, an embedding with more vectors than d; BF16 values.
BOOST_DATA_TEST_CASE(layers_of_odd_shapes_match_float64, precisions * solver_thread_counts, precision, threads) {
    constexpr std::size_t d = 131;
    arma::arma_rng::set_seed(3);
    std::vector<named_matrix> matrices;
    for (int l = 0; l < 3; ++l) {
        const std::string layer = "model.layers." + std::to_string(l) + ".";
        const arma::vec decay = arma::exp(-arma::regspace(0.0, static_cast<double>(d - 1)) / (10.0 + 20.0 * l));
        matrices.push_back({layer + "self_attn.q_proj.weight", arma::mat(arma::randn(d, d) * arma::diagmat(decay))});
        matrices.push_back({layer + "self_attn.k_proj.weight", arma::mat(arma::randn(l == 1 ? 1 : 17, d))});
        matrices.push_back({layer + "mlp.down_proj.weight", arma::mat(arma::randn(d, 301))});
    }
    matrices.push_back({"model.embed_tokens.weight", arma::mat(arma::randn(409, d))});
    adaptk::test::temp_dir dir;
    adaptk::test::write_model(dir.path(), d, matrices, dtype::bf16);
    analysis_options options;
    options.k = 9;
    options.per_matrix = true;
    options.block_vectors = 64;
    options.matrix_precision = precision;
    options.solver_threads = threads;
    check_layers(dir.path(), options);
}

// Each solving thread (the streaming one when there are none) touches its
// own OpenBLAS buffers, 1.5 MiB; the precision of the solves changes nothing.
// At d = 2048 phase 1 (the 32 MiB accumulator) stays above the projection
// pass's blocks, one per thread; at small d those are the peak.
BOOST_AUTO_TEST_CASE(solver_threads_add_their_blas_buffers_to_the_plan_and_parking_slots_to_the_spill) {
    constexpr std::size_t d = 2048;
    adaptk::test::temp_dir dir;
    const auto matrices = one_q_proj(dir.path(), d);
    analysis_options types_only;
    analysis_options options;
    options.per_matrix = true;
    options.solver_threads = 0;
    const std::uint64_t inline_solves = planned_bytes(matrices, d, options);
    BOOST_TEST(inline_solves > planned_bytes(matrices, d, types_only));
    for (const std::size_t threads : {0, 1, 3})
        for (const auto precision : {eig_precision::float32, eig_precision::float64}) {
            options.solver_threads = threads;
            options.matrix_precision = precision;
            const std::uint64_t extra_threads = std::max<std::size_t>(threads, 1) - 1;
            BOOST_TEST(planned_bytes(matrices, d, options) == inline_solves + extra_threads * (3u << 19));
            // the type slot and a parking slot per solver thread but one
            BOOST_TEST(spill_bytes(matrices, d, options) == std::max<std::size_t>(threads, 1) * 8 * d * d);
        }
}


// Combining Grams (ranks, state files) holds a received packed state and the
// accumulator unpacked from it beside the type's, 12·d² B; a partitioned
// per-matrix run as much while it solves a matrix (its float64 Gram and
// ssyevd's float32 copy); rank 0 a received share of C_u beside C_u.
BOOST_AUTO_TEST_CASE(combined_and_partitioned_runs_plan_twelve_d_squared_beside_the_accumulator) {
    constexpr std::uint64_t d = 1024;  // phase 1 above the projection pass (the test above)
    adaptk::test::temp_dir dir;
    const auto matrices = one_q_proj(dir.path(), d);
    const auto everything = [](std::size_t) { return true; };
    for (const bool per_matrix : {false, true}) {
        analysis_options alone;
        alone.per_matrix = per_matrix;
        const std::uint64_t single = planned_bytes(matrices, d, alone);
        analysis_options combined = alone;
        combined.combine = [](std::size_t, gram_accumulator&) {};
        BOOST_TEST(planned_bytes(matrices, d, combined) == single + 12 * d * d);
        combined.owners.meet = [](arma::mat&) { return true; };  // phase 2 stays below phase 1
        BOOST_TEST(planned_bytes(matrices, d, combined) == single + 12 * d * d);
        analysis_options partitioned = alone;
        partitioned.reads = everything;
        BOOST_TEST(planned_bytes(matrices, d, partitioned) == single + (per_matrix ? 12 * d * d : 0));
    }
}

BOOST_AUTO_TEST_SUITE_END()
