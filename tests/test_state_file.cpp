#define BOOST_TEST_MODULE state_file
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <span>
#include <limits>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adaptk/analysis.hpp"
#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/state_file.hpp"
#include "model_fixture.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
using namespace adaptk;
BOOST_TEST_DONT_PRINT_LOG_VALUE(adaptk::weight_type)
using adaptk::test::named_matrix;
using adaptk::test::temp_dir;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t d = 16;

// Llama layers of q, k, gate, down (vectors are columns) and an embedding, F32 on disk.
std::vector<named_matrix> llama_matrices(unsigned seed, int layers) {
    arma::arma_rng::set_seed(seed);
    std::vector<named_matrix> matrices;
    for (int layer = 0; layer < layers; ++layer) {
        const std::string prefix = "model.layers." + std::to_string(layer) + ".";
        matrices.push_back({prefix + "self_attn.q_proj.weight", arma::mat(d, d, arma::fill::randn)});
        matrices.push_back({prefix + "self_attn.k_proj.weight", arma::mat(8, d, arma::fill::randn)});
        matrices.push_back({prefix + "mlp.gate_proj.weight", arma::mat(24, d, arma::fill::randn) + 0.5});
        matrices.push_back({prefix + "mlp.down_proj.weight", arma::mat(d, 24, arma::fill::randn)});
    }
    matrices.push_back({"model.embed_tokens.weight", arma::mat(40, d, arma::fill::randn)});
    return matrices;
}

struct model_dir {
    temp_dir dir;
    std::vector<named_matrix> written;
    explicit model_dir(unsigned seed = 1, int layers = 2) : written(llama_matrices(seed, layers)) {
        test::write_model(dir / "model", d, written, dtype::f32);
    }
    fs::path path() const { return dir / "model"; }
};

std::vector<fs::path> write_parts(const checkpoint& model, const fs::path& dir, std::size_t parts, bool center,
                                  bool per_matrix = false) {
    std::vector<std::string> notes;
    const auto matrices = model.matrices(d, notes);
    analysis_options options;
    options.center = center;
    options.per_matrix = per_matrix;
    std::vector<fs::path> files;
    for (std::size_t part = 1; part <= parts; ++part) {
        files.push_back(dir / ("part" + std::to_string(part) + "of" + std::to_string(parts) + ".state"));
        write_state(files.back(), {"model", "adaptk-stream test"}, matrices, d, options, part, parts);
    }
    return files;
}

analysis_result from_states(const state_set& states, analysis_options options) {
    options.reads = [](std::size_t) { return false; };
    options.combine = [&](std::size_t t, gram_accumulator& gram) { states.add_to(t, gram); };
    return analyse(states.matrices(), states.dim(), options);
}

double relative_difference(const arma::vec& a, const arma::vec& b) {
    return arma::norm(a - b, "inf") / std::max(arma::norm(b, "inf"), 1e-300);
}

// FNV-1a over 64-bit little-endian words, a trailing partial word byte by
// byte: state_file.cpp's checksum, written again from its header comment.
std::uint64_t fnv_words(std::uint64_t hash, std::span<const std::byte> bytes) {
    std::size_t i = 0;
    for (; i + 8 <= bytes.size(); i += 8) {
        std::uint64_t word;
        std::memcpy(&word, bytes.data() + i, 8);
        hash = (hash ^ word) * 0x100000001b3ull;
    }
    for (; i < bytes.size(); ++i) hash = (hash ^ static_cast<std::uint64_t>(bytes[i])) * 0x100000001b3ull;
    return hash;
}

