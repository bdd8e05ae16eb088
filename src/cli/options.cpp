#include "cli/options.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>
#include <string_view>

#include "adaptk/error.hpp"
#include "adaptk/gram_kernel.hpp"
#include "adaptk/tables.hpp"

namespace adaptk::cli {
namespace {

struct command_info {
    command what;
    std::string_view name;
    std::string_view summary;
};

constexpr std::array<command_info, 11> commands{{
    {command::inspect, "inspect", "list every tensor: name,dtype,shape,type,group,layer,bytes,offset,file"},
    {command::profile, "profile", "one row per weight type: PR, K50/K90, R2 own vs universal basis, gain"},
    {command::groups, "groups", "attention / mlp / embedding means and the mlp/attention ratio"},
    {command::frontier, "frontier", "energy kept vs K and compression d/K"},
    {command::budget, "budget", "adaptive K per type at a threshold and its parameter cost"},
    {command::layers, "layers", "one row per matrix: its own spectrum and its fit to the shared bases"},
    {command::spectrum, "spectrum", "every eigenvalue per type, long format for plotting"},
    {command::report, "report", "everything above in one pass, written to --out DIR"},
    {command::allocate, "allocate", "ranks per type or per matrix that keep the most under --budget"},
    {command::compare, "compare", "A B: per type, the change in pr, k50, k90, r2 and |W_A - W_B|^2 / |W_A|^2"},
    {command::accumulate, "accumulate", "stream part I of N into a state file (the table commands merge all N)"},
}};

// One line: the version and the Gram kernel BF16 checkpoints go through
// (ADAPTK_GRAM_KERNEL's choice, checked; else the fastest this CPU runs).
std::string version_text() {
    return "adaptk-stream " ADAPTK_VERSION " (Gram kernel " + std::string(gram_kernel_name(active_gram_kernel())) +
           "; this CPU runs " + runnable_gram_kernel_names() + ")\n";
}

std::string main_help() {
    std::string text =
        "Usage: adaptk-stream COMMAND MODEL [options]\n"
        "Spectral budget of a Llama, Phi-3, GPT-NeoX or GPT-2 checkpoint (others\n"
        "with --types FILE), streamed from memory-mapped safetensors or GGUF in RAM\n"
        "that does not grow with the model. CSV on stdout, messages on stderr.\n\nCommands:\n";
    for (const auto& c : commands) text += "  " + std::string(c.name) + std::string(12 - c.name.size(), ' ') + std::string(c.summary) + "\n";
    text +=
        "\nMODEL is a .safetensors or .gguf file (any part of a split GGUF), a llama2.c .bin\n"
        "checkpoint, a directory with model.safetensors.index.json, a directory of\n"
        ".safetensors files, or an index file. Table commands read '--from-state FILE...'\n"
        "(accumulate's parts) in place of MODEL.\n"
        "Run 'adaptk-stream COMMAND --help' for a command's options.\n"
        "Exit status: 0 success, 1 bad input or I/O error, 2 usage error.\n";
    return text;
}

// The options of every command but inspect, each with its --help lines.
struct analysis_option {
    std::string_view name;
    std::string_view help;
};
constexpr std::array<analysis_option, 8> analysis_options{{
    {"--threads", "  --threads N          BLAS threads (default: all cores)\n"},
    {"--k", "  --k K                components for the r2 columns (default 32; clamped to d)\n"},
    {"--center", "  --center             subtract each type's mean vector first (PCA-style)\n"},
    {"--universal-weighting",
     "  --universal-weighting sum|trace\n"
     "                       pool types as sum C_t (default) or sum C_t/tr(C_t)\n"},
    {"--thresholds", "  --thresholds LIST    extra energy fractions, e.g. 0.99,0.999 -> k99,k99_9\n"},
    {"--block-vectors", "  --block-vectors N    vectors per BLAS block (default 1024, at most 65536; rsvd: at most\n"
                        "                       max(2^20/d, 512) and 2^21/d)\n"},
    {"--max-memory", "  --max-memory SIZE    plan buffers to fit SIZE (e.g. 64M, 1G): smaller blocks, then one\n"
                     "                       BLAS thread (unless --threads), then (rsvd) no extra universal\n"
                     "                       pass, or refuse up front\n"},
    {"--spill-dir",
     "  --spill-dir DIR      exact: where the type Grams are parked, types x d^2 x 8 bytes\n"
     "                       (default $TMPDIR, else /tmp)\n"},
}};

// Why command `c` would ignore the analysis option `arg`: empty when it reads
// it. An option that changes nothing in a command's output is refused, not
// silently dropped.
std::string_view ignored_because(std::string_view arg, command c) {
    const bool universal_columns = c == command::profile || c == command::groups || c == command::frontier ||
                                   c == command::layers || c == command::report;
    const bool k_columns =
        c == command::profile || c == command::layers || c == command::report || c == command::compare;
    if (c == command::accumulate && arg != "--threads" && arg != "--center" && arg != "--block-vectors" &&
        arg != "--max-memory")
        return "it writes a state file, no table (give it to the command that reads the states)";
    if (arg == "--universal-weighting" && !universal_columns)
        return "its output has no universal-basis column (profile, groups, frontier, layers and report have)";
    if (arg == "--thresholds" && !k_columns)
        return "its table has no k50/k90 columns to add to (profile, layers, report and compare have)";
    if (arg == "--k" && c == command::budget) return "its K per type comes from --threshold";
    if (arg == "--center" && c == command::allocate) return "a rank plan factorizes the uncentered weights";
    return {};
}

std::string command_help(const command_info& c) {
    const std::string usage = c.what == command::accumulate ? " MODEL --part I/N --state FILE [options]\n"
                              : c.what == command::compare   ? " A B [options]\n"
                              : c.what == command::inspect   ? " MODEL [options]\n"
                              : c.what == command::layers    ? " MODEL|--from-state FILE... --model MODEL [options]\n"
                                                             : " MODEL|--from-state FILE... [options]\n";
    std::string text = "Usage: adaptk-stream " + std::string(c.name) + usage + std::string(c.summary) + "\n\nOptions:\n";
    text +=
        "  --hidden-size N      hidden size d (default: config.json or GGUF key-values, else inferred)\n"
        "  --types FILE         extra naming rules, lines TYPE,LAYOUT,REGEX (README)\n"
        "  -q, --quiet          no progress or notes on stderr\n"
        "  --format csv|tsv|json\n"
        "                       table format (default csv; report: of its table files)\n"
        "  -h, --help, --version\n";
    if (c.what == command::inspect) return text;
    for (const auto& option : analysis_options)
        if (ignored_because(option.name, c.what).empty()) text += option.help;
    if (c.what == command::accumulate)
        return text +
               "  --part I/N           the share to stream: part I of N, split by bytes (required)\n"
               "  --state FILE         the state file to write, atomically (required)\n"
               "  --per-matrix         also each matrix's own eigenvalues (<= d doubles each), for\n"
               "                       layers, report's layers.csv and the per-matrix allocation\n"
               "  --eig-precision single|double\n"
               "                       with --per-matrix: its eigenvalue solves in float32 (default) or float64\n";
    if (reads_states(c.what))
        text +=
            "  --from-state FILE... merge accumulate's state files (every part of one run) instead\n"
            "                       of reading MODEL; exact method; per-matrix rows need parts\n"
            "                       that accumulate wrote with them\n";
    if (c.what == command::layers || c.what == command::report)
        text +=
            "  --model MODEL        with --from-state: the weights, read once more to project each\n"
            "                       matrix on the merged bases (r2_type, r2_universal); layers needs\n"
            "                       it, report without it leaves out layers.csv\n";
    text +=
        "  Exact: every eigenvalue of the Gram of the decoded weights, accumulated from float32\n"
        "  products; error_bound bounds its rounding (README: Accuracy of the exact method).\n";
    if (supports_rsvd(c.what))
        text +=
            "  --method M           exact (default), rsvd (randomized: top-k only, empty pr/k90,\n"
            "                       error bounds), or auto (rsvd when exact would not fit --max-memory\n"
            "                       or rsvd's planned CPU time is under half of exact's)\n"
            "  --oversample P       rsvd: extra sketch columns per block (default 10)\n"
            "  --power-iters Q      rsvd: Krylov degree, q + 2 passes over the weights (default 2, at most 100),\n"
            "                       and up to two more for the universal basis alone while it still moves\n"
            "  --seed S             rsvd: random seed (default 0); same seed, same output\n";
    if (c.what == command::frontier || c.what == command::report)
        text += "  --ks LIST            frontier K values (default 8,32,64,128,256,1024,1500)\n";
    if (c.what == command::budget || c.what == command::report)
        text += "  --threshold P        energy fraction for the adaptive K (default 0.9)\n";
    if (c.what == command::allocate)
        text +=
            "  --budget B           parameters to spend: a fraction (0.25, 25%) of the analysed\n"
            "                       parameters or a count (250M; K, M, G: powers of 1000); required\n"
            "  --per type|matrix    one rank per type (default, shared bases) or per matrix\n"
            "  --plan FILE          also write the rank plan per tensor: FILE.json (with PEFT's\n"
            "                       rank_pattern) or FILE.csv / FILE.tsv\n";
    if (c.what == command::allocate || c.what == command::report)
        text += "  --objective O        weighted (default: parameter-weighted mean energy fraction) or energy\n";
    if (c.what == command::layers || c.what == command::report || c.what == command::allocate)
        text +=
            "  --eig-precision single|double\n"
            "                       per-matrix eigenvalue solves (layers, per-matrix allocation) in\n"
            "                       float32 (default: about twice as fast, within 1e-4) or float64\n";
    if (c.what == command::report) text += "  --out DIR            where the tables, summary.json and SVGs go (required)\n";
    return text;
}

// Upper bounds of the numeric options: far above any real use, low enough
// that what they size (blocks, Krylov bases, threads) cannot overflow or ask
// for absurd memory before --max-memory or the model can say so.
constexpr std::size_t max_dimension = 1 << 20;      // --hidden-size, --k, --ks
constexpr std::size_t max_block_vectors = 1 << 16;  // a block of d = 8192 floats: 2 GiB
constexpr std::size_t max_oversample = 1 << 16;
constexpr std::size_t max_power_iterations = 100;   // q + 2 passes over the weights
constexpr int max_threads = 4096;

template <class Int>
Int parse_integer(std::string_view flag, std::string_view text, Int minimum,
                  Int maximum = std::numeric_limits<Int>::max()) {
    Int value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || value < minimum || value > maximum) {
        const std::string range = maximum == std::numeric_limits<Int>::max()
                                      ? ">= " + std::to_string(minimum)
                                      : "in [" + std::to_string(minimum) + ", " + std::to_string(maximum) + "]";
        throw usage_error(std::string(flag) + ": '" + std::string(text) + "' is not an integer " + range);
    }
    return value;
}

double parse_fraction(std::string_view flag, std::string_view text) {
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || !(value > 0 && value <= 1))
        throw usage_error(std::string(flag) + ": '" + std::string(text) + "' is not a fraction in (0, 1]");
    return value;
}

