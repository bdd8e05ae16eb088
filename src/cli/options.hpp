#pragma once
// Command line of adaptk-stream: `adaptk-stream COMMAND MODEL [options]`.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adaptk/analysis.hpp"
#include "adaptk/table_writer.hpp"

namespace adaptk::cli {

enum class command { inspect, profile, groups, frontier, budget, layers, spectrum, report, allocate, compare, accumulate };
/// allocate --budget: a fraction of the analysed parameters, or a count.
struct parameter_budget {
    double fraction = 0;      ///< in (0, 1] when count is 0
    std::uint64_t count = 0;  ///< parameters; 0: use fraction
};

/// --method: auto picks rsvd only when the exact buffers would not fit --max-memory.
enum class method_choice { exact, rsvd, automatic };

struct options {
    command what = command::profile;
    std::filesystem::path model;
    std::filesystem::path model_b;  ///< compare: the second checkpoint (B)
    std::optional<std::uint64_t> hidden_size;
    std::filesystem::path types_file;  ///< --types: user naming rules; empty: built-in only
    std::optional<int> threads;
    bool quiet = false;
    std::size_t k = 32;
    bool center = false;
    bool trace_weighting = false;
    std::vector<double> thresholds{0.5, 0.9};
    std::vector<std::size_t> frontier_ks;
    double budget_threshold = 0.9;
    std::filesystem::path out_dir;
    std::filesystem::path spill_dir;  ///< --spill-dir; empty: $TMPDIR, else /tmp
    std::size_t block_vectors = 1024;
    method_choice method = method_choice::exact;
    std::size_t oversample = 10;
    std::size_t power_iterations = 2;
    std::uint64_t seed = 0;
    std::optional<std::uint64_t> max_memory;  ///< bytes
    /// --eig-precision (layers, report, allocate, accumulate --per-matrix); unset: single.
    std::optional<eig_precision> matrix_precision;
    table_format format = table_format::csv;  ///< stdout, or report's table files
    parameter_budget budget;                  ///< allocate: required
    bool allocate_per_matrix = false;         ///< allocate --per matrix
    bool energy_objective = false;            ///< allocate, report: --objective energy
    std::filesystem::path plan_file;          ///< allocate --plan: .json, .csv or .tsv
    /// --from-state: accumulate's state files, read in place of MODEL.
    std::vector<std::filesystem::path> state_inputs;
    std::size_t part = 0;   ///< accumulate --part I/N: I (1-based)
    std::size_t parts = 0;  ///< N
    std::filesystem::path state_out;  ///< accumulate --state FILE
    bool per_matrix_state = false;    ///< accumulate --per-matrix: each matrix's eigenvalues too
    /// layers, report with --from-state: --model MODEL, the weights re-read
    /// for the projection pass (empty: none).
    std::filesystem::path weights;
};

/// Whether a command can run the randomized method (it needs no full spectrum).
bool supports_rsvd(command c) noexcept;
/// Whether a command prints a table from the analysis (all but inspect and accumulate).
bool prints_analysis(command c) noexcept;
/// Whether a command takes --from-state in place of MODEL (compare reads two models).
bool reads_states(command c) noexcept;

/// "64M", "1G", "1.5GiB", "300000000": bytes (K/M/G/T are powers of 1024;
/// a trailing "B" or "iB" is allowed). Throws usage_error naming `flag`.
std::uint64_t parse_size(std::string_view flag, std::string_view text);

/// "0.25", "25%" (fractions of the analysed parameters), "250M", "1.1G",
/// "4096" (counts; K/M/G/T are powers of 1000). Throws usage_error naming `flag`.
parameter_budget parse_budget(std::string_view flag, std::string_view text);

/// What the command line asks for: run with options, or print text and exit 0.
struct parsed {
    std::optional<options> run;
    std::string text;  ///< --help / --version output when run is empty
};

/// Parses argv. Throws usage_error with a one-line message.
parsed parse(int argc, const char* const* argv);

}  // namespace adaptk::cli
