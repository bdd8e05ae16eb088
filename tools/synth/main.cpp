// adaptk-synth: writes a Llama-shaped safetensors checkpoint whose weight
// types have known spectra (see synth.hpp), for tests and benchmarks of
// adaptk-stream. This file parses the command line, catches once, prints one
// line on stderr and maps failures to exit statuses (2 usage, 1 I/O).

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "adaptk/error.hpp"
#include "synth.hpp"

namespace {

using namespace adaptk;
using namespace adaptk::synth;

constexpr std::string_view help_text =
    "Usage: adaptk-synth OUT_DIR [options]\n"
    "Writes a Llama-shaped safetensors checkpoint (HF names and [out, in] shapes,\n"
    "config.json) whose weight types have known spectra over the hidden axis.\n"
    "\n"
    "Options (explicit flags override the preset):\n"
    "  --preset NAME     tiny (default): hidden 64, ffn 172, kv 32, layers 3, vocab 256, f32\n"
    "                    tinyllama-1.1b: hidden 2048, ffn 5632, kv 256, layers 22,\n"
    "                    vocab 32000, bf16 (2.2 GB)\n"
    "                    llama-3-8b: hidden 4096, ffn 14336, kv 1024, layers 32,\n"
    "                    vocab 128256, bf16 (16 GB; --layers 1: 2.5 GB)\n"
    "                    llama-3-70b: hidden 8192, ffn 28672, kv 1024, layers 80,\n"
    "                    vocab 128256, bf16 (141 GB; --layers 1: 5.9 GB)\n"
    "                    llama-3.1-405b: hidden 16384, ffn 53248, kv 1024, layers 126,\n"
    "                    vocab 128256, bf16 (811 GB; --layers 1: 15 GB)\n"
    "  --hidden N        hidden size d\n"
    "  --ffn N           MLP intermediate size\n"
    "  --kv N            rows of k_proj and v_proj\n"
    "  --layers N        decoder layers\n"
    "  --vocab N         vocabulary rows of embed_tokens and lm_head\n"
    "  --dtype T         f32, f16, bf16 or f64\n"
    "  --shards N        split over N files model-0000i-of-0000N.safetensors plus\n"
    "                    model.safetensors.index.json (default 1: model.safetensors)\n"
    "  --decay power:A   every type's singular values s_i = (i+1)^-A (A >= 0)\n"
    "  --seed S          random seed, 0..2^64-1 (default 0)\n"
    "  --rank R          only the first R singular values are nonzero (1..hidden;\n"
    "                    default hidden): generation costs R/hidden of full rank,\n"
    "                    for time and memory runs at d = 8192..16384\n"
    "  --tied            no lm_head.weight; tie_word_embeddings = true\n"
    "  --quiet           no progress on stderr\n"
    "  --dry-run         write nothing: print config.json on stdout and the tensor\n"
    "                    count and bytes the checkpoint would take on stderr\n"
    "  --help\n"
    "\n"
    "Spectra: each weight type t (q k v o gate up down embed head) has its own\n"
    "random orthonormal basis B_t of the hidden space (QR of a seeded Gaussian d x d\n"
    "matrix) and singular values s_i = (i+1)^-alpha_t for all i < d (full rank, no\n"
    "truncation; with --rank R, i < R and B_t is d x R). The n hidden-axis vectors of a matrix (rows of [out, hidden]\n"
    "tensors, columns of down_proj [hidden, ffn]) are the rows of G diag(s) B_t^T,\n"
    "G an n x d standard Gaussian scaled by 1/sqrt(n), so a type's Gram summed over\n"
    "the layers is close to B_t diag(layers * s^2) B_t^T. Default alpha: q 0.6,\n"
    "k 1.0, v 0.4, o 0.4, gate 0.2, up 0.2, down 0.25, embed 0.5, head 0.5; they are\n"
    "recorded in config.json under \"adaptk_synth\". Norm weights are all 1.\n"
    "\n"
    "Same options and seed give the same bytes (on the same machine and BLAS\n"
    "thread count). Every file appears complete or not at all; files of the other\n"
    "layout left by an earlier run in OUT_DIR (model.safetensors, the index,\n"
    "model-*-of-*.safetensors) are removed so readers see one checkpoint.\n"
    "Exit status: 0 success, 1 I/O or other failure, 2 usage error.\n";

struct cli_request {
    std::filesystem::path out_dir;
    options opts;
    bool quiet = false;
    bool dry_run = false;
};

template <class Int>
Int parse_integer(std::string_view flag, std::string_view text, Int minimum, Int maximum) {
    Int value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || value < minimum || value > maximum)
        throw usage_error(std::string(flag) + ": '" + std::string(text) + "' is not an integer in " +
                          std::to_string(minimum) + ".." + std::to_string(maximum));
    return value;
}

