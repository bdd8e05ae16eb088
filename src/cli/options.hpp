#pragma once
// Command line of adaptk-stream: `adaptk-stream COMMAND MODEL [options]`.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace adaptk::cli {

enum class command { inspect, profile, groups, frontier, budget, layers, spectrum, report };

struct options {
    command what = command::profile;
    std::filesystem::path model;
    std::optional<std::uint64_t> hidden_size;
    std::optional<int> threads;
    bool quiet = false;
    std::size_t k = 32;
    bool center = false;
    bool trace_weighting = false;
    std::vector<double> thresholds{0.5, 0.9};
    std::vector<std::size_t> frontier_ks;
    double budget_threshold = 0.9;
    std::filesystem::path out_dir;
    std::size_t block_vectors = 1024;
};

/// What the command line asks for: run with options, or print text and exit 0.
struct parsed {
    std::optional<options> run;
    std::string text;  ///< --help / --version output when run is empty
};

/// Parses argv. Throws usage_error with a one-line message.
parsed parse(int argc, const char* const* argv);

}  // namespace adaptk::cli