template <class Parse>
auto parse_list(std::string_view text, Parse&& parse_one) {
    std::vector<decltype(parse_one(text))> values;
    while (true) {
        const auto comma = text.find(',');
        values.push_back(parse_one(text.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return values;
}

using value_reader = std::function<std::string_view()>;

// The options of every command but inspect (accumulate: only those of the
// streaming pass); false when `arg` is none of them.
bool parse_analysis_option(std::string_view arg, const value_reader& value, const command_info& c, options& o) {
    if (std::none_of(analysis_options.begin(), analysis_options.end(),
                     [&](const analysis_option& option) { return option.name == arg; }))
        return false;
    if (c.what == command::inspect) throw usage_error(std::string(arg) + " does not apply to " + std::string(c.name));
    if (const auto why = ignored_because(arg, c.what); !why.empty())
        throw usage_error(std::string(arg) + " does not apply to " + std::string(c.name) + ": " + std::string(why));
    if (arg == "--threads") {
        o.threads = parse_integer<int>(arg, value(), 1, max_threads);
    } else if (arg == "--k") {
        o.k = parse_integer<std::size_t>(arg, value(), 1, max_dimension);
    } else if (arg == "--center") {
        o.center = true;
    } else if (arg == "--universal-weighting") {
        const auto mode = value();
        if (mode != "sum" && mode != "trace")
            throw usage_error("--universal-weighting: '" + std::string(mode) + "' is not 'sum' or 'trace'");
        o.trace_weighting = mode == "trace";
    } else if (arg == "--thresholds") {
        for (const double p : parse_list(value(), [&](std::string_view t) { return parse_fraction(arg, t); }))
            o.thresholds.push_back(p);
    } else if (arg == "--block-vectors") {
        o.block_vectors = parse_integer<std::size_t>(arg, value(), 1, max_block_vectors);
    } else if (arg == "--spill-dir") {
        o.spill_dir = std::string(value());
    } else if (arg == "--max-memory") {
        o.max_memory = parse_size(arg, value());
    }
    return true;
}

// --method and its settings; refused by the commands that need every eigenvalue.
bool parse_randomized_option(std::string_view arg, const value_reader& value, const command_info& c, options& o) {
    if (arg != "--method" && arg != "--oversample" && arg != "--power-iters" && arg != "--seed") return false;
    if (!prints_analysis(c.what)) return false;  // an unknown option there
    if (!supports_rsvd(c.what))
        throw usage_error(std::string(arg) + " does not apply to " + std::string(c.name) +
                          ": it needs every eigenvalue, which only the exact method computes");
    if (arg == "--method") {
        const auto name = value();
        if (name == "exact") o.method = method_choice::exact;
        else if (name == "rsvd") o.method = method_choice::rsvd;
        else if (name == "auto") o.method = method_choice::automatic;
        else throw usage_error("--method: '" + std::string(name) + "' is not exact, rsvd or auto");
    } else if (arg == "--oversample") {
        o.oversample = parse_integer<std::size_t>(arg, value(), 0, max_oversample);
    } else if (arg == "--power-iters") {
        o.power_iterations = parse_integer<std::size_t>(arg, value(), 0, max_power_iterations);
    } else if (arg == "--seed") {
        o.seed = parse_integer<std::uint64_t>(arg, value(), 0);
    }
    return true;
}

// The options of frontier, budget, allocate and report alone; false elsewhere.
bool parse_command_option(std::string_view arg, const value_reader& value, options& o) {
    if (arg == "--ks" && (o.what == command::frontier || o.what == command::report)) {
        o.frontier_ks = parse_list(value(), [&](std::string_view t) { return parse_integer<std::size_t>(arg, t, 1, max_dimension); });
    } else if (arg == "--threshold" && (o.what == command::budget || o.what == command::report)) {
        o.budget_threshold = parse_fraction(arg, value());
    } else if (arg == "--budget" && o.what == command::allocate) {
        o.budget = parse_budget(arg, value());
    } else if (arg == "--per" && o.what == command::allocate) {
        const auto scope = value();
        if (scope != "type" && scope != "matrix")
            throw usage_error("--per: '" + std::string(scope) + "' is not 'type' or 'matrix'");
        o.allocate_per_matrix = scope == "matrix";
    } else if (arg == "--plan" && o.what == command::allocate) {
        o.plan_file = std::string(value());
        const auto extension = o.plan_file.extension().string();
        if (extension != ".json" && !(extension.size() > 1 && format_named(extension.substr(1))))
            throw usage_error("--plan: '" + o.plan_file.string() + "' does not end in .json, .csv or .tsv");
    } else if (arg == "--objective" && (o.what == command::allocate || o.what == command::report)) {
        const auto name = value();
        if (name != "weighted" && name != "energy")
            throw usage_error("--objective: '" + std::string(name) + "' is not 'weighted' or 'energy'");
        o.energy_objective = name == "energy";
    } else if (arg == "--eig-precision" && (o.what == command::layers || o.what == command::report ||
                                            o.what == command::allocate || o.what == command::accumulate)) {
        const auto name = value();
        if (name != "single" && name != "double")
            throw usage_error("--eig-precision: '" + std::string(name) + "' is not 'single' or 'double'");
        o.matrix_precision = name == "single" ? eig_precision::float32 : eig_precision::float64;
    } else if (arg == "--out" && o.what == command::report) {
        o.out_dir = std::string(value());
    } else {
        return false;
    }
    return true;
}

}  // namespace

parameter_budget parse_budget(std::string_view flag, std::string_view text) {
    const std::string shown = std::string(flag) + ": '" + std::string(text) + "'";
    double number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    if (error != std::errc{} || end == text.data() || !(number >= 0) || unit.size() > 1)
        throw usage_error(shown + " is not a fraction such as 0.25 or 25%, or a parameter count such as 250M");
    if (number == 0) throw usage_error(shown + " keeps nothing: give a positive budget");
    if (unit == "%") {
        if (number > 100) throw usage_error(shown + " is more than 100% of the analysed parameters");
        return {number / 100, 0};
    }
    constexpr std::string_view prefixes = "KMGT";
    const auto at = unit.empty() ? std::string_view::npos
                                 : prefixes.find(static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0]))));
    if (!unit.empty() && at == std::string_view::npos)
        throw usage_error(shown + " has an unknown suffix (K, M, G, T: powers of 1000; % for a percentage)");
    const double count = number * (unit.empty() ? 1 : std::pow(1000.0, static_cast<double>(at + 1)));
    if (unit.empty() && number <= 1) return {number, 0};
    if (unit.empty() && count != std::floor(count))
        throw usage_error(shown + " is neither a fraction in (0, 1] nor a whole parameter count");
    if (count >= 0x1.0p63) throw usage_error(shown + " is too large");
    if (count < 1) throw usage_error(shown + " is less than one parameter");
    return {0, static_cast<std::uint64_t>(count)};
}