// The state file's header JSON and data edited by edit(header, data), and
// its checksum computed again over the metadata values (in `keys` order) and
// the data before it: an edit the checksum does not catch.
void edit_checksummed(const fs::path& file, const std::vector<std::string>& keys,
                      const std::function<void(nlohmann::json&, std::vector<std::byte>&)>& edit) {
    auto bytes = test::read_bytes(file);
    std::uint64_t length = 0;
    std::memcpy(&length, bytes.data(), 8);
    auto header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes.data()) + 8, length));
    std::vector<std::byte> data(bytes.begin() + 8 + static_cast<std::ptrdiff_t>(length), bytes.end());
    edit(header, data);
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (const auto& key : keys) {
        const std::string value = header["__metadata__"][key].get<std::string>();
        hash = fnv_words(hash, std::as_bytes(std::span(value.data(), value.size())));
    }
    hash = fnv_words(hash, std::span(data).first(data.size() - 8));
    std::memcpy(data.data() + data.size() - 8, &hash, 8);
    test::write_bytes(file, test::safetensors_image(header.dump(), data));
}
const std::vector<std::string> version_2_keys{"format", "format_version", "tool",     "model",   "dim",        "center",
                                              "per_matrix", "part",       "matrices", "vectors", "fingerprint"};

// The state file's header JSON replaced by edit(header, data bytes), and
// `appended` zero bytes added to the data: the old data offsets stay valid.
void edit_header(const fs::path& file, const std::function<void(nlohmann::json&, std::size_t)>& edit,
                 std::size_t appended) {
    auto bytes = test::read_bytes(file);
    std::uint64_t length = 0;
    std::memcpy(&length, bytes.data(), 8);
    auto header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes.data()) + 8, length));
    std::vector<std::byte> data(bytes.begin() + 8 + static_cast<std::ptrdiff_t>(length), bytes.end());
    edit(header, data.size());
    data.resize(data.size() + appended);
    test::write_bytes(file, test::safetensors_image(header.dump(), data));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(state_file)

// Against the whole run, and the whole run against a dense float64 reference
// built from the F32-rounded weights.
BOOST_DATA_TEST_CASE(parts_merged_equal_the_whole_run, bdata::make({1, 2, 3, 4, 9}) * bdata::make({false, true}), parts,
                     center) {
    const model_dir model;
    const checkpoint opened(model.path());
    const temp_dir states_dir;
    const state_set states(write_parts(opened, states_dir.path(), parts, center));
    analysis_options options;
    options.center = center;
    options.trace_weighting = true;
    options.k = 4;
    options.universal_k = 4;
    std::vector<std::string> notes;
    const analysis_result whole = analyse(opened.matrices(d, notes), d, options);
    const analysis_result merged = from_states(states, options);

    BOOST_TEST_REQUIRE(merged.types.size() == whole.types.size());
    for (std::size_t t = 0; t < whole.types.size(); ++t) {
        BOOST_TEST_CONTEXT("type " << type_name(whole.types[t].type)) {
            BOOST_TEST(merged.types[t].type == whole.types[t].type);
            BOOST_TEST(merged.types[t].vectors == whole.types[t].vectors);
            BOOST_TEST(merged.types[t].matrices == whole.types[t].matrices);
            BOOST_TEST(merged.types[t].energy == whole.types[t].energy, boost::test_tools::tolerance(1e-12));
            BOOST_TEST(relative_difference(merged.types[t].eigenvalues, whole.types[t].eigenvalues) <= 1e-12);
            BOOST_TEST(relative_difference(merged.types[t].universal_capture, whole.types[t].universal_capture) <= 1e-9);
        }
    }
    BOOST_TEST(relative_difference(merged.universal_eigenvalues, whole.universal_eigenvalues) <= 1e-12);

    // The reference: each type's Gram of its vectors (rows, or columns for
    // down) as stored in F32, centred on the type's mean with --center.
    struct moments {
        arma::mat gram = arma::mat(d, d, arma::fill::zeros);
        arma::vec sum = arma::vec(d, arma::fill::zeros);
        double count = 0;
    };
    std::map<weight_type, moments> reference;
    for (const auto& [name, w] : model.written) {
        const arma::mat stored = arma::conv_to<arma::mat>::from(arma::conv_to<arma::fmat>::from(w));
        const weight_type type = classify(name)->type;
        const arma::mat vectors = type == weight_type::down ? stored : arma::mat(stored.t());
        moments& m = reference[type];
        m.gram += vectors * vectors.t();
        m.sum += arma::sum(vectors, 1);
        m.count += static_cast<double>(vectors.n_cols);
    }
    for (const auto& spectrum : merged.types) {
        const moments& m = reference.at(spectrum.type);
        const arma::mat gram = center ? arma::mat(m.gram - m.sum * m.sum.t() / m.count) : m.gram;
        const arma::vec expected = arma::sort(arma::eig_sym(gram), "descend");
        BOOST_TEST(relative_difference(spectrum.eigenvalues, expected) <= 1e-5, type_name(spectrum.type));
    }
}