double parse_decay(std::string_view text) {
    constexpr std::string_view prefix = "power:";
    double alpha = -1;
    if (text.starts_with(prefix)) {
        const std::string_view number = text.substr(prefix.size());
        const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), alpha);
        if (error != std::errc{} || end != number.data() + number.size()) alpha = -1;
    }
    if (!(alpha >= 0) || !std::isfinite(alpha))
        throw usage_error("--decay: '" + std::string(text) + "' is not power:ALPHA with a finite ALPHA >= 0");
    return alpha;
}

dtype parse_dtype_flag(std::string_view text) {
    if (text == "f32") return dtype::f32;
    if (text == "f16") return dtype::f16;
    if (text == "bf16") return dtype::bf16;
    if (text == "f64") return dtype::f64;
    throw usage_error("--dtype: '" + std::string(text) + "' is not f32, f16, bf16 or f64");
}

struct named_shape {
    std::string_view name;
    shape_config shape;
};

// The published shapes (config.json of each family), all layers; --layers
// cuts the large ones down to what a disk holds.
constexpr std::array<named_shape, 5> presets{{
    {"tiny", {64, 172, 32, 3, 256, dtype::f32, false}},
    {"tinyllama-1.1b", {2048, 5632, 256, 22, 32000, dtype::bf16, false}},
    {"llama-3-8b", {4096, 14336, 1024, 32, 128256, dtype::bf16, false}},
    {"llama-3-70b", {8192, 28672, 1024, 80, 128256, dtype::bf16, false}},
    {"llama-3.1-405b", {16384, 53248, 1024, 126, 128256, dtype::bf16, false}},
}};

shape_config preset(std::string_view name) {
    std::string known;
    for (const auto& p : presets) {
        if (p.name == name) return p.shape;
        known += (known.empty() ? "" : ", ") + std::string(p.name);
    }
    throw usage_error("--preset: '" + std::string(name) + "' is not one of " + known);
}