bool supports_rsvd(command c) noexcept {
    return prints_analysis(c) && c != command::layers && c != command::budget && c != command::compare;
}

bool prints_analysis(command c) noexcept { return c != command::inspect && c != command::accumulate; }

bool reads_states(command c) noexcept { return prints_analysis(c) && c != command::compare; }

std::uint64_t parse_size(std::string_view flag, std::string_view text) {
    auto bad = [&] {
        return usage_error(std::string(flag) + ": '" + std::string(text) +
                           "' is not a size such as 64M, 1G or 1.5GiB (K, M, G, T: powers of 1024)");
    };
    double number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc{} || end == text.data() || !(number > 0)) throw bad();
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    double scale = 1;
    if (!unit.empty()) {
        constexpr std::string_view prefixes = "KMGT";
        const auto at = prefixes.find(static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0]))));
        if (at != std::string_view::npos) {
            scale = std::pow(1024.0, static_cast<double>(at + 1));
            unit.remove_prefix(1);
            if (unit == "iB" || unit == "ib") unit = {};
        }
        if (unit == "B" || unit == "b") unit = {};
    }
    const double bytes = number * scale;
    if (!unit.empty() || !(bytes >= 1) || bytes >= 0x1.0p63) throw bad();
    return static_cast<std::uint64_t>(bytes);
}

