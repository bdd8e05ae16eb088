#define BOOST_TEST_MODULE synth
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "adaptk/analysis.hpp"
#include "adaptk/checkpoint.hpp"
#include "adaptk/spectrum.hpp"
#include "cli_support.hpp"

// adaptk-synth, run as a user would: the checkpoint it writes must be a
// Llama-shaped model our reader accepts, deterministic per seed, and its types
// must carry the spectra it was asked for.

using namespace adaptk;
using adaptk::test::run_program;
namespace fs = std::filesystem;

namespace {

fs::path synth_binary() {
    const char* path = std::getenv("ADAPTK_SYNTH");
    if (path == nullptr || *path == '\0') throw std::runtime_error("ADAPTK_SYNTH is not set; run with 'meson test'");
    return path;
}

analysis_result analyse_model(const fs::path& dir) {
    const checkpoint model(dir);
    std::vector<std::string> notes;
    const auto d = model.hidden_size(std::nullopt, notes);
    analysis_options options;
    options.k = 8;
    return analyse(model.matrices(d, notes), d, options);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(synth)

BOOST_AUTO_TEST_CASE(tiny_preset_is_a_llama_checkpoint_with_every_type) {
    adaptk::test::temp_dir dir;
    const auto run = run_program(synth_binary(), {(dir / "m").string(), "--preset", "tiny", "--quiet"});
    BOOST_TEST_REQUIRE(run.status == 0, run.err);
    const checkpoint model(dir / "m");
    BOOST_TEST(model.config().hidden_size.value_or(0) == 64u);
    std::vector<std::string> notes;
    const auto matrices = model.matrices(64, notes);
    BOOST_TEST(notes.empty());
    BOOST_TEST(matrices.size() == 3u * 7u + 2u);  // 3 layers of q k v o gate up down, embed, head
    for (const auto& m : matrices) {
        BOOST_TEST((m.type == dtype::f32));
        if (m.kind.type == weight_type::down) BOOST_TEST((m.rows == 64u && m.cols == 172u && !m.vectors_are_rows));
        if (m.kind.type == weight_type::k) BOOST_TEST((m.rows == 32u && m.cols == 64u));
    }
}

BOOST_AUTO_TEST_CASE(same_seed_same_bytes_other_seed_other_bytes) {
    adaptk::test::temp_dir dir;
    for (const auto& [name, seed] : {std::pair{"a", "7"}, {"b", "7"}, {"c", "8"}})
        BOOST_TEST_REQUIRE(run_program(synth_binary(), {(dir / name).string(), "--seed", seed, "--quiet"}).status == 0);
    const auto a = adaptk::test::read_text(dir / "a" / "model.safetensors");
    BOOST_TEST((a == adaptk::test::read_text(dir / "b" / "model.safetensors")));
    BOOST_TEST((a != adaptk::test::read_text(dir / "c" / "model.safetensors")));
}

BOOST_AUTO_TEST_CASE(steeper_decay_gives_a_more_compressible_type) {
    // Default decays: k 1.0 is the steepest, gate 0.2 the flattest.
    adaptk::test::temp_dir dir;
    BOOST_TEST_REQUIRE(run_program(synth_binary(), {(dir / "m").string(), "--layers", "6", "--quiet"}).status == 0);
    const analysis_result result = analyse_model(dir / "m");
    double pr_k = 0, pr_gate = 0;
    for (const auto& t : result.types) {
        if (t.type == weight_type::k) pr_k = participation_ratio(t.eigenvalues);
        if (t.type == weight_type::gate) pr_gate = participation_ratio(t.eigenvalues);
    }
    BOOST_TEST(pr_k > 0.0);
    BOOST_TEST(pr_gate > 3 * pr_k);
}

BOOST_AUTO_TEST_CASE(flat_decay_recovers_a_flat_spectrum_and_sharding_changes_nothing) {
    adaptk::test::temp_dir dir;
    const std::vector<std::string> common{"--decay", "power:0", "--layers", "4", "--quiet"};
    auto args = [&](const std::string& out, std::vector<std::string> extra) {
        std::vector<std::string> all{(dir / out).string()};
        all.insert(all.end(), common.begin(), common.end());
        all.insert(all.end(), extra.begin(), extra.end());
        return all;
    };
    BOOST_TEST_REQUIRE(run_program(synth_binary(), args("one", {})).status == 0);
    BOOST_TEST_REQUIRE(run_program(synth_binary(), args("three", {"--shards", "3"})).status == 0);
    const analysis_result one = analyse_model(dir / "one");
    const analysis_result three = analyse_model(dir / "three");
    BOOST_TEST_REQUIRE(one.types.size() == three.types.size());
    for (std::size_t t = 0; t < one.types.size(); ++t) {
        BOOST_TEST(arma::approx_equal(one.types[t].eigenvalues, three.types[t].eigenvalues, "reldiff", 1e-12));
        // s_i = 1 for every i: the pooled Gram is near a multiple of the identity,
        // so PR is a sizeable fraction of d = 64 (Gaussian sampling spreads it).
        BOOST_TEST(participation_ratio(one.types[t].eigenvalues) > 0.3 * 64);
    }
}

BOOST_AUTO_TEST_CASE(rank_r_leaves_every_type_exactly_r_nonzero_eigenvalues) {
    // Every layer of a type shares B_t's first r columns, so the type's Gram
    // has rank r. The rest is rounding: the Gram is accumulated from float32
    // products (~3e-8 of the largest here), far below the r-th eigenvalue
    // (≥ s_r²/s_1² = 8^-2 for k, the steepest decay).
    constexpr std::size_t r = 8;
    adaptk::test::temp_dir dir;
    const auto run = run_program(synth_binary(), {(dir / "m").string(), "--rank", std::to_string(r), "--quiet"});
    BOOST_TEST_REQUIRE(run.status == 0, run.err);
    for (const auto& t : analyse_model(dir / "m").types) {
        BOOST_TEST_CONTEXT(type_name(t.type)) {
            const arma::vec sorted = arma::sort(t.eigenvalues, "descend");
            BOOST_TEST_REQUIRE(sorted.n_elem == 64u);
            BOOST_TEST(sorted[r - 1] > 1e-3 * sorted[0]);
            BOOST_TEST(sorted[r] < 1e-6 * sorted[0]);
        }
    }
    const auto too_large = run_program(synth_binary(), {(dir / "x").string(), "--rank", "65", "--quiet"});
    BOOST_TEST(too_large.status == 2);
    BOOST_TEST(too_large.err.find("--rank: 65 exceeds the hidden size 64") != std::string::npos, too_large.err);
}

BOOST_AUTO_TEST_CASE(bad_flags_exit_2_with_one_line) {
    adaptk::test::temp_dir dir;
    for (const std::vector<std::string>& bad : {std::vector<std::string>{(dir / "m").string(), "--dtype", "f8"},
                                                 {(dir / "m").string(), "--layers", "x"},
                                                 {(dir / "m").string(), "--bogus"}}) {
        const auto run = run_program(synth_binary(), bad);
        BOOST_TEST(run.status == 2);
        BOOST_TEST(run.err_lines().size() == 1u, run.err);
    }
}

// The published shapes (each family's config.json): hidden, intermediate,
// key/value width (kv heads × head dim), layers; vocabulary 128256 for all.
struct published_shape {
    const char* preset;
    std::uint64_t hidden, ffn, kv, layers;
};
const published_shape llama3_shapes[] = {
    {"llama-3-8b", 4096, 14336, 1024, 32},
    {"llama-3-70b", 8192, 28672, 1024, 80},
    {"llama-3.1-405b", 16384, 53248, 1024, 126},
};

BOOST_AUTO_TEST_CASE(llama3_presets_have_the_published_shapes_and_sizes) {
    constexpr std::uint64_t vocab = 128256;
    for (const auto& shape : llama3_shapes) {
        for (const std::uint64_t layers : {shape.layers, std::uint64_t{1}}) {
            BOOST_TEST_CONTEXT(shape.preset << " with " << layers << " layers") {
                const auto run = run_program(synth_binary(), {"unused-dir", "--preset", shape.preset, "--layers",
                                                              std::to_string(layers), "--dry-run"});
                BOOST_TEST_REQUIRE(run.status == 0, run.err);
                const auto config = nlohmann::json::parse(run.out);
                BOOST_TEST(config["hidden_size"].get<std::uint64_t>() == shape.hidden);
                BOOST_TEST(config["intermediate_size"].get<std::uint64_t>() == shape.ffn);
                BOOST_TEST(config["num_hidden_layers"].get<std::uint64_t>() == layers);
                BOOST_TEST(config["vocab_size"].get<std::uint64_t>() == vocab);
                BOOST_TEST(config["num_key_value_heads"].get<std::uint64_t>() * config["head_dim"].get<std::uint64_t>() ==
                           shape.kv);
                BOOST_TEST(config["torch_dtype"].get<std::string>() == "bfloat16");
                // BF16 bytes: embed and head (V·d each), per layer q and o (d²), k and v
                // (kv·d), gate up down (ffn·d), two norms (d); the final norm (d).
                const std::uint64_t d = shape.hidden;
                const std::uint64_t elements =
                    2 * vocab * d + layers * (2 * d * d + 2 * shape.kv * d + 3 * shape.ffn * d + 2 * d) + d;
                const std::string expected = "would write " + std::to_string(3 + 9 * layers) + " tensors, " +
                                             std::to_string(2 * elements) + " bytes";
                BOOST_TEST(run.err.find(expected) != std::string::npos, run.err);
                BOOST_TEST(!fs::exists("unused-dir"));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(unknown_preset_lists_the_known_ones) {
    const auto run = run_program(synth_binary(), {"unused-dir", "--preset", "llama-4"});
    BOOST_TEST(run.status == 2);
    BOOST_TEST(run.err.find("'llama-4' is not one of tiny, tinyllama-1.1b, llama-3-8b, llama-3-70b, llama-3.1-405b") !=
                   std::string::npos,
               run.err);
}

BOOST_AUTO_TEST_SUITE_END()