BOOST_AUTO_TEST_CASE(a_state_records_its_part_and_model) {
    const model_dir model;
    const temp_dir states_dir;
    const auto files = write_parts(checkpoint(model.path()), states_dir.path(), 3, true);
    const mapped_file file(files[1]);
    const std::span<const std::byte> image(file.data(), file.size());
    const state_part part = parse_state(image, parse_safetensors(image, files[1].string()), files[1].string());
    BOOST_TEST(part.part == 2u);
    BOOST_TEST(part.parts == 3u);
    BOOST_TEST(part.dim == d);
    BOOST_TEST(part.center);
    BOOST_TEST(part.matrices.size() == 9u);
    BOOST_TEST(part.fingerprint.size() == 16u);
    std::uint64_t vectors = 0;
    for (const auto v : part.vectors) vectors += v;
    BOOST_TEST(vectors > 0u);
}

// state_set drops each checksum piece's pages as it is handed over, so the
// pieces must cover the checksummed data once, in order.
BOOST_AUTO_TEST_CASE(the_checksum_hands_over_every_piece_it_read_once) {
    const model_dir model;
    const temp_dir states_dir;
    const auto files = write_parts(checkpoint(model.path()), states_dir.path(), 2, true);
    const mapped_file file(files[0]);
    const std::span<const std::byte> image(file.data(), file.size());
    const safetensors_header header = parse_safetensors(image, files[0].string());
    const std::byte* next = image.data() + header.data_offset;
    std::size_t pieces = 0;
    parse_state(image, header, files[0].string(), [&](std::span<const std::byte> piece) {
        BOOST_TEST((piece.data() == next));
        BOOST_TEST(piece.size() <= state_hash_piece);
        next = piece.data() + piece.size();
        ++pieces;
    });
    BOOST_TEST(pieces >= 1u);
    // Everything but the checksum's own 8 bytes at the end of the data section.
    BOOST_TEST(static_cast<std::size_t>(next - image.data()) == image.size() - 8);
}