parsed parse(int argc, const char* const* argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.empty()) throw usage_error("no command given (try 'adaptk-stream --help')");
    if (args[0] == "--help" || args[0] == "-h") return {std::nullopt, main_help()};
    if (args[0] == "--version") return {std::nullopt, version_text()};

    const command_info* chosen = nullptr;
    for (const auto& c : commands)
        if (c.name == args[0]) chosen = &c;
    if (chosen == nullptr) throw usage_error("unknown command '" + std::string(args[0]) + "' (try 'adaptk-stream --help')");

    options o;
    o.what = chosen->what;
    bool have_model = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        const value_reader value = [&]() -> std::string_view {
            if (i + 1 >= args.size()) throw usage_error(std::string(arg) + " needs a value");
            return args[++i];
        };
        if (arg == "--help" || arg == "-h") return {std::nullopt, command_help(*chosen)};
        if (arg == "--version") return {std::nullopt, version_text()};
        if (arg == "--quiet" || arg == "-q") {
            o.quiet = true;
        } else if (arg == "--hidden-size") {
            o.hidden_size = parse_integer<std::uint64_t>(arg, value(), 1, max_dimension);
        } else if (arg == "--format") {
            const auto name = value();
            const auto format = format_named(name);
            if (!format) throw usage_error("--format: '" + std::string(name) + "' is not 'csv', 'tsv' or 'json'");
            o.format = *format;
        } else if (arg == "--types") {
            o.types_file = std::string(value());
        } else if (parse_analysis_option(arg, value, *chosen, o) || parse_randomized_option(arg, value, *chosen, o) ||
                   parse_command_option(arg, value, o)) {
            continue;  // read by one of the three
        } else if (arg == "--from-state" && reads_states(o.what)) {
            if (have_model) throw usage_error("--from-state replaces MODEL: give one or the other");
            while (i + 1 < args.size() && !args[i + 1].starts_with("-")) o.state_inputs.emplace_back(std::string(args[++i]));
            if (o.state_inputs.empty()) throw usage_error("--from-state needs at least one state file");
            have_model = true;
        } else if (arg == "--part" && o.what == command::accumulate) {
            const auto text = value();
            const auto slash = text.find('/');
            o.part = parse_integer<std::size_t>(arg, text.substr(0, slash), 1);
            o.parts = slash == std::string_view::npos ? 0 : parse_integer<std::size_t>(arg, text.substr(slash + 1), 1);
            if (o.parts == 0 || o.part > o.parts) throw usage_error("--part: '" + std::string(text) + "' is not I/N with 1 <= I <= N");
        } else if (arg == "--state" && o.what == command::accumulate) {
            o.state_out = std::string(value());
        } else if (arg == "--per-matrix" && o.what == command::accumulate) {
            o.per_matrix_state = true;
        } else if (arg == "--model" && (o.what == command::layers || o.what == command::report)) {
            o.weights = std::string(value());
        } else if (arg.starts_with("-") && arg.size() > 1) {
            throw usage_error("unknown option '" + std::string(arg) + "' for " + std::string(chosen->name) +
                              " (try 'adaptk-stream " + std::string(chosen->name) + " --help')");
        } else if (!have_model) {
            o.model = std::string(arg);
            have_model = true;
        } else if (o.what == command::compare && o.model_b.empty()) {
            o.model_b = std::string(arg);
        } else if (!o.state_inputs.empty()) {
            throw usage_error("unexpected argument '" + std::string(arg) + "': --from-state replaces MODEL");
        } else {
            throw usage_error("unexpected argument '" + std::string(arg) + "' (" +
                              (o.what == command::compare ? "compare takes two models, A and B" : "one MODEL per run") +
                              ")");
        }
    }
    if (!have_model) throw usage_error(std::string(chosen->name) + ": no MODEL given");
    if (o.what == command::compare && o.model_b.empty())
        throw usage_error("compare: give two models, A and B (e.g. the F16 file and its quantized copy)");
    if (o.what == command::report && o.out_dir.empty()) throw usage_error("report: --out DIR is required");
    if (o.what == command::allocate && o.budget.fraction == 0 && o.budget.count == 0)
        throw usage_error("allocate: --budget is required (a fraction such as 0.25 or a count such as 250M)");
    if (o.what == command::allocate && o.allocate_per_matrix && o.method == method_choice::rsvd)
        throw usage_error("allocate --per matrix needs the exact per-matrix spectra (not --method rsvd)");
    if (o.what == command::accumulate && o.parts == 0) throw usage_error("accumulate: --part I/N is required");
    if (o.what == command::accumulate && o.state_out.empty()) throw usage_error("accumulate: --state FILE is required");
    if (o.what == command::accumulate && o.matrix_precision && !o.per_matrix_state)
        throw usage_error("accumulate: --eig-precision sets the per-matrix solves, which need --per-matrix");
    if (!o.weights.empty() && o.state_inputs.empty())
        throw usage_error("--model goes with --from-state (without state files, give MODEL alone)");
    if (!o.state_inputs.empty() && o.what == command::layers && o.weights.empty())
        throw usage_error("layers --from-state needs --model MODEL: r2_type and r2_universal project the weights on "
                          "the merged bases");
    if (!o.state_inputs.empty() && o.matrix_precision)
        throw usage_error("--eig-precision does not apply to --from-state: the per-matrix solves ran when the parts "
                          "were accumulated");
    if (!o.state_inputs.empty() && o.method == method_choice::rsvd)
        throw usage_error("--from-state: state files hold the exact method's Grams (leave out --method rsvd)");
    if (!o.state_inputs.empty() && !o.types_file.empty())
        throw usage_error("--types does not apply to --from-state: the naming was fixed when the states were accumulated");
    if (o.frontier_ks.empty()) o.frontier_ks = default_frontier_ks;
    return {o, {}};
}

}  // namespace adaptk::cli