// nullopt: --help was printed.
std::optional<cli_request> parse(const std::vector<std::string_view>& args) {
    // Nine d × d float matrices stay in memory (36 GiB at the cap on d); the
    // other caps only keep shapes far from 64-bit overflow.
    constexpr std::uint64_t max_hidden = 32768;
    constexpr std::uint64_t max_extent = std::uint64_t{1} << 32;
    std::optional<std::string_view> out_dir;
    std::string_view preset_name = "tiny";
    std::optional<std::uint64_t> hidden, ffn, kv, layers, vocab, shards, seed, rank;
    std::optional<dtype> type;
    std::optional<double> alpha;
    bool tied = false;
    bool quiet = false;
    bool dry_run = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << help_text;
            return std::nullopt;
        }
        if (arg == "--tied") { tied = true; continue; }
        if (arg == "--quiet") { quiet = true; continue; }
        if (arg == "--dry-run") { dry_run = true; continue; }
        if (arg.starts_with("-")) {
            constexpr std::array<std::string_view, 11> valued{"--preset", "--hidden", "--ffn",   "--kv",
                                                              "--layers", "--vocab",  "--shards", "--seed",
                                                              "--dtype",  "--decay",  "--rank"};
            if (std::find(valued.begin(), valued.end(), arg) == valued.end())
                throw usage_error("unknown option '" + std::string(arg) + "'");
            if (i + 1 >= args.size()) throw usage_error(std::string(arg) + " needs a value");
            const std::string_view value = args[++i];
            if (arg == "--preset") preset_name = value;
            else if (arg == "--hidden") hidden = parse_integer<std::uint64_t>(arg, value, 1, max_hidden);
            else if (arg == "--ffn") ffn = parse_integer<std::uint64_t>(arg, value, 1, max_extent);
            else if (arg == "--kv") kv = parse_integer<std::uint64_t>(arg, value, 1, max_extent);
            else if (arg == "--layers") layers = parse_integer<std::uint64_t>(arg, value, 1, 100000);
            else if (arg == "--vocab") vocab = parse_integer<std::uint64_t>(arg, value, 1, max_extent);
            else if (arg == "--shards") shards = parse_integer<std::uint64_t>(arg, value, 1, 99999);
            else if (arg == "--seed") seed = parse_integer<std::uint64_t>(arg, value, 0, UINT64_MAX);
            else if (arg == "--dtype") type = parse_dtype_flag(value);
            else if (arg == "--rank") rank = parse_integer<std::uint64_t>(arg, value, 1, max_hidden);
            else alpha = parse_decay(value);
            continue;
        }
        if (out_dir) throw usage_error("more than one OUT_DIR given ('" + std::string(*out_dir) + "', '" +
                                       std::string(arg) + "')");
        out_dir = arg;
    }
    if (!out_dir) throw usage_error("no OUT_DIR given");

    cli_request request;
    request.out_dir = std::filesystem::path(*out_dir);
    request.quiet = quiet;
    request.dry_run = dry_run;
    shape_config& s = request.opts.shape;
    s = preset(preset_name);
    s.hidden = hidden.value_or(s.hidden);
    s.ffn = ffn.value_or(s.ffn);
    s.kv = kv.value_or(s.kv);
    s.layers = layers.value_or(s.layers);
    s.vocab = vocab.value_or(s.vocab);
    s.type = type.value_or(s.type);
    s.tied = tied;
    if (alpha) request.opts.decay.fill(*alpha);
    request.opts.seed = seed.value_or(0);
    request.opts.shards = shards.value_or(1);
    if (rank && *rank > s.hidden)
        throw usage_error("--rank: " + std::to_string(*rank) + " exceeds the hidden size " + std::to_string(s.hidden));
    request.opts.rank = rank;
    const std::uint64_t tensor_count = 2 + 9 * s.layers + (s.tied ? 0 : 1);  // embed, layers, norm, head
    if (request.opts.shards > tensor_count)
        throw usage_error("--shards: " + std::to_string(request.opts.shards) + " exceeds the " +
                          std::to_string(tensor_count) + " tensors of this model");
    return request;
}

// Sizes a checkpoint before anyone commits the disk (the Llama-3 presets
// take 16 GB to 811 GB at full depth).
int print_dry_run(const cli_request& request) {
    std::cout << llama_config(request.opts).dump(2) << '\n';
    std::uint64_t bytes = 0;
    const auto tensors = llama_tensors(request.opts.shape);
    for (const auto& t : tensors) bytes += t.bytes;
    std::cerr << "adaptk-synth: would write " << tensors.size() << " tensors, " << bytes << " bytes of tensor data in "
              << request.opts.shards << " file(s)\n";
    return 0;
}

int run(const cli_request& request) {
    if (request.dry_run) return print_dry_run(request);
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const bool quiet = request.quiet;
    auto progress = [&](std::size_t index, std::size_t count, const tensor_spec& tensor, std::uint64_t done,
                        std::uint64_t total) {
        if (quiet) return;
        std::string shape;
        for (std::size_t i = 0; i < tensor.shape.size(); ++i) shape += (i ? "x" : "") + std::to_string(tensor.shape[i]);
        char line[320];
        std::snprintf(line, sizeof line, "adaptk-synth: [%zu/%zu] %s %s  %.1f / %.1f MB  %.1f s\n", index + 1, count,
                      tensor.name.c_str(), shape.c_str(), static_cast<double>(done) / 1e6,
                      static_cast<double>(total) / 1e6,
                      std::chrono::duration<double>(clock::now() - start).count());
        std::cerr << line;
    };
    const auto removed = write_checkpoint(request.out_dir, request.opts, progress);
    if (!quiet) {
        for (const auto& name : removed)
            std::cerr << "adaptk-synth: removed " << (request.out_dir / name).string() << " from an earlier run\n";
        std::cerr << "adaptk-synth: wrote " << request.out_dir.string() << " in "
                  << std::chrono::duration<double>(clock::now() - start).count() << " s\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const auto request = parse(args);
        if (!request) return 0;
        return run(*request);
    } catch (const usage_error& e) {
        std::cerr << "adaptk-synth: " << e.what() << " (try 'adaptk-synth --help')\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "adaptk-synth: " << e.what() << '\n';
        return 1;
    }
}