// Per-matrix rows: each matrix's eigenvalues from the part that read it, the
// r2 columns from a projection pass over the weights after the merge; against
// the whole run, and each matrix's spectrum against a dense float64 one.
BOOST_DATA_TEST_CASE(per_matrix_parts_merged_equal_the_whole_run, bdata::make({2, 3}), parts) {
    const model_dir model;
    const checkpoint opened(model.path());
    const temp_dir states_dir;
    const state_set states(write_parts(opened, states_dir.path(), parts, false, true));
    BOOST_TEST((states.per_matrix() == eig_precision::float32));
    analysis_options options;
    options.per_matrix = true;
    options.solver_threads = 0;
    options.k = 4;
    options.universal_k = 4;
    std::vector<std::string> notes;
    const auto matrices = opened.matrices(d, notes);
    states.check_weights(matrices, "model");
    const analysis_result whole = analyse(matrices, d, options);
    options.matrix_eigenvalues = [&](std::size_t m) { return states.eigenvalues(m); };
    options.projects = [](std::size_t) { return true; };
    options.reads = [](std::size_t) { return false; };
    options.combine = [&](std::size_t t, gram_accumulator& gram) { states.add_to(t, gram); };
    const analysis_result merged = analyse(matrices, d, options);

    BOOST_TEST_REQUIRE(merged.matrices.size() == whole.matrices.size());
    for (std::size_t m = 0; m < whole.matrices.size(); ++m) {
        const matrix_spectrum &got = merged.matrices[m], &want = whole.matrices[m];
        BOOST_TEST_CONTEXT(want.name) {
            BOOST_TEST(got.name == want.name);
            BOOST_TEST(relative_difference(got.eigenvalues, want.eigenvalues) <= 1e-9);
            BOOST_TEST(got.r2_type == want.r2_type, boost::test_tools::tolerance(1e-9));
            BOOST_TEST(got.r2_universal == want.r2_universal, boost::test_tools::tolerance(1e-9));
            // The reference: the matrix's vectors as stored in F32 (float32 solves: 1e-5).
            const auto written = std::find_if(model.written.begin(), model.written.end(),
                                              [&](const named_matrix& n) { return n.name == want.name; });
            BOOST_TEST_REQUIRE((written != model.written.end()));
            const arma::mat& w = written->w;
            const arma::mat stored = arma::conv_to<arma::mat>::from(arma::conv_to<arma::fmat>::from(w));
            const arma::mat vectors = want.kind.type == weight_type::down ? stored : arma::mat(stored.t());
            const arma::vec dense = arma::sort(arma::eig_sym(vectors * vectors.t()), "descend");
            BOOST_TEST(relative_difference(got.eigenvalues, dense.head(got.eigenvalues.n_elem)) <= 1e-5);
        }
    }
    // Without the weights nothing is projected: r2 NaN, the spectra as before.
    options.projects = [](std::size_t) { return false; };
    const analysis_result unprojected = analyse(states.matrices(), d, options);
    BOOST_TEST(std::isnan(unprojected.matrices[0].r2_type));
    BOOST_TEST(relative_difference(unprojected.matrices[0].eigenvalues, whole.matrices[0].eigenvalues) <= 1e-9);
}

// Version 1 (no per_matrix key, no eigenvalues) still merges for the type
// tables; per-matrix rows are refused naming the file.
BOOST_AUTO_TEST_CASE(version_1_states_merge_without_per_matrix_rows) {
    const model_dir model;
    const checkpoint opened(model.path());
    const temp_dir states_dir;
    auto files = write_parts(opened, states_dir.path(), 2, false);
    std::vector<std::string> keys = version_2_keys;
    std::erase(keys, "per_matrix");
    for (const auto& file : files)
        edit_checksummed(file, keys, [](nlohmann::json& h, std::vector<std::byte>&) {
            h["__metadata__"]["format_version"] = "1";
            h["__metadata__"].erase("per_matrix");
        });
    const state_set states(files);
    BOOST_TEST(!states.per_matrix());
    std::vector<std::string> notes;
    const analysis_result whole = analyse(opened.matrices(d, notes), d, {});
    const analysis_result merged = from_states(states, {});
    for (std::size_t t = 0; t < whole.types.size(); ++t)
        BOOST_TEST(relative_difference(merged.types[t].eigenvalues, whole.types[t].eigenvalues) <= 1e-12);
    BOOST_CHECK_EXCEPTION(states.require_per_matrix("layers"), format_error, [&](const format_error& e) {
        const std::string what = e.what();
        return what.find(files[0].string()) != std::string::npos &&
               what.find("state format version 1 holds no per-matrix rows, which layers needs") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(weights_that_are_not_the_states_matrices_are_refused) {
    const model_dir model;
    const temp_dir states_dir;
    const state_set states(write_parts(checkpoint(model.path()), states_dir.path(), 2, false, true));
    const model_dir other(1, 3);  // a third layer
    std::vector<std::string> notes;
    BOOST_CHECK_EXCEPTION(states.check_weights(checkpoint(other.path()).matrices(d, notes), "other"), format_error,
                          [](const format_error& e) {
                              return std::string(e.what()).find("stands where") != std::string::npos;
                          });
}

struct refusal {
    std::string name;
    std::function<std::vector<fs::path>(const fs::path& dir)> files;
    std::string message;  ///< a fragment of what the user sees
};
std::ostream& operator<<(std::ostream& out, const refusal& r) { return out << r.name; }

// Parts of a model with `layers` layers (another shape, another fingerprint).
std::vector<fs::path> parts_of(int layers, const fs::path& dir, std::size_t parts, bool center = false) {
    const model_dir model(1, layers);
    fs::create_directories(dir);
    return write_parts(checkpoint(model.path()), dir, parts, center);
}

// Part 1/1 of a model, its header JSON or its bytes then edited.
std::function<std::vector<fs::path>(const fs::path&)> header_edited(
    std::function<void(nlohmann::json&, std::size_t data_bytes)> edit, std::size_t appended = 0) {
    return [edit, appended](const fs::path& dir) {
        auto files = parts_of(2, dir, 1);
        edit_header(files[0], edit, appended);
        return files;
    };
}
// Part 1/1 with per-matrix rows, edited, with its checksum made right again:
// what the per-matrix checks must catch on their own.
std::function<std::vector<fs::path>(const fs::path&)> per_matrix_edited(
    std::function<void(nlohmann::json&, std::vector<std::byte>&)> edit) {
    return [edit](const fs::path& dir) {
        const model_dir model;
        auto files = write_parts(checkpoint(model.path()), dir, 1, false, true);
        edit_checksummed(files[0], version_2_keys, edit);
        return files;
    };
}
std::function<std::vector<fs::path>(const fs::path&)> bytes_edited(std::function<void(std::vector<std::byte>&)> edit) {
    return [edit](const fs::path& dir) {
        auto files = parts_of(2, dir, 1);
        auto bytes = test::read_bytes(files[0]);
        edit(bytes);
        test::write_bytes(files[0], bytes);
        return files;
    };
}

const std::vector<refusal> refusals{
    {"duplicated part", [](const fs::path& dir) { auto f = parts_of(2, dir, 2); return std::vector{f[0], f[0]}; },
     "part 1/2 is also given as"},
    {"missing part", [](const fs::path& dir) { return std::vector{parts_of(2, dir, 2)[0]}; }, "part 2/2 of this run is missing"},
    {"different models",
     [](const fs::path& dir) { return std::vector{parts_of(2, dir / "a", 2)[0], parts_of(3, dir / "b", 2)[1]}; },
     "another model"},
    {"different --center",
     [](const fs::path& dir) { return std::vector{parts_of(2, dir / "a", 2)[0], parts_of(2, dir / "b", 2, true)[1]}; },
     "accumulated with --center, unlike"},
    {"different part counts",
     [](const fs::path& dir) { return std::vector{parts_of(2, dir / "a", 2)[0], parts_of(2, dir / "b", 3)[1]}; },
     "part 2/3 of a run split into 2 parts"},
    {"unknown version", header_edited([](nlohmann::json& h, std::size_t) { h["__metadata__"]["format_version"] = "3"; }),
     "state format version '3' is not one this tool reads (1..2)"},
    {"per-matrix rows in one part only",
     [](const fs::path& dir) {
         const model_dir model;
         fs::create_directories(dir / "a");
         fs::create_directories(dir / "b");
         return std::vector{write_parts(checkpoint(model.path()), dir / "a", 2, false, true)[0],
                            write_parts(checkpoint(model.path()), dir / "b", 2, false)[1]};
     },
     "per-matrix rows absent, unlike"},
    {"a matrix listed twice", per_matrix_edited([](nlohmann::json& h, std::vector<std::byte>&) {
         auto list = nlohmann::json::parse(h["__metadata__"]["matrices"].get<std::string>());
         list[1] = list[0];
         h["__metadata__"]["matrices"] = list.dump();
     }),
     "is listed twice"},
    {"NaN eigenvalue", per_matrix_edited([](nlohmann::json& h, std::vector<std::byte>& data) {
         const double nan = std::numeric_limits<double>::quiet_NaN();
         std::memcpy(data.data() + h["model.layers.0.self_attn.q_proj.weight.eigenvalues"]["data_offsets"][0].get<std::size_t>() + 8,
                     &nan, 8);
     }),
     "eigenvalue 2 (nan) is not finite, non-negative and at most the one before"},
    {"ascending eigenvalues", per_matrix_edited([](nlohmann::json& h, std::vector<std::byte>& data) {
         const double big = 1e30;
         std::memcpy(data.data() + h["model.layers.0.self_attn.q_proj.weight.eigenvalues"]["data_offsets"][0].get<std::size_t>() + 8,
                     &big, 8);
     }),
     "at most the one before"},
    {"a matrix's eigenvalues missing", per_matrix_edited([](nlohmann::json& h, std::vector<std::byte>&) {
         h["renamed"] = h["model.layers.0.self_attn.q_proj.weight.eigenvalues"];
         h.erase("model.layers.0.self_attn.q_proj.weight.eigenvalues");
     }),
     "'model.layers.0.self_attn.q_proj.weight.eigenvalues': missing from the state file"},
    {"edited metadata", header_edited([](nlohmann::json& h, std::size_t) { h["__metadata__"]["tool"] = "adaptk-stream 9"; }),
     "does not match the stored"},
    {"extra tensor",
     header_edited(
         [](nlohmann::json& h, std::size_t data_bytes) {
             h["extra"] = {{"dtype", "F64"}, {"shape", {1}}, {"data_offsets", {data_bytes, data_bytes + 8}}};
         },
         8),
     "tensors where part 1/1 holds"},
    {"corrupted data", bytes_edited([](std::vector<std::byte>& b) { b[b.size() - 100] ^= std::byte{1}; }),
     "the file is corrupted"},
    {"truncated", bytes_edited([](std::vector<std::byte>& b) { b.resize(b.size() - 9); }), "exceeds"},
    {"a checkpoint, not a state",
     [](const fs::path& dir) {
         const model_dir model;
         fs::copy_file(model.path() / "model.safetensors", dir / "model.safetensors");
         return std::vector{dir / "model.safetensors"};
     },
     "not an adaptk-stream state file: no 'format' metadata"},
};

BOOST_DATA_TEST_CASE(merging_refuses_with_a_reason, bdata::make(refusals), c) {
    const temp_dir dir;
    const auto files = c.files(dir.path());
    BOOST_CHECK_EXCEPTION(state_set{files}, format_error, [&](const format_error& e) {
        const std::string what = e.what();
        BOOST_TEST_INFO("message: " << what);
        return what.find(c.message) != std::string::npos && what.find('\n') == std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(an_interrupted_write_leaves_no_file) {
    const model_dir model;
    const checkpoint opened(model.path());
    std::vector<std::string> notes;
    const auto matrices = opened.matrices(d, notes);
    const temp_dir out;
    analysis_options options;
    options.block_vectors = 4;
    options.progress = [](std::uint64_t done, std::uint64_t) {
        if (done > 1000) throw std::runtime_error("interrupted");
    };
    BOOST_CHECK_THROW(write_state(out / "part.state", {"m", "t"}, matrices, d, options, 1, 1), std::runtime_error);
    BOOST_TEST(fs::is_empty(out.path()));  // neither the state nor its temporary
    BOOST_CHECK_THROW(write_state(out / "part.state", {"m", "t"}, matrices, d, {}, 3, 2), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
