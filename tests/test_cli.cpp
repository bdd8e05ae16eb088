#define BOOST_TEST_MODULE cli
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

// End to end: the adaptk-stream binary (ADAPTK_STREAM) on the real checkpoints
// in tests/data (ADAPTK_TEST_DATA). Every run is an argv vector handed to
// posix_spawn; stdout, stderr and the exit status are checked separately.
// Contract under test: exit 0 / 1 (bad input, I/O) / 2 (usage); data only on
// stdout, and nothing there on failure; on failure the error is one stderr
// line, the last, after any notes the run had made (none with --quiet).

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "adaptk/analysis.hpp"
#include "adaptk/checkpoint.hpp"
#include "adaptk/classify.hpp"
#include "adaptk/gram_kernel.hpp"
#include "adaptk/partition.hpp"
#include "adaptk/safetensors_writer.hpp"
#include "adaptk/tensor_file.hpp"
#include "detail/linalg.hpp"
#include "support/cli_support.hpp"
#include "support/gguf_writer.hpp"
#include "support/json_schema_support.hpp"
#include "support/generated_weights.hpp"
#include "support/llama2c_writer.hpp"
#include "support/model_fixture.hpp"

namespace fs = std::filesystem;
using adaptk::test::parse_csv;
using adaptk::test::read_text;
using adaptk::test::run_result;
using adaptk::test::run_stream;
using adaptk::test::temp_dir;
namespace bdata = boost::unit_test::data;

namespace {

constexpr std::uint64_t stories_dim = 64;
// stories260K's lm_head holds the embedding's bytes (llama2.c shares the classifier):
// tied, so it counts once, as embed, and there is no head row.
const std::vector<std::string> all_types{"q", "k", "v", "o", "gate", "up", "down", "embed"};
const std::vector<std::string> analysis_commands{"profile", "groups", "frontier", "budget", "layers", "spectrum"};

// The columns include/adaptk/tables.hpp documents, in order.
const std::map<std::string, std::string> documented_headers{
    {"inspect", "name,dtype,shape,type,group,layer,bytes,offset,file"},
    {"profile", "type,group,matrices,vectors,dim,k,energy,pr,k50,k90,r2_type,r2_universal,gain,stable_rank,entropy_rank,method,error_estimate,error_bound"},
    {"groups", "group,types,pr,k50,k90,r2_type,r2_universal,gain"},
    {"frontier", "k,fraction_of_d,r2_type_mean,r2_universal_mean,compression"},
    {"budget", "type,k,vectors,params_kept,params_original,fraction,energy_kept,k_uniform,energy_kept_uniform"},
    {"layers", "name,layer,type,rows,cols,energy,pr,k50,k90,r2_self,r2_type,r2_universal"},
    {"spectrum", "type,index,eigenvalue,cumulative_fraction,error_estimate,error_bound"},
};

fs::path data(const std::string& relative) { return adaptk::test::data_dir() / relative; }
std::string stories_f32() { return data("stories260K/hf/f32").string(); }
std::string stories_bf16() { return data("stories260K/hf/bf16").string(); }
std::string stories_sharded_f32() { return data("stories260K/hf-sharded/f32").string(); }
std::string tiny_f16() { return data("llama-2-tiny-random/hf/f16").string(); }

/// Runs of the same argv give the same result: run each once per process.
const run_result& run_once(const std::vector<std::string>& args) {
    static std::map<std::vector<std::string>, run_result> runs;
    auto found = runs.find(args);
    if (found == runs.end()) found = runs.emplace(args, run_stream(args)).first;
    return found->second;
}

std::string describe(const std::vector<std::string>& args) {
    std::string text = "adaptk-stream";
    for (const auto& a : args) text += " '" + a + "'";
    return text;
}

/// Exit 0, and a CSV (or help text) on stdout.
void require_success(const run_result& r, const std::vector<std::string>& args) {
    BOOST_TEST_REQUIRE(r.status == 0, describe(args) << " exited " << r.status << "; stderr: " << r.err);
    BOOST_TEST_REQUIRE(!r.out.empty(), describe(args) << " printed nothing on stdout");
}

const run_result& succeed(const std::vector<std::string>& args) {
    const run_result& r = run_once(args);
    require_success(r, args);
    return r;
}

/// A failure: `status`, nothing on stdout, and the error as the last
/// "adaptk-stream: " line on stderr, holding every fragment. Lines before it
/// are the notes the run had made when it failed (printed so the one that
/// explains the failure is not lost); with --quiet the error is the only line.
void check_failure(const run_result& r, int status, const std::vector<std::string>& fragments,
                   const std::vector<std::string>& args) {
    BOOST_TEST(r.status == status, describe(args) << " exited " << r.status << "; stderr: " << r.err);
    BOOST_TEST(r.out.empty(), describe(args) << " printed on stdout: " << r.out.substr(0, 200));
    const auto lines = r.err_lines();
    BOOST_TEST_REQUIRE(!lines.empty(), describe(args) << " printed nothing on stderr");
    const bool quiet = std::find(args.begin(), args.end(), "-q") != args.end() ||
                       std::find(args.begin(), args.end(), "--quiet") != args.end();
    if (quiet) BOOST_TEST(lines.size() == 1u, describe(args) << " printed " << lines.size() << " stderr lines: " << r.err);
    BOOST_TEST((!r.err.empty() && r.err.back() == '\n'), "stderr does not end with a newline: " << r.err);
    for (const auto& line : lines) BOOST_TEST(line.starts_with("adaptk-stream: "), line);
    for (const auto& fragment : fragments)
        BOOST_TEST(lines.back().find(fragment) != std::string::npos, "the error lacks '" << fragment << "': " << r.err);
}

/// A parsed CSV with lookups by column name; every row as wide as the header.
struct csv_table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;

    std::size_t column(const std::string& name) const {
        const auto at = std::find(header.begin(), header.end(), name);
        if (at == header.end()) throw std::runtime_error("no column '" + name + "'");
        return static_cast<std::size_t>(at - header.begin());
    }
    const std::string& text(std::size_t row, const std::string& name) const { return rows.at(row).at(column(name)); }
    double number(std::size_t row, const std::string& name) const {
        const std::string& t = text(row, name);
        double value = 0;
        const auto [end, error] = std::from_chars(t.data(), t.data() + t.size(), value);
        if (t.empty() || error != std::errc{} || end != t.data() + t.size())
            throw std::runtime_error("column '" + name + "' row " + std::to_string(row) + ": '" + t + "' is not a number");
        return value;
    }
    std::size_t row_named(const std::string& first_field) const {
        for (std::size_t r = 0; r < rows.size(); ++r)
            if (rows[r].at(0) == first_field) return r;
        throw std::runtime_error("no row '" + first_field + "'");
    }
};

csv_table read_csv(const std::string& text) {
    auto records = parse_csv(text);
    BOOST_TEST_REQUIRE(!records.empty(), "no header row");
    csv_table t{records.front(), {records.begin() + 1, records.end()}};
    for (std::size_t r = 0; r < t.rows.size(); ++r)
        BOOST_TEST_REQUIRE(t.rows[r].size() == t.header.size(), "row " << r << " has " << t.rows[r].size() << " fields");
    return t;
}

std::string header_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::uint64_t header_bytes_of(const fs::path& safetensors) {
    const auto bytes = adaptk::test::read_bytes(safetensors);
    BOOST_TEST_REQUIRE(bytes.size() >= 8u);
    std::uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = (length << 8) | std::to_integer<std::uint64_t>(bytes[static_cast<std::size_t>(i)]);
    return length;
}

/// Same CSV up to rounding: every field the same text, or two numbers that
/// differ by at most `relative` times the largest magnitude in their column
/// (so small eigenvalues are judged on the scale of the spectrum). The exact
/// method's error columns state the rounding of each run's own accumulation
/// (report's per-matrix Grams have shorter float32 runs than a subcommand's
/// per-type one), so there `got` must only be no larger than `want`.
void check_csv_close(const std::string& got, const std::string& want, double relative, const std::string& what) {
    const csv_table a = read_csv(got), b = read_csv(want);
    BOOST_TEST_REQUIRE(a.header == b.header, what << ": headers differ");
    BOOST_TEST_REQUIRE(a.rows.size() == b.rows.size(), what << ": row counts differ");
    auto parse = [](const std::string& t, double& value) {
        const auto [end, error] = std::from_chars(t.data(), t.data() + t.size(), value);
        return !t.empty() && error == std::errc{} && end == t.data() + t.size();
    };
    const bool exact = std::find(a.header.begin(), a.header.end(), "method") == a.header.end() ||
                       std::all_of(a.rows.begin(), a.rows.end(), [&](const auto& row) { return row[a.column("method")] == "exact"; });
    for (std::size_t c = 0; c < a.header.size(); ++c) {
        if (exact && (a.header[c] == "error_estimate" || a.header[c] == "error_bound")) {
            for (std::size_t r = 0; r < a.rows.size(); ++r) {
                double u = 0, v = 0;
                BOOST_TEST((parse(a.rows[r][c], u) && parse(b.rows[r][c], v) && u <= v * (1 + relative)),
                           what << " row " << r << " column " << a.header[c] << ": " << a.rows[r][c] << " vs " << b.rows[r][c]);
            }
            continue;
        }
        double scale = 0, value = 0;
        for (const auto& row : b.rows)
            if (parse(row[c], value)) scale = std::max(scale, std::abs(value));
        for (std::size_t r = 0; r < a.rows.size(); ++r) {
            const std::string &x = a.rows[r][c], &y = b.rows[r][c];
            if (x == y) continue;
            double u = 0, v = 0;
            BOOST_TEST((parse(x, u) && parse(y, v) && std::abs(u - v) <= relative * scale),
                       what << " row " << r << " column " << a.header[c] << ": '" << x << "' vs '" << y << "'");
        }
    }
}

// report accumulates each matrix's Gram on its own (it needs them for layers.csv)
// and sums them in float64; the other commands flush each matrix's float32
// ssyrk sums into one float64 accumulator. The sums differ in rounding order,
// so report's tables match `layers` byte for byte and the others to this tolerance.
constexpr double report_tolerance = 1e-6;

/// argv with "@MODEL" standing for stories260K f32 (tests/data is only known at run time).
struct argv_case {
    std::string label;
    std::vector<std::string> args;
    std::string fragment;  ///< must appear in the output under test
};

std::ostream& operator<<(std::ostream& out, const argv_case& c) { return out << c.label; }

std::vector<std::string> with_model(std::vector<std::string> args) {
    for (auto& a : args)
        if (a == "@MODEL") a = stories_f32();
    return args;
}

const std::vector<argv_case> help_cases{
    {"--help", {"--help"}, "Usage: adaptk-stream COMMAND MODEL"},
    {"-h", {"-h"}, "Usage: adaptk-stream COMMAND MODEL"},
    {"--version", {"--version"}, "adaptk-stream "},
    {"inspect --help", {"inspect", "--help"}, "Usage: adaptk-stream inspect MODEL"},
    {"profile --help", {"profile", "--help"}, "Usage: adaptk-stream profile MODEL"},
    {"groups --help", {"groups", "--help"}, "Usage: adaptk-stream groups MODEL"},
    {"frontier --help", {"frontier", "--help"}, "Usage: adaptk-stream frontier MODEL"},
    {"budget --help", {"budget", "--help"}, "Usage: adaptk-stream budget MODEL"},
    {"layers --help", {"layers", "--help"}, "Usage: adaptk-stream layers MODEL"},
    {"spectrum --help", {"spectrum", "--help"}, "Usage: adaptk-stream spectrum MODEL"},
    {"report --help", {"report", "--help"}, "Usage: adaptk-stream report MODEL"},
    {"allocate --help", {"allocate", "--help"}, "Usage: adaptk-stream allocate MODEL"},
    {"help after MODEL", {"profile", "@MODEL", "--help"}, "Usage: adaptk-stream profile MODEL"},
    {"command --version", {"budget", "--version"}, "adaptk-stream "},
};

const std::vector<argv_case> usage_cases{
    {"no command", {}, "no command given"},
    {"unknown command", {"profil", "@MODEL"}, "unknown command 'profil'"},
    {"unknown option", {"profile", "@MODEL", "--bogus"}, "unknown option '--bogus'"},
    {"option of another command", {"profile", "@MODEL", "--threshold", "0.5"}, "unknown option '--threshold'"},
    {"analysis option on inspect", {"inspect", "@MODEL", "--k", "8"}, "--k"},
    {"--k at the end", {"profile", "@MODEL", "--k"}, "--k needs a value"},
    {"--k 0", {"profile", "@MODEL", "--k", "0"}, "--k: '0'"},
    {"--k abc", {"profile", "@MODEL", "--k", "abc"}, "--k: 'abc'"},
    {"--k -3", {"profile", "@MODEL", "--k", "-3"}, "--k: '-3'"},
    {"--k 8x", {"profile", "@MODEL", "--k", "8x"}, "--k: '8x'"},
    {"--threshold 1.5", {"budget", "@MODEL", "--threshold", "1.5"}, "--threshold: '1.5'"},
    {"--threshold 0", {"budget", "@MODEL", "--threshold", "0"}, "--threshold: '0'"},
    {"--thresholds with a bad item", {"profile", "@MODEL", "--thresholds", "0.99,abc"}, "--thresholds: 'abc'"},
    {"--ks with a zero", {"frontier", "@MODEL", "--ks", "8,0"}, "--ks: '0'"},
    {"--universal-weighting max", {"profile", "@MODEL", "--universal-weighting", "max"}, "'max'"},
    {"two MODEL arguments", {"profile", "@MODEL", "@MODEL"}, "unexpected argument"},
    {"no MODEL", {"profile"}, "no MODEL"},
    {"report without --out", {"report", "@MODEL"}, "--out"},
    {"--format xml", {"profile", "@MODEL", "--format", "xml"}, "--format: 'xml'"},
    {"--format at the end", {"inspect", "@MODEL", "--format"}, "--format needs a value"},
    {"usage checked before the model is opened", {"profile", "/nonexistent/model", "--k", "0"}, "--k: '0'"},
    {"--method bogus", {"profile", "@MODEL", "--method", "fast"}, "--method: 'fast' is not exact, rsvd or auto"},
    {"--method on layers", {"layers", "@MODEL", "--method", "rsvd"}, "only the exact method"},
    {"--seed on budget", {"budget", "@MODEL", "--seed", "3"}, "--seed does not apply to budget"},
    {"--oversample -1", {"profile", "@MODEL", "--oversample", "-1"}, "--oversample: '-1'"},
    {"--max-memory 12X", {"profile", "@MODEL", "--max-memory", "12X"}, "--max-memory: '12X' is not a size"},
    {"--max-memory 0", {"profile", "@MODEL", "--max-memory", "0"}, "--max-memory: '0'"},
    {"--center with rsvd", {"profile", "@MODEL", "--method", "rsvd", "--center"}, "--center is not supported"},
    {"allocate without --budget", {"allocate", "@MODEL"}, "allocate: --budget is required"},
    {"--budget 0", {"allocate", "@MODEL", "--budget", "0"}, "--budget: '0' keeps nothing"},
    {"--budget 0%", {"allocate", "@MODEL", "--budget", "0%"}, "--budget: '0%' keeps nothing"},
    {"--budget 1.5", {"allocate", "@MODEL", "--budget", "1.5"}, "--budget: '1.5' is neither a fraction in (0, 1] nor"},
    {"--budget 150%", {"allocate", "@MODEL", "--budget", "150%"}, "is more than 100% of the analysed parameters"},
    {"--budget -1", {"allocate", "@MODEL", "--budget", "-1"}, "--budget: '-1' is not a fraction such as 0.25"},
    {"--budget 3X", {"allocate", "@MODEL", "--budget", "3X"}, "--budget: '3X' has an unknown suffix"},
    {"--per layer", {"allocate", "@MODEL", "--budget", "0.5", "--per", "layer"}, "--per: 'layer' is not 'type' or 'matrix'"},
    {"--objective bogus", {"allocate", "@MODEL", "--budget", "0.5", "--objective", "max"}, "--objective: 'max'"},
    {"--plan of an unknown kind", {"allocate", "@MODEL", "--budget", "0.5", "--plan", "plan.txt"},
     "--plan: 'plan.txt' does not end in .json, .csv or .tsv"},
    {"--budget on profile", {"profile", "@MODEL", "--budget", "0.5"}, "unknown option '--budget'"},
    {"per-matrix allocation with rsvd", {"allocate", "@MODEL", "--budget", "0.5", "--per", "matrix", "--method", "rsvd"},
     "allocate --per matrix needs the exact per-matrix spectra"},
    {"allocate with --center", {"allocate", "@MODEL", "--budget", "0.5", "--center"},
     "--center does not apply to allocate: a rank plan factorizes the uncentered weights"},
    // An option a command would ignore is refused, naming why.
    {"--universal-weighting on compare", {"compare", "@MODEL", "@MODEL", "--universal-weighting", "trace"},
     "--universal-weighting does not apply to compare: its output has no universal-basis column (profile, groups, "
     "frontier, layers and report have)"},
    {"--universal-weighting on spectrum", {"spectrum", "@MODEL", "--universal-weighting", "sum"},
     "--universal-weighting does not apply to spectrum: its output has no universal-basis column"},
    {"--universal-weighting on budget", {"budget", "@MODEL", "--universal-weighting", "trace"},
     "--universal-weighting does not apply to budget"},
    {"--universal-weighting on allocate", {"allocate", "@MODEL", "--budget", "0.5", "--universal-weighting", "trace"},
     "--universal-weighting does not apply to allocate"},
    {"--thresholds on groups", {"groups", "@MODEL", "--thresholds", "0.99"},
     "--thresholds does not apply to groups: its table has no k50/k90 columns to add to (profile, layers, report and "
     "compare have)"},
    {"--thresholds on frontier", {"frontier", "@MODEL", "--thresholds", "0.99"}, "--thresholds does not apply to frontier"},
    {"--thresholds on spectrum", {"spectrum", "@MODEL", "--thresholds", "0.99"}, "--thresholds does not apply to spectrum"},
    {"--thresholds on budget", {"budget", "@MODEL", "--thresholds", "0.99"}, "--thresholds does not apply to budget"},
    {"--thresholds on allocate", {"allocate", "@MODEL", "--budget", "0.5", "--thresholds", "0.99"},
     "--thresholds does not apply to allocate"},
    {"--k on budget", {"budget", "@MODEL", "--k", "8"}, "--k does not apply to budget: its K per type comes from --threshold"},
    // Every numeric option is bounded, so no value reaches the library as an absurd size.
    {"--power-iters 2^64-1", {"profile", "@MODEL", "--method", "rsvd", "--power-iters", "18446744073709551615"},
     "--power-iters: '18446744073709551615' is not an integer in [0, 100]"},
    {"--block-vectors huge", {"profile", "@MODEL", "--block-vectors", "99999999999999"},
     "--block-vectors: '99999999999999' is not an integer in [1, 65536]"},
    {"--oversample huge", {"profile", "@MODEL", "--oversample", "99999999999"}, "--oversample: '99999999999' is not an integer in"},
    {"--k huge", {"profile", "@MODEL", "--k", "99999999999"}, "--k: '99999999999' is not an integer in [1, 1048576]"},
    {"--ks huge", {"frontier", "@MODEL", "--ks", "8,99999999999"}, "--ks: '99999999999' is not an integer in"},
    {"--threads huge", {"profile", "@MODEL", "--threads", "99999999"}, "--threads: '99999999' is not an integer in [1, 4096]"},
    {"--hidden-size huge", {"profile", "@MODEL", "--hidden-size", "1099511627776"}, "--hidden-size: '1099511627776'"},
    {"--eig-precision half", {"layers", "@MODEL", "--eig-precision", "half"},
     "--eig-precision: 'half' is not 'single' or 'double'"},
    {"--eig-precision on profile", {"profile", "@MODEL", "--eig-precision", "double"},
     "unknown option '--eig-precision' for profile"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

// ---- help, version, usage errors -------------------------------------------

BOOST_DATA_TEST_CASE(help_and_version_go_to_stdout_with_exit_0, bdata::make(help_cases), c) {
    const auto args = with_model(c.args);
    const run_result r = run_stream(args);
    BOOST_TEST(r.status == 0, describe(args) << " exited " << r.status);
    BOOST_TEST(r.err.empty(), "stderr: " << r.err);
    BOOST_TEST(r.out.starts_with(c.fragment), "stdout: " << r.out);
    BOOST_TEST((!r.out.empty() && r.out.back() == '\n'));
}

BOOST_AUTO_TEST_CASE(version_is_one_line) {
    const run_result r = run_stream({"--version"});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 1);
}

// ADAPTK_GRAM_KERNEL for the programs run_stream starts (they inherit our environment).
struct gram_kernel_env : adaptk::test::scoped_env {
    explicit gram_kernel_env(const std::string& value) : scoped_env("ADAPTK_GRAM_KERNEL", value) {}
};

BOOST_AUTO_TEST_CASE(version_names_the_active_gram_kernel) {
    const std::string runnable = "; this CPU runs " + adaptk::runnable_gram_kernel_names() + ")\n";
    const run_result chosen = run_stream({"--version"});
    BOOST_TEST(chosen.out.find("(Gram kernel " + std::string(adaptk::gram_kernel_name(adaptk::active_gram_kernel())) +
                               runnable) != std::string::npos,
               chosen.out);
    const gram_kernel_env fp32("fp32");
    const run_result forced = run_stream({"--version"});
    BOOST_TEST(forced.out.find("(Gram kernel fp32" + runnable) != std::string::npos, forced.out);
}

BOOST_AUTO_TEST_CASE(an_unknown_or_unrunnable_gram_kernel_is_a_usage_error) {
    const std::string available = "(available: " + adaptk::runnable_gram_kernel_names() + ")";
    {
        const gram_kernel_env unknown("avx2");
        check_failure(run_stream({"profile", stories_bf16(), "-q"}), 2,
                      {"adaptk-stream: ADAPTK_GRAM_KERNEL: unknown Gram kernel 'avx2' " + available}, {"profile"});
    }
    for (const adaptk::gram_kernel kernel : adaptk::all_gram_kernels()) {
        if (adaptk::gram_kernel_runnable(kernel)) continue;
        const std::string name(adaptk::gram_kernel_name(kernel));
        const gram_kernel_env unrunnable(name);
        check_failure(run_stream({"profile", stories_bf16(), "-q"}), 2,
                      {"adaptk-stream: ADAPTK_GRAM_KERNEL: Gram kernel '" + name + "' cannot run on this CPU " + available},
                      {"profile"});
    }
}

BOOST_AUTO_TEST_CASE(main_help_lists_every_command) {
    const run_result r = run_stream({"--help"});
    BOOST_TEST_REQUIRE(r.status == 0);
    for (const std::string command : {"inspect", "profile", "groups", "frontier", "budget", "layers", "spectrum", "report"})
        BOOST_TEST(r.out.find("  " + command + " ") != std::string::npos, command);
}

BOOST_DATA_TEST_CASE(usage_errors_exit_2_with_one_stderr_line, bdata::make(usage_cases), c) {
    const auto args = with_model(c.args);
    check_failure(run_stream(args), 2, {c.fragment}, args);
}

// A full disk behind stdout is an I/O error (exit 1), not a silent success.
// Without /dev/full the case is reported as skipped, not passed.
BOOST_AUTO_TEST_CASE(failed_writes_to_stdout_exit_1,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                         return boost::test_tools::assertion_result(fs::exists("/dev/full"));
                     })) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"--help"}, {"--version"}, {"profile", "--help"}, {"inspect", stories_f32(), "-q"}, {"spectrum", stories_f32(), "-q"}}) {
        const run_result r = run_stream(args, "/dev/full");
        BOOST_TEST(r.status == 1, describe(args) << " > /dev/full exited " << r.status);
        BOOST_TEST(r.err_lines().size() == 1u, describe(args) << ": " << r.err);
        BOOST_TEST(r.err.find("stdout") != std::string::npos, r.err);
    }
}

// ---- bad input ---------------------------------------------------------------

namespace {

/// One defective model: how to make it in a scratch dir, and what the message must name.
struct bad_input {
    std::string label;
    std::function<fs::path(const fs::path& dir, std::vector<std::string>& fragments)> make;
};

std::ostream& operator<<(std::ostream& out, const bad_input& c) { return out << c.label; }

fs::path write_file(const fs::path& path, const std::string& bytes) {
    adaptk::test::write_text(path, bytes);
    return path;
}

const std::vector<bad_input> bad_inputs{
    {"missing path",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         const fs::path p = dir / "no-such-model";
         fragments = {p.string()};
         return p;
     }},
    {"directory without weights",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         const fs::path p = dir / "empty-model";
         fs::create_directory(p);
         write_file(p / "config.json", "{\"hidden_size\": 64}");
         fragments = {p.string()};
         return p;
     }},
    {"Git LFS pointer",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         fragments = {"model.safetensors", "Git LFS"};
         return write_file(dir / "model.safetensors",
                           "version https://git-lfs.github.com/spec/v1\n"
                           "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
                           "size 1176152\n");
     }},
    {"garbage",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         std::string text;
         while (text.size() < 4096) text += "this is not a safetensors file; ";
         fragments = {"garbage.safetensors"};
         return write_file(dir / "garbage.safetensors", text);
     }},
    {"header that is not JSON",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         fragments = {"notjson.safetensors"};
         return write_file(dir / "notjson.safetensors", std::string("\x10\0\0\0\0\0\0\0", 8) + "{not json at all");
     }},
    {"7-byte file",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         fragments = {"seven.safetensors", "7 bytes"};
         return write_file(dir / "seven.safetensors", "abcdefg");
     }},
    {"empty file",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         fragments = {"zero.safetensors"};
         return write_file(dir / "zero.safetensors", "");
     }},
    {"file truncated inside the header",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         const fs::path source = data("stories260K/hf/f32/model.safetensors");
         const std::string bytes = read_text(source);
         fragments = {"cut-header.safetensors"};
         return write_file(dir / "cut-header.safetensors", bytes.substr(0, 8 + header_bytes_of(source) / 2));
     }},
    {"file truncated inside the data",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         const fs::path source = data("stories260K/hf/f32/model.safetensors");
         const std::string bytes = read_text(source);
         const std::uint64_t data_start = 8 + header_bytes_of(source);
         const std::uint64_t cut = data_start + (bytes.size() - data_start) / 2;
         // The header is intact, so the reader knows exactly how short the data is.
         fragments = {"cut-data.safetensors", "tensor '", "data section", std::to_string(cut - data_start)};
         return write_file(dir / "cut-data.safetensors", bytes.substr(0, cut));
     }},
    {"sharded index naming a missing shard",
     [](const fs::path& dir, std::vector<std::string>& fragments) {
         const fs::path p = dir / "sharded";
         fs::copy(data("stories260K/hf-sharded/f32"), p);
         fs::remove(p / "model-00002-of-00003.safetensors");
         fragments = {"model-00002-of-00003.safetensors", "tensor '"};
         return p;
     }},
};

}  // namespace

BOOST_DATA_TEST_CASE(bad_input_exits_1_with_one_line_naming_the_file, bdata::make(bad_inputs), c) {
    const temp_dir dir;
    std::vector<std::string> fragments;
    const fs::path model = c.make(dir.path(), fragments);
    for (const std::string command : {"inspect", "profile"}) {
        const std::vector<std::string> args{command, model.string()};
        check_failure(run_stream(args), 1, fragments, args);
    }
    // --quiet silences notes, never the error.
    const std::vector<std::string> quiet{"spectrum", model.string(), "--quiet"};
    check_failure(run_stream(quiet), 1, fragments, quiet);
    // report fails before writing anything.
    const fs::path out = dir / "report-out";
    const std::vector<std::string> report{"report", model.string(), "--out", out.string(), "--ks", "8,32"};
    check_failure(run_stream(report), 1, fragments, report);
    BOOST_TEST((!fs::exists(out) || fs::is_empty(out)), "report left files in " << out);
}

namespace {

/// A model whose tensors parse but whose content or settings cannot be
/// analysed: the one-line message (last stderr line) and any note that must
/// come before it, so the reason is printed even though the run fails.
struct unanalysable_case {
    std::string label;
    std::vector<std::tuple<std::string, adaptk::dtype, std::vector<std::uint64_t>>> tensors;
    std::string config_json;  ///< empty: no config.json
    std::vector<std::string> extra_args;
    std::string message;
    std::string note;  ///< empty: none required
};

std::ostream& operator<<(std::ostream& out, const unanalysable_case& c) { return out << c.label; }

fs::path write_tensors(const fs::path& dir, const unanalysable_case& c) {
    fs::create_directories(dir);
    adaptk::safetensors_writer writer(dir / "model.safetensors");
    for (const auto& [name, type, shape] : c.tensors) writer.declare(name, type, shape);
    for (const auto& [name, type, shape] : c.tensors) {
        std::uint64_t elements = 1;
        for (const auto extent : shape) elements *= extent;
        writer.write(std::vector<std::byte>(elements * adaptk::dtype_bytes(type), std::byte{0x3c}));
    }
    writer.finish();
    if (!c.config_json.empty()) adaptk::test::write_text(dir / "config.json", c.config_json);
    return dir;
}

const std::string q0 = "model.layers.0.self_attn.q_proj.weight";
const std::vector<unanalysable_case> unanalysable_cases{
    {"a lone empty matrix", {{q0, adaptk::dtype::f32, {0, 64}}}, "", {},
     "none of the 1 weight tensors is a non-empty matrix, so the hidden size is unknown", ""},
    {"config hidden_size 2^40 with an empty tensor", {{q0, adaptk::dtype::f32, {0, 1099511627776}}},
     R"({"hidden_size": 1099511627776})", {}, "is a non-empty matrix", ""},
    {"config hidden_size that no matrix has", {{q0, adaptk::dtype::f32, {4, 6}}}, R"({"hidden_size": 1099511627776})", {},
     "hidden size 1099511627776 is no axis length of the weight matrices (their axes: 4, 6)", ""},
    {"--hidden-size that no matrix has", {{q0, adaptk::dtype::f32, {4, 6}}}, "", {"--hidden-size", "5"},
     "--hidden-size 5 is no axis length", ""},
    {"a dtype that is not analysed", {{q0, adaptk::dtype::i8, {4, 4}}}, R"({"hidden_size": 4})", {},
     "no weight matrix to analyse at hidden size 4; 1 left out, the first: ", "dtype I8 is not analysed: 1 tensor left out"},
    {"no tensor named like a weight", {{"blocks.0.wq", adaptk::dtype::f32, {4, 4}}}, "", {}, "(--types FILE adds naming rules)", ""},
    {"a spill directory that does not exist", {{q0, adaptk::dtype::f32, {4, 4}}}, "", {"--spill-dir", "/nonexistent/spill"},
     "/nonexistent/spill: cannot create the temporary spill file", "hidden size 4 inferred"},
};

}  // namespace

BOOST_DATA_TEST_CASE(unanalysable_models_fail_with_the_reason_after_their_notes, bdata::make(unanalysable_cases), c) {
    const temp_dir dir;
    const fs::path model = write_tensors(dir / "model", c);
    std::vector<std::string> args{"profile", model.string()};
    args.insert(args.end(), c.extra_args.begin(), c.extra_args.end());
    const run_result r = run_stream(args);
    BOOST_TEST(r.status == 1, describe(args) << " exited " << r.status << "; stderr: " << r.err);
    BOOST_TEST(r.out.empty(), r.out);
    const auto lines = r.err_lines();
    BOOST_TEST_REQUIRE(!lines.empty());
    BOOST_TEST(lines.back().starts_with("adaptk-stream: "), lines.back());
    BOOST_TEST(lines.back().find(c.message) != std::string::npos, "last line lacks '" << c.message << "': " << r.err);
    BOOST_TEST(r.err.find("bad_alloc") == std::string::npos, r.err);
    BOOST_TEST(r.err.find("analyse:") == std::string::npos, r.err);  // no library-internal message
    if (c.label == "no tensor named like a weight") BOOST_TEST(r.err.find("--hidden-size") == std::string::npos, r.err);
    if (!c.note.empty()) {
        const auto note = std::find_if(lines.begin(), lines.end() - 1,
                                       [&](const std::string& line) { return line.find(c.note) != std::string::npos; });
        BOOST_TEST((note != lines.end() - 1), "no note '" << c.note << "' before the error: " << r.err);
    }
}

BOOST_AUTO_TEST_CASE(missing_shard_message_names_a_tensor_of_that_shard) {
    const temp_dir dir;
    const fs::path p = dir / "sharded";
    fs::copy(data("stories260K/hf-sharded/f32"), p);
    fs::remove(p / "model-00002-of-00003.safetensors");
    const run_result r = run_stream({"inspect", p.string()});
    BOOST_TEST_REQUIRE(r.status == 1);
    const auto start = r.err.find("tensor '");
    BOOST_TEST_REQUIRE(start != std::string::npos, r.err);
    const auto end = r.err.find('\'', start + 8);
    BOOST_TEST_REQUIRE(end != std::string::npos, r.err);
    const std::string tensor = r.err.substr(start + 8, end - start - 8);
    const auto index = nlohmann::json::parse(read_text(p / "model.safetensors.index.json"));
    BOOST_TEST_REQUIRE(index["weight_map"].contains(tensor), tensor);
    BOOST_TEST(index["weight_map"][tensor].get<std::string>() == "model-00002-of-00003.safetensors");
}

// ---- inspect -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(inspect_lists_every_tensor_of_stories260K) {
    const std::vector<std::string> args{"inspect", stories_f32()};
    const run_result& r = succeed(args);
    BOOST_TEST(header_line(r.out) == documented_headers.at("inspect"));
    const csv_table t = read_csv(r.out);
    BOOST_TEST_REQUIRE(t.rows.size() == 48u);

    const std::size_t down = t.row_named("model.layers.0.mlp.down_proj.weight");
    BOOST_TEST(t.text(down, "dtype") == "F32");
    BOOST_TEST(t.text(down, "shape") == "64x172");
    BOOST_TEST(t.text(down, "type") == "down");
    BOOST_TEST(t.text(down, "group") == "mlp");
    BOOST_TEST(t.text(down, "layer") == "0");
    BOOST_TEST(t.text(down, "bytes") == "44032");  // 64·172·4

    std::size_t norms = 0;
    std::set<std::string> names;
    for (std::size_t row = 0; row < t.rows.size(); ++row) {
        const std::string& name = t.text(row, "name");
        names.insert(name);
        if (name.find("norm") != std::string::npos) {
            ++norms;
            BOOST_TEST(t.text(row, "type").empty(), name);
            BOOST_TEST(t.text(row, "group").empty(), name);
            BOOST_TEST(t.text(row, "layer").empty(), name);
        } else {
            BOOST_TEST(!t.text(row, "type").empty(), name);
        }
        BOOST_TEST(t.text(row, "dtype") == "F32", name);
        // bytes = 4 · product of the shape, and the span lies inside the named file.
        std::uint64_t elements = 1;
        const std::string& shape = t.text(row, "shape");
        for (std::size_t from = 0; from <= shape.size();) {
            const std::size_t x = std::min(shape.find('x', from), shape.size());
            elements *= std::stoull(shape.substr(from, x - from));
            from = x + 1;
        }
        BOOST_TEST(t.number(row, "bytes") == 4.0 * static_cast<double>(elements), name);
        const fs::path file = t.text(row, "file");
        BOOST_TEST_REQUIRE(fs::is_regular_file(file), file);
        BOOST_TEST(t.number(row, "offset") + t.number(row, "bytes") <= static_cast<double>(fs::file_size(file)), name);
    }
    BOOST_TEST(names.size() == 48u);
    BOOST_TEST(norms == 11u);  // 2 per layer + the final norm

    BOOST_TEST(r.err_lines().size() == 1u, r.err);
    BOOST_TEST(r.err.find("48 tensors") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("hidden size 64 (config.json)") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(inspect_of_the_sharded_copy_lists_the_same_tensors) {
    const csv_table single = read_csv(succeed({"inspect", stories_f32()}).out);
    const csv_table sharded = read_csv(succeed({"inspect", stories_sharded_f32()}).out);
    auto by_name = [](const csv_table& t) {
        std::map<std::string, std::string> rows;
        for (std::size_t r = 0; r < t.rows.size(); ++r)
            rows[t.text(r, "name")] = t.text(r, "dtype") + "|" + t.text(r, "shape") + "|" + t.text(r, "bytes") + "|" +
                                      t.text(r, "type") + "|" + t.text(r, "group") + "|" + t.text(r, "layer");
        return rows;
    };
    BOOST_TEST(sharded.rows.size() == 48u);
    BOOST_TEST((by_name(single) == by_name(sharded)));
    std::set<std::string> files;
    for (std::size_t r = 0; r < sharded.rows.size(); ++r) files.insert(fs::path(sharded.text(r, "file")).filename().string());
    BOOST_TEST(files.size() == 3u);
}

BOOST_AUTO_TEST_CASE(inspect_of_the_safetensors_file_itself_lists_the_same_names) {
    const csv_table dir = read_csv(succeed({"inspect", stories_f32()}).out);
    const csv_table file = read_csv(succeed({"inspect", stories_f32() + "/model.safetensors"}).out);
    BOOST_TEST_REQUIRE(file.rows.size() == dir.rows.size());
    for (std::size_t r = 0; r < dir.rows.size(); ++r) BOOST_TEST(file.text(r, "name") == dir.text(r, "name"));
}

BOOST_AUTO_TEST_CASE(inspect_shows_f16) {
    const run_result& r = succeed({"inspect", tiny_f16()});
    const csv_table t = read_csv(r.out);
    BOOST_TEST_REQUIRE(t.rows.size() == 12u);
    for (std::size_t row = 0; row < t.rows.size(); ++row) BOOST_TEST(t.text(row, "dtype") == "F16");
    BOOST_TEST(t.text(t.row_named("model.layers.0.mlp.gate_proj.weight"), "shape") == "32x8");
    BOOST_TEST(r.err.find("hidden size 8 (config.json)") != std::string::npos, r.err);
}

// ---- analysis tables -------------------------------------------------------------

BOOST_DATA_TEST_CASE(tables_have_the_documented_header, bdata::make(analysis_commands), command) {
    const run_result& r = succeed({command, stories_f32()});
    BOOST_TEST(header_line(r.out) == documented_headers.at(command));
    BOOST_TEST(r.out.back() == '\n');
    BOOST_TEST(r.out.find('\r') == std::string::npos);
    read_csv(r.out);  // well-formed, every row as wide as the header
}

BOOST_AUTO_TEST_CASE(profile_has_one_consistent_row_per_type) {
    const csv_table t = read_csv(succeed({"profile", stories_f32()}).out);
    BOOST_TEST_REQUIRE(t.rows.size() == all_types.size());
    const std::map<std::string, std::string> group_of{{"q", "attention"}, {"k", "attention"}, {"v", "attention"},
                                                      {"o", "attention"}, {"gate", "mlp"},    {"up", "mlp"},
                                                      {"down", "mlp"},    {"embed", "embedding"}, {"head", "embedding"}};
    const double d = stories_dim;
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
        const std::string& type = t.text(r, "type");
        BOOST_TEST(type == all_types[r]);
        BOOST_TEST(t.text(r, "group") == group_of.at(type));
        BOOST_TEST(t.number(r, "dim") == d);
        BOOST_TEST(t.number(r, "k") == 32.0);
        BOOST_TEST(t.number(r, "matrices") == (type == "embed" || type == "head" ? 1.0 : 5.0), type);
        const double r2_type = t.number(r, "r2_type"), r2_universal = t.number(r, "r2_universal");
        BOOST_TEST(r2_type >= r2_universal - 1e-12, type);
        BOOST_TEST((r2_universal >= 0 && r2_type <= 1 + 1e-12), type);
        BOOST_TEST(t.number(r, "gain") == r2_type / r2_universal, boost::test_tools::tolerance(1e-12));
        const double k50 = t.number(r, "k50"), k90 = t.number(r, "k90");
        BOOST_TEST((1 <= k50 && k50 <= k90 && k90 <= d), type << ": k50 " << k50 << ", k90 " << k90);
        const double pr = t.number(r, "pr");
        BOOST_TEST((1 <= pr && pr <= d), type << ": pr " << pr);
        BOOST_TEST(t.number(r, "energy") > 0, type);
    }
    // Tied embeddings: stories260K's head is the embedding matrix, counted once.
    BOOST_TEST(t.number(t.row_named("embed"), "matrices") == 1.0);
}

BOOST_AUTO_TEST_CASE(groups_has_the_group_rows_in_order) {
    const csv_table t = read_csv(succeed({"groups", stories_f32()}).out);
    BOOST_TEST_REQUIRE(t.rows.size() == 5u);
    const std::vector<std::string> names{"attention", "mlp", "embedding", "all", "mlp/attention"};
    for (std::size_t r = 0; r < names.size(); ++r) BOOST_TEST(t.text(r, "group") == names[r]);
    BOOST_TEST(t.text(0, "types") == "q k v o");
    for (std::size_t r = 0; r < 4; ++r)
        BOOST_TEST(t.number(r, "r2_type") >= t.number(r, "r2_universal") - 1e-12, t.text(r, "group"));
}

BOOST_AUTO_TEST_CASE(budget_fractions_are_in_0_1) {
    const csv_table t = read_csv(succeed({"budget", stories_f32()}).out);
    BOOST_TEST_REQUIRE(t.rows.size() == all_types.size() + 1);
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
        const std::string& type = t.text(r, "type");
        BOOST_TEST(type == (r < all_types.size() ? all_types[r] : "total"));
        const double fraction = t.number(r, "fraction");
        BOOST_TEST((fraction > 0 && fraction <= 1), type << ": fraction " << fraction);
        BOOST_TEST(t.number(r, "params_kept") <= t.number(r, "params_original"), type);
        BOOST_TEST(t.number(r, "energy_kept") >= 0.9 - 1e-12, type);
        if (r < all_types.size()) {
            const double k = t.number(r, "k");
            BOOST_TEST((1 <= k && k <= double(stories_dim)), type);
        }
    }
}

// ---- allocate: ranks under a parameter budget ------------------------------------------------------

// Rows of an allocate table by scope: the units, then total and uniform.
struct allocation_rows {
    csv_table table;
    std::vector<std::size_t> units;
    std::size_t total = 0, uniform = 0;
};

allocation_rows read_allocation(const std::string& text) {
    allocation_rows a{read_csv(text), {}, 0, 0};
    BOOST_TEST_REQUIRE(a.table.header == (std::vector<std::string>{"scope", "name", "type", "layer", "k", "params_kept",
                                                                   "params_original", "energy_kept", "fraction", "k_max"}),
                       boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(a.table.rows.size() >= 3u);
    a.total = a.table.rows.size() - 2;
    a.uniform = a.table.rows.size() - 1;
    BOOST_TEST_REQUIRE(a.table.text(a.total, "scope") == "total");
    BOOST_TEST_REQUIRE(a.table.text(a.uniform, "scope") == "uniform");
    for (std::size_t r = 0; r < a.total; ++r) a.units.push_back(r);
    return a;
}

BOOST_AUTO_TEST_CASE(allocate_per_type_spends_the_budget_on_the_best_components) {
    const std::vector<std::string> args{"allocate", stories_f32(), "--budget", "0.25"};
    const run_result& r = succeed(args);
    const allocation_rows a = read_allocation(r.out);
    const csv_table profile = read_csv(succeed({"profile", stories_f32()}).out);
    const csv_table spectrum = read_csv(succeed({"spectrum", stories_f32()}).out);
    BOOST_TEST_REQUIRE(a.units.size() == all_types.size());
    double kept = 0, original = 0, weighted = 0;
    for (const std::size_t u : a.units) {
        const auto& t = a.table;
        BOOST_TEST(t.text(u, "scope") == "type");
        BOOST_TEST(t.text(u, "name") == all_types[u]);
        const double k = t.number(u, "k"), vectors = profile.number(profile.row_named(all_types[u]), "vectors");
        // Cost K·(vectors + d); K at most the break-even rank ⌊vectors·d / (vectors + d)⌋.
        BOOST_TEST(t.number(u, "params_kept") == k * (vectors + stories_dim));
        BOOST_TEST(t.number(u, "params_original") == vectors * stories_dim);
        BOOST_TEST(t.number(u, "k_max") == std::floor(vectors * stories_dim / (vectors + stories_dim)));
        BOOST_TEST(k <= t.number(u, "k_max"));
        // energy_kept: the spectrum table's cumulative fraction at K.
        if (k > 0)
            BOOST_TEST(t.number(u, "energy_kept") ==
                           spectrum.number(u * stories_dim + static_cast<std::size_t>(k) - 1, "cumulative_fraction"),
                       boost::test_tools::tolerance(1e-12));
        kept += t.number(u, "params_kept");
        original += t.number(u, "params_original");
        weighted += t.number(u, "params_original") * t.number(u, "energy_kept");
    }
    BOOST_TEST(a.table.number(a.total, "params_kept") == kept);
    BOOST_TEST(a.table.number(a.total, "params_original") == original);
    BOOST_TEST(kept <= std::floor(0.25 * original));
    BOOST_TEST(kept > 0.25 * original - (64 + 860), "budget left unspent beyond one component: " << kept);
    BOOST_TEST(a.table.number(a.total, "energy_kept") == weighted / original, boost::test_tools::tolerance(1e-12));
    // The uniform K at the same budget keeps no more.
    BOOST_TEST(a.table.number(a.uniform, "params_kept") <= std::floor(0.25 * original));
    BOOST_TEST(a.table.number(a.uniform, "energy_kept") <= a.table.number(a.total, "energy_kept"));
    BOOST_TEST(r.err.find("at most") != std::string::npos, r.err);  // the optimality bound
}

BOOST_AUTO_TEST_CASE(allocate_counts_and_percentages_name_the_same_budget) {
    const std::string model = stories_f32();
    BOOST_TEST(succeed({"allocate", model, "--budget", "20K"}).out == succeed({"allocate", model, "--budget", "20000"}).out);
    BOOST_TEST(succeed({"allocate", model, "--budget", "25%"}).out == succeed({"allocate", model, "--budget", "0.25"}).out);
    const allocation_rows a = read_allocation(succeed({"allocate", model, "--budget", "20K"}).out);
    BOOST_TEST(a.table.number(a.total, "params_kept") <= 20000);
    BOOST_TEST(a.table.number(a.total, "params_kept") > 20000 - (860 + 64));
}

BOOST_AUTO_TEST_CASE(allocate_per_matrix_follows_the_layers_spectra) {
    const allocation_rows a = read_allocation(succeed({"allocate", stories_f32(), "--budget", "0.3", "--per", "matrix"}).out);
    const csv_table layers = read_csv(succeed({"layers", stories_f32()}).out);
    BOOST_TEST_REQUIRE(a.units.size() == layers.rows.size());
    for (const std::size_t u : a.units) {
        const auto& t = a.table;
        BOOST_TEST(t.text(u, "scope") == "matrix");
        BOOST_TEST(t.text(u, "name") == layers.text(u, "name"));
        BOOST_TEST(t.text(u, "layer") == layers.text(u, "layer"));
        const double rows = layers.number(u, "rows"), cols = layers.number(u, "cols"), k = t.number(u, "k");
        BOOST_TEST(t.number(u, "params_kept") == k * (rows + cols));
        BOOST_TEST(t.number(u, "k_max") == std::floor(rows * cols / (rows + cols)));
        // At K ≥ k90 (of the layers table) the matrix keeps 90% of its energy, below it less.
        const double k90 = layers.number(u, "k90");
        if (k >= k90) BOOST_TEST(t.number(u, "energy_kept") >= 0.9 - 1e-12, t.text(u, "name"));
        else BOOST_TEST(t.number(u, "energy_kept") < 0.9, t.text(u, "name"));
    }
}

BOOST_AUTO_TEST_CASE(allocate_objectives_rank_differently) {
    const allocation_rows weighted = read_allocation(succeed({"allocate", stories_f32(), "--budget", "0.1"}).out);
    const allocation_rows energy =
        read_allocation(succeed({"allocate", stories_f32(), "--budget", "0.1", "--objective", "energy"}).out);
    // The embedding holds most of the energy: the energy objective spends more on it.
    const std::size_t embed = 7;
    BOOST_TEST_REQUIRE(weighted.table.text(embed, "name") == "embed");
    BOOST_TEST(energy.table.number(embed, "k") > weighted.table.number(embed, "k"));
}

BOOST_AUTO_TEST_CASE(allocate_budget_edges_give_clear_results) {
    const std::string model = stories_f32();
    // Below one component (the cheapest type, k: 160 vectors + 64): every k is 0.
    const run_result& small = succeed({"allocate", model, "--budget", "200"});
    const allocation_rows none = read_allocation(small.out);
    for (const std::size_t u : none.units) BOOST_TEST(none.table.number(u, "k") == 0);
    BOOST_TEST(none.table.number(none.total, "params_kept") == 0);
    BOOST_TEST(none.table.number(none.uniform, "k") == 0);
    BOOST_TEST(small.err.find("below one component of any unit (the cheapest costs 224)") != std::string::npos, small.err);
    // 100% and a count larger than the model: every unit at k_max, the rest unspent, said so.
    for (const std::string budget : {"1", "100%", "1G"}) {
        const run_result& all = succeed({"allocate", model, "--budget", budget});
        const allocation_rows a = read_allocation(all.out);
        for (const std::size_t u : a.units) BOOST_TEST(a.table.number(u, "k") == a.table.number(u, "k_max"), budget);
        BOOST_TEST(all.err.find("covers every unit at k_max") != std::string::npos, all.err);
        BOOST_TEST(a.table.number(a.total, "fraction") < 1);
    }
}

BOOST_AUTO_TEST_CASE(allocate_with_rsvd_stops_at_the_computed_eigenvalues) {
    const run_result& r = succeed({"allocate", stories_f32(), "--budget", "0.6", "--method", "rsvd", "--k", "8"});
    const allocation_rows a = read_allocation(r.out);
    for (const std::size_t u : a.units) {
        BOOST_TEST(a.table.number(u, "k_max") <= 8);
        BOOST_TEST(a.table.number(u, "k") <= 8);
    }
    BOOST_TEST(r.err.find("--method rsvd: ranks stop at the 8 eigenvalues computed") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(allocate_plans_read_back_as_the_table_says) {
    const temp_dir dir;
    const std::string model = stories_f32();
    const std::string json_plan = (dir / "plan.json").string(), csv_plan = (dir / "plan.csv").string();
    const run_result& r = succeed({"allocate", model, "--budget", "0.25", "--plan", json_plan});
    BOOST_TEST(r.out == succeed({"allocate", model, "--budget", "0.25", "--plan", csv_plan}).out);
    const allocation_rows a = read_allocation(r.out);
    std::map<std::string, double> k_of_type;
    for (const std::size_t u : a.units) k_of_type[a.table.text(u, "name")] = a.table.number(u, "k");

    // Every analysed tensor of inspect, with its type's K.
    const csv_table inspect = read_csv(succeed({"inspect", model}).out);
    const auto plan = nlohmann::json::parse(read_text(json_plan));
    BOOST_TEST(plan.at("per").get<std::string>() == "type");
    BOOST_TEST(plan.at("objective").get<std::string>() == "weighted");
    BOOST_TEST(plan.at("params_kept").get<double>() == a.table.number(a.total, "params_kept"));
    std::size_t analysed = 0;
    for (std::size_t i = 0; i < inspect.rows.size(); ++i) {
        const std::string type = inspect.text(i, "type"), name = inspect.text(i, "name");
        if (!k_of_type.contains(type)) continue;  // norms; the tied head
        ++analysed;
        const double k = k_of_type[type];
        BOOST_TEST(plan.at("ranks").at(name).get<double>() == k, name);
        const std::string module = name.substr(0, name.size() - std::string(".weight").size());
        BOOST_TEST(plan.at("rank_pattern").contains(module) == (k > 0), module);
        if (k > 0) BOOST_TEST(plan.at("rank_pattern").at(module).get<double>() == k, module);
    }
    BOOST_TEST(analysed == 36u);
    BOOST_TEST(plan.at("ranks").size() == analysed);
    BOOST_TEST(plan.at("target_modules").size() == plan.at("rank_pattern").size());

    const csv_table rows = read_csv(read_text(csv_plan));
    BOOST_TEST(rows.header == (std::vector<std::string>{"name", "type", "layer", "rows", "cols", "k", "params_kept"}),
               boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(rows.rows.size() == analysed);
    for (std::size_t i = 0; i < rows.rows.size(); ++i)
        BOOST_TEST(rows.number(i, "k") == plan.at("ranks").at(rows.text(i, "name")).get<double>());
    for (const auto& entry : fs::directory_iterator(dir.path()))
        BOOST_TEST(entry.path().extension() != ".tmp", entry.path());
}

BOOST_AUTO_TEST_CASE(allocate_per_matrix_plan_has_one_rank_per_tensor) {
    const temp_dir dir;
    const std::string plan_path = (dir / "plan.json").string();
    const allocation_rows a = read_allocation(
        succeed({"allocate", stories_f32(), "--budget", "0.3", "--per", "matrix", "--plan", plan_path}).out);
    const auto plan = nlohmann::json::parse(read_text(plan_path));
    BOOST_TEST(plan.at("per").get<std::string>() == "matrix");
    BOOST_TEST_REQUIRE(plan.at("ranks").size() == a.units.size());
    for (const std::size_t u : a.units)
        BOOST_TEST(plan.at("ranks").at(a.table.text(u, "name")).get<double>() == a.table.number(u, "k"));
}

BOOST_AUTO_TEST_CASE(allocate_plan_into_a_missing_directory_fails_before_any_output) {
    const temp_dir dir;
    const std::vector<std::string> args{"allocate", stories_f32(), "--budget", "0.25", "-q", "--plan",
                                        (dir / "missing" / "plan.json").string()};
    check_failure(run_stream(args), 1, {"plan.json"}, args);
}

BOOST_AUTO_TEST_CASE(report_frontier_puts_the_optimal_allocations_above_uniform_k) {
    const temp_dir dir;
    const fs::path out = dir / "report";
    const run_result r = run_stream({"report", stories_f32(), "--out", out.string()});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    const csv_table t = read_csv(read_text(out / "allocation.csv"));
    BOOST_TEST(t.header == (std::vector<std::string>{"series", "k", "params", "fraction", "energy_kept"}),
               boost::test_tools::per_element());
    std::map<std::string, std::vector<std::pair<double, double>>> series;  // (params, kept)
    for (std::size_t i = 0; i < t.rows.size(); ++i)
        series[t.text(i, "series")].emplace_back(t.number(i, "params"), t.number(i, "energy_kept"));
    for (const std::string name : {"uniform_universal", "uniform_type", "optimal_type", "optimal_matrix"})
        BOOST_TEST(series[name].size() >= 20u, name);
    BOOST_TEST_REQUIRE(series["threshold"].size() == 1u);
    // The threshold rule's point costs what the budget table's total says.
    const csv_table budget = read_csv(read_text(out / "budget.csv"));
    BOOST_TEST(series["threshold"][0].first == budget.number(budget.row_named("total"), "params_kept"));
    // Optimal K per type is exact for what it spends: at least what one K per type keeps with no more.
    for (const auto& [params, kept] : series["optimal_type"])
        for (const auto& [uniform_params, uniform_kept] : series["uniform_type"])
            if (uniform_params <= params) BOOST_TEST(kept >= uniform_kept - 1e-12, params << " vs " << uniform_params);
    for (const std::string name : {"optimal_type", "optimal_matrix"})
        for (std::size_t i = 1; i < series[name].size(); ++i)
            BOOST_TEST(series[name][i].second >= series[name][i - 1].second, name);
    const std::string svg = read_text(out / "allocation.svg");
    for (const std::string name : {"uniform_universal", "uniform_type", "optimal_type", "optimal_matrix"})
        BOOST_TEST(svg.find("fill=\"none\" data-series=\"" + name + "\"") != std::string::npos, name);
    BOOST_TEST(svg.find("<circle data-series=\"threshold\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(layers_has_one_row_per_matrix_in_layer_order) {
    const csv_table t = read_csv(succeed({"layers", stories_f32()}).out);
    BOOST_TEST_REQUIRE(t.rows.size() == 36u);  // 5 layers × 7 types + embed (head tied)
    std::map<std::string, std::vector<std::string>> layers_of;
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
        layers_of[t.text(r, "type")].push_back(t.text(r, "layer"));
        BOOST_TEST((t.number(r, "r2_type") >= 0 && t.number(r, "r2_self") <= 1 + 1e-12), t.text(r, "name"));
    }
    for (const std::string type : {"q", "k", "v", "o", "gate", "up", "down"})
        BOOST_TEST(layers_of[type] == (std::vector<std::string>{"0", "1", "2", "3", "4"}), type);
    BOOST_TEST(layers_of["embed"] == std::vector<std::string>{""});
    BOOST_TEST(!layers_of.contains("head"));
    BOOST_TEST(layers_of.size() == all_types.size());
}

BOOST_AUTO_TEST_CASE(spectrum_is_cumulative_per_type) {
    const csv_table t = read_csv(succeed({"spectrum", stories_f32()}).out);
    BOOST_TEST_REQUIRE(t.rows.size() == all_types.size() * stories_dim);
    for (std::size_t ti = 0; ti < all_types.size(); ++ti) {
        const std::size_t first = ti * stories_dim;
        const double top = t.number(first, "eigenvalue");
        double previous_fraction = 0, previous_value = top;
        for (std::size_t i = 0; i < stories_dim; ++i) {
            const std::size_t r = first + i;
            BOOST_TEST_REQUIRE(t.text(r, "type") == all_types[ti]);
            BOOST_TEST(t.number(r, "index") == double(i + 1));
            const double fraction = t.number(r, "cumulative_fraction"), value = t.number(r, "eigenvalue");
            BOOST_TEST(fraction >= previous_fraction, all_types[ti] << " index " << i + 1);
            BOOST_TEST(value <= previous_value + 1e-12 * top, all_types[ti] << " index " << i + 1);
            previous_fraction = fraction;
            previous_value = value;
        }
        BOOST_TEST(std::abs(previous_fraction - 1.0) <= 1e-12, all_types[ti] << " ends at " << previous_fraction);
    }
}

BOOST_AUTO_TEST_CASE(frontier_clamps_and_deduplicates_k_above_d) {
    const run_result& defaults = succeed({"frontier", stories_f32()});
    const csv_table t = read_csv(defaults.out);
    BOOST_TEST_REQUIRE(t.rows.size() == 3u);  // 8, 32, 64 (64..1500 all clamp to 64)
    const std::vector<double> ks{8, 32, 64};
    double previous = 0;
    for (std::size_t r = 0; r < ks.size(); ++r) {
        BOOST_TEST(t.number(r, "k") == ks[r]);
        BOOST_TEST(t.number(r, "fraction_of_d") == ks[r] / 64);
        BOOST_TEST(t.number(r, "compression") == 64 / ks[r]);
        BOOST_TEST(t.number(r, "r2_type_mean") >= t.number(r, "r2_universal_mean") - 1e-12);
        BOOST_TEST(t.number(r, "r2_universal_mean") >= previous);
        previous = t.number(r, "r2_universal_mean");
    }
    BOOST_TEST(std::abs(t.number(2, "r2_type_mean") - 1) <= 1e-12);
    BOOST_TEST(std::abs(t.number(2, "r2_universal_mean") - 1) <= 1e-12);
    BOOST_TEST(defaults.err.find("clamped to 64") != std::string::npos, defaults.err);

    const csv_table listed = read_csv(succeed({"frontier", stories_f32(), "--ks", "16,100,8,64,1500,8"}).out);
    BOOST_TEST_REQUIRE(listed.rows.size() == 3u);
    BOOST_TEST(listed.text(0, "k") == "8");
    BOOST_TEST(listed.text(1, "k") == "16");
    BOOST_TEST(listed.text(2, "k") == "64");
    // Within d, nothing is clamped and nothing is said.
    const run_result& inside = succeed({"frontier", stories_f32(), "--ks", "4,16"});
    BOOST_TEST(read_csv(inside.out).rows.size() == 2u);
    BOOST_TEST(inside.err.find("clamped") == std::string::npos, inside.err);
}

// ---- the same model in other files and dtypes ----------------------------------------------

BOOST_AUTO_TEST_CASE(single_file_and_sharded_give_identical_profiles) {
    for (const std::string command : {"profile", "groups", "spectrum"})
        BOOST_TEST(succeed({command, stories_f32()}).out == succeed({command, stories_sharded_f32()}).out, command);
}

BOOST_AUTO_TEST_CASE(bf16_profile_is_close_to_f32) {
    const csv_table f32 = read_csv(succeed({"profile", stories_f32()}).out);
    const csv_table bf16 = read_csv(succeed({"profile", stories_bf16()}).out);
    BOOST_TEST_REQUIRE(bf16.rows.size() == f32.rows.size());
    for (std::size_t r = 0; r < f32.rows.size(); ++r) {
        const std::string& type = f32.text(r, "type");
        BOOST_TEST(bf16.text(r, "type") == type);
        BOOST_TEST(bf16.number(r, "pr") == f32.number(r, "pr"), boost::test_tools::tolerance(1e-2));
        BOOST_TEST(std::abs(bf16.number(r, "r2_type") - f32.number(r, "r2_type")) <= 0.01, type);
        BOOST_TEST(std::abs(bf16.number(r, "r2_universal") - f32.number(r, "r2_universal")) <= 0.01, type);
    }
}

// ---- the randomized method ------------------------------------------------------------------------

// d = 64 and ℓ = 42: the second Krylov block completes the space, so rsvd is
// exact up to float32 products (relative 1e-6 of each column's scale).
BOOST_AUTO_TEST_CASE(rsvd_profile_on_stories260K_agrees_with_exact) {
    const csv_table exact = read_csv(succeed({"profile", stories_f32()}).out);
    const csv_table randomized = read_csv(succeed({"profile", stories_f32(), "--method", "rsvd"}).out);
    BOOST_TEST_REQUIRE(randomized.rows.size() == exact.rows.size());
    for (std::size_t r = 0; r < exact.rows.size(); ++r) {
        BOOST_TEST_CONTEXT("type " << exact.text(r, "type")) {
            BOOST_TEST(randomized.text(r, "method") == "rsvd");
            BOOST_TEST(exact.text(r, "method") == "exact");
            BOOST_TEST(randomized.text(r, "pr").empty());
            BOOST_TEST(randomized.text(r, "entropy_rank").empty());
            // exact: the float32 accumulation's rounding bound (type_spectrum::rounding_bound).
            BOOST_TEST(exact.number(r, "error_bound") > 0.0);
            BOOST_TEST(exact.number(r, "error_bound") <= 33 * 1e-4);  // (k + 1)·e/energy, e ≤ 1e-4·energy here
            for (const std::string column : {"energy", "r2_type", "r2_universal", "stable_rank"})
                BOOST_TEST(randomized.number(r, column) == exact.number(r, column), boost::test_tools::tolerance(1e-6));
            BOOST_TEST(randomized.text(r, "k50") == exact.text(r, "k50"));
            // The bound is the float32 products' rounding allowance here: √m·2⁻²⁴·(1 + √d + √n)·tr C per value.
            BOOST_TEST(randomized.number(r, "error_bound") <= 1e-3);
        }
    }
}

// A small sketch on real weights (k = 4, ℓ = 6, q = 0: a 12-column basis in
// d = 64): approximate, and within the error bound it prints.
BOOST_AUTO_TEST_CASE(rsvd_on_real_weights_stays_within_its_printed_bound) {
    const csv_table exact = read_csv(succeed({"profile", stories_f32(), "--k", "4"}).out);
    const csv_table randomized = read_csv(succeed({"profile", stories_f32(), "--k", "4", "--method", "rsvd", "--oversample",
                                                   "2", "--power-iters", "0"})
                                              .out);
    BOOST_TEST_REQUIRE(randomized.rows.size() == exact.rows.size());
    double worst = 0;
    for (std::size_t r = 0; r < exact.rows.size(); ++r) {
        const double error = exact.number(r, "r2_type") - randomized.number(r, "r2_type");
        worst = std::max(worst, error);
        BOOST_TEST(error >= -1e-6, exact.text(r, "type"));  // Ritz values never exceed the eigenvalues
        BOOST_TEST(error <= randomized.number(r, "error_bound"), exact.text(r, "type"));
    }
    BOOST_TEST(worst > 1e-6);  // the sketch really is approximate here
}

// A Krylov basis of two blocks (k = 4, ℓ = 6, q = 1: 18 columns in d = 64)
// that does not span the space: every printed eigenvalue within its own bound
// of the exact one, and the last block still changed the values.
BOOST_AUTO_TEST_CASE(rsvd_spectrum_of_a_partial_krylov_basis_stays_within_its_bounds) {
    const csv_table exact = read_csv(succeed({"spectrum", stories_f32()}).out);
    const csv_table randomized = read_csv(
        succeed({"spectrum", stories_f32(), "--k", "4", "--method", "rsvd", "--oversample", "2", "--power-iters", "1"}).out);
    std::map<std::string, std::vector<double>> exact_values;
    for (std::size_t r = 0; r < exact.rows.size(); ++r)
        exact_values[exact.text(r, "type")].push_back(exact.number(r, "eigenvalue"));
    BOOST_TEST_REQUIRE(randomized.rows.size() == 4 * exact_values.size());
    double largest_change = 0;
    for (std::size_t r = 0; r < randomized.rows.size(); ++r) {
        const auto& values = exact_values.at(randomized.text(r, "type"));
        const auto index = static_cast<std::size_t>(randomized.number(r, "index"));
        const double theta = randomized.number(r, "eigenvalue");
        BOOST_TEST_CONTEXT(randomized.text(r, "type") << " " << index) {
            BOOST_TEST(std::abs(values.at(index - 1) - theta) <= randomized.number(r, "error_bound"));
            BOOST_TEST(theta <= values.at(index - 1) * (1 + 1e-5));
        }
        largest_change = std::max(largest_change, randomized.number(r, "error_estimate") / theta);
    }
    BOOST_TEST(largest_change > 1e-6);  // the basis is not the whole space: the last block mattered
}

BOOST_AUTO_TEST_CASE(max_memory_between_two_block_sizes_shrinks_the_blocks) {
    // The library's plan for this checkpoint at 1024- and 64-vector blocks; a
    // limit between them runs with smaller blocks and says so.
    adaptk::checkpoint model(stories_f32());
    std::vector<std::string> notes;
    const auto matrices = model.matrices(stories_dim, notes);
    adaptk::analysis_options options;
    const std::uint64_t full = adaptk::planned_bytes(matrices, stories_dim, options);
    options.block_vectors = 64;
    const std::uint64_t smallest = adaptk::planned_bytes(matrices, stories_dim, options);
    BOOST_TEST_REQUIRE(smallest < full);
    const std::string between = std::to_string((smallest + full) / 2);
    const run_result& r = run_once({"profile", stories_f32(), "--max-memory", between});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.err.find("--max-memory: blocks of") != std::string::npos, r.err);
    BOOST_TEST(read_csv(r.out).rows.size() == read_csv(succeed({"profile", stories_f32()}).out).rows.size());
    // With our thread count given, the blocks are all it may shrink.
    const std::vector<std::string> too_small{"profile", stories_f32(), "--max-memory", std::to_string(smallest - 1),
                                             "--threads", std::to_string(adaptk::detail::blas_threads())};
    check_failure(run_once(too_small), 1, {"is too small"}, too_small);
}

// A checkpoint of one F32 q_proj, 8 seeded Gaussian vectors in a `wide` space:
// few vectors, large d.
void write_wide_query(const fs::path& dir, std::size_t wide, unsigned seed) {
    arma::arma_rng::set_seed(seed);
    adaptk::test::write_model(dir, wide, {{"model.layers.0.self_attn.q_proj.weight", arma::randn(8, wide)}},
                              adaptk::dtype::f32);
}

// The plan a run states, in MiB (rounded to 0.1 in the note).
double stated_plan(const run_result& r) {
    const std::size_t at = r.err.find(" plans ");
    BOOST_TEST_REQUIRE(at != std::string::npos, r.err);
    return std::stod(r.err.substr(at + 7));
}

// The plan a run states is the one --max-memory is checked against: given
// as the limit, layers keeps its blocks and its solver threads.
BOOST_AUTO_TEST_CASE(layers_fits_the_plan_it_states) {
    // The note rounds to 0.1 MiB: the limit rounds up.
    const double plan = stated_plan(succeed({"layers", stories_f32()}));
    const std::string limit = std::to_string(static_cast<std::uint64_t>((plan + 0.05) * 1048576));
    const run_result& r = run_once({"layers", stories_f32(), "--max-memory", limit});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.err.find("--max-memory:") == std::string::npos, r.err);  // no smaller blocks
    BOOST_TEST(read_csv(r.out).rows.size() == read_csv(succeed({"layers", stories_f32()}).out).rows.size());
}

// A limit that fits one BLAS thread but not two (blocks already the
// smallest) runs exact on one thread when --threads was not given, and says
// so: each thread's OpenBLAS buffers are in exact's plan. rsvd's threads share
// their buffers (each takes a part of every GEMM), so its plan is the same on
// one: there that step is skipped and C_u's extra passes go, one at a time
// (the last step: 0.8 and 1.1 MiB of plan here, so the stated plans, to 0.1
// MiB, tell them apart), and below the plan without them it refuses.
BOOST_AUTO_TEST_CASE(max_memory_drops_to_one_blas_thread_where_that_plans_less) {
    const temp_dir dir;
    constexpr std::size_t wide = 1024;
    write_wide_query(dir.path(), wide, 5);
    adaptk::checkpoint model(dir.path());
    std::vector<std::string> notes;
    const auto matrices = model.matrices(wide, notes);
    adaptk::analysis_options options;
    options.block_vectors = 64;
    auto plan_on = [&](adaptk::method how, int threads, std::size_t extra_passes) {
        const int before = adaptk::detail::blas_threads();
        adaptk::detail::set_blas_threads(threads);
        options.how = how;
        options.randomized.universal_extra_passes = extra_passes;
        const std::uint64_t bytes = adaptk::planned_bytes(matrices, wide, options);
        adaptk::detail::set_blas_threads(before);
        return bytes;
    };
    auto mib = [](std::uint64_t bytes) { return static_cast<double>(bytes) / 1048576; };
    const std::size_t extra = adaptk::rsvd_options{}.universal_extra_passes;
    BOOST_TEST_REQUIRE(extra == 2u);
    using adaptk::method;
    const std::uint64_t exact_one = plan_on(method::exact, 1, extra), exact_two = plan_on(method::exact, 2, extra);
    BOOST_TEST_REQUIRE(mib(exact_one) + 0.3 < mib(exact_two));
    const std::uint64_t rsvd_two = plan_on(method::rsvd, 2, extra);
    BOOST_TEST(plan_on(method::rsvd, 1, extra) == rsvd_two);
    const std::uint64_t one_pass = plan_on(method::rsvd, 2, 1), without_pass = plan_on(method::rsvd, 2, 0);
    BOOST_TEST_REQUIRE(mib(one_pass) + 0.15 < mib(rsvd_two));  // stated plans are printed to 0.1 MiB
    BOOST_TEST_REQUIRE(mib(without_pass) + 0.3 < mib(one_pass));

    const adaptk::test::scoped_env two("OPENBLAS_NUM_THREADS", "2");
    auto with = [&](const std::string& how, std::vector<std::string> extra) {
        std::vector<std::string> all{"profile", dir.path().string(), "--method", how, "--block-vectors", "64"};
        all.insert(all.end(), extra.begin(), extra.end());
        return all;
    };
    const double stated = stated_plan(succeed(with("exact", {})));
    if (std::abs(stated - mib(exact_one)) < std::abs(stated - mib(exact_two))) {
        BOOST_TEST_MESSAGE("skipped: the program runs one BLAS thread whatever OPENBLAS_NUM_THREADS says (qemu's wrapper)");
        return;
    }
    BOOST_TEST(std::abs(stated - mib(exact_two)) <= 0.05);
    const run_result& fitted = succeed(with("exact", {"--max-memory", std::to_string(exact_one)}));
    BOOST_TEST(fitted.err.find("--max-memory: one BLAS thread (of 2) to fit") != std::string::npos, fitted.err);
    for (const std::string threads : {"", "2"}) {
        const run_result& dropped = succeed(with("rsvd", threads.empty() ? std::vector<std::string>{"--max-memory", std::to_string(one_pass)}
                                                                         : std::vector<std::string>{"--max-memory", std::to_string(one_pass), "--threads", threads}));
        BOOST_TEST(dropped.err.find("--max-memory: 1 extra pass(es) for the universal basis (of 2) to fit") !=
                       std::string::npos,
                   dropped.err);
        BOOST_TEST(dropped.err.find("one BLAS thread") == std::string::npos, dropped.err);
        BOOST_TEST(std::abs(stated_plan(dropped) - mib(one_pass)) <= 0.05);
    }
    const auto refused = with("rsvd", {"--max-memory", std::to_string(without_pass - 1)});
    check_failure(run_once(refused), 1, {"is too small: the rsvd method needs"}, refused);
}

BOOST_AUTO_TEST_CASE(rsvd_output_depends_on_the_seed_alone) {
    const auto args = [](const std::string& seed) {
        return std::vector<std::string>{"spectrum", tiny_f16(), "--method", "rsvd", "--k", "4", "--oversample", "2",
                                        "--power-iters", "0", "--seed", seed};
    };
    const std::string first = succeed(args("7")).out;
    BOOST_TEST(run_stream(args("7")).out == first);  // a second process, same bits
    BOOST_TEST(succeed(args("8")).out != first);
}

BOOST_AUTO_TEST_CASE(max_memory_refuses_up_front_naming_what_it_needs) {
    const std::vector<std::string> args{"profile", stories_f32(), "--max-memory", "1M"};
    check_failure(run_once(args), 1, {"--max-memory 1.0 MiB is too small", "the exact method needs", "--method rsvd would need"},
                  args);
    // With room for it, auto stays exact; the plan for 1 GiB fits everything here.
    const csv_table t = read_csv(succeed({"profile", stories_f32(), "--max-memory", "1G", "--method", "auto"}).out);
    BOOST_TEST(t.text(0, "method") == "exact");
}

// --method auto by planned time and memory. d = 512 with 8 vectors: exact's
// two eigensolvers (c·d³ each) dwarf rsvd's passes (8·2d·376 multiply-adds),
// so auto takes rsvd and says why; stories (d = 64, thousands of vectors):
// exact's Gram is the cheaper, so auto stays exact; and a memory limit that
// only rsvd fits takes rsvd, saying so.
BOOST_AUTO_TEST_CASE(method_auto_picks_by_planned_time_and_memory) {
    const temp_dir dir;
    constexpr std::size_t wide = 512;
    write_wide_query(dir.path(), wide, 3);
    const run_result& cheap = run_once({"profile", dir.path().string(), "--method", "auto"});
    BOOST_TEST_REQUIRE(cheap.status == 0, cheap.err);
    BOOST_TEST(read_csv(cheap.out).text(0, "method") == "rsvd");
    BOOST_TEST(cheap.err.find("--method auto: rsvd is planned at") != std::string::npos, cheap.err);
    BOOST_TEST(read_csv(succeed({"profile", stories_f32(), "--method", "auto"}).out).text(0, "method") == "exact");

    // Under a limit just below exact's plan, auto takes rsvd, with blocks shrunk
    // and C_u's extra pass dropped as far as it needs.
    adaptk::checkpoint model(dir.path());
    std::vector<std::string> notes;
    const auto matrices = model.matrices(wide, notes);
    adaptk::analysis_options options;
    const std::uint64_t exact = adaptk::planned_bytes(matrices, wide, options);
    options.how = adaptk::method::rsvd;
    options.block_vectors = 64;
    options.randomized.universal_extra_passes = 0;
    BOOST_TEST_REQUIRE(adaptk::planned_bytes(matrices, wide, options) < exact);
    const run_result& tight = run_once({"profile", dir.path().string(), "--method", "auto", "--max-memory",
                                        std::to_string(exact - 1)});
    BOOST_TEST_REQUIRE(tight.status == 0, tight.err);
    BOOST_TEST(read_csv(tight.out).text(0, "method") == "rsvd");
    BOOST_TEST(tight.err.find("--method auto: exact would need") != std::string::npos, tight.err);
}

BOOST_AUTO_TEST_CASE(report_with_rsvd_writes_what_rsvd_computes) {
    const temp_dir dir;
    const fs::path out = dir / "report";
    const run_result r = run_stream({"report", stories_f32(), "--method", "rsvd", "--out", out.string()});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(listing(out) == (std::vector<std::string>{"allocation.csv", "allocation.svg", "frontier.csv", "frontier.svg",
                                                         "groups.csv", "profile.csv", "spectra.svg", "spectrum.csv",
                                                         "summary.json"}),
               boost::test_tools::per_element());
    BOOST_TEST(r.err.find("need every eigenvalue") != std::string::npos, r.err);
    const auto summary = nlohmann::json::parse(read_text(out / "summary.json"));
    BOOST_TEST(summary.at("method").get<std::string>() == "rsvd");
    BOOST_TEST(summary.at("passes").get<std::size_t>() == 2u);  // Krylov blocks of 42 + 22 columns span d = 64
    BOOST_TEST(summary.at("seed").get<std::uint64_t>() == 0u);
    BOOST_TEST(summary.at("universal_error_bound_absolute").get<double>() >= 0.0);
    BOOST_TEST(!summary.contains("universal_error_estimate"));
    BOOST_TEST(summary.at("types")[0].at("pr").is_null());
}

// ---- GGUF: the same model in llama.cpp's format ---------------------------------------------

namespace {

std::string stories_gguf() { return data("stories260K/stories260K.gguf").string(); }

constexpr double float32_unit_roundoff = 0x1p-24;

// Two float32 Gram accumulations of the same n vectors in different orders
// differ entrywise by at most 2·γ_n·(|X|ᵀ|X|)_ij, γ_n = n·u/(1 − n·u); the
// Frobenius norm of that PSD matrix is at most its trace, the energy, so by
// Weyl each eigenvalue moves at most 2·γ_n·energy (float64 steps add far less).
double reordering_bound(double vectors, double energy) {
    const double nu = vectors * float32_unit_roundoff;
    return 2 * nu / (1 - nu) * energy;
}

// Weyl for a perturbed Gram: each eigenvalue of `moved` lies within
// perturbation[type] = Σ (2‖W‖_F‖E‖_F + ‖E‖_F²) of `exact`'s, plus twice the
// float32 accumulation bound at `energy_slack` times the type's energy.
// Returns the largest move per type.
std::map<std::string, double> check_weyl_bound(const csv_table& exact, const csv_table& moved, const csv_table& profile,
                                               std::map<std::string, double>& perturbation, double energy_slack) {
    std::map<std::string, double> largest_move;
    BOOST_TEST_REQUIRE(moved.rows.size() == exact.rows.size());
    for (std::size_t r = 0; r < exact.rows.size(); ++r) {
        const std::string type = exact.text(r, "type");
        BOOST_TEST_REQUIRE(moved.text(r, "type") == type);
        const std::size_t p = profile.row_named(type);
        const double accumulation =
            2 * reordering_bound(profile.number(p, "vectors"), energy_slack * profile.number(p, "energy"));
        const double move = std::abs(moved.number(r, "eigenvalue") - exact.number(r, "eigenvalue"));
        largest_move[type] = std::max(largest_move[type], move);
        BOOST_TEST(move <= perturbation[type] + accumulation, type << " " << r);
    }
    return largest_move;
}

}  // namespace

// stories260K.gguf holds the safetensors' F32 values, but llama.cpp's converter
// permuted q/k rows within each head for its RoPE layout. A row permutation
// leaves WᵀW unchanged, so only the float32 summation order differs for q and k
// (bounded above); every other type streams identical rows in identical order
// and must print identical text.
BOOST_AUTO_TEST_CASE(gguf_tables_agree_with_the_safetensors_copy) {
    const csv_table st = read_csv(succeed({"spectrum", stories_f32()}).out);
    const csv_table gg = read_csv(succeed({"spectrum", stories_gguf()}).out);
    const csv_table profile = read_csv(succeed({"profile", stories_f32()}).out);
    BOOST_TEST_REQUIRE(gg.rows.size() == st.rows.size());
    BOOST_TEST_REQUIRE(gg.rows.size() == all_types.size() * stories_dim);
    for (std::size_t r = 0; r < st.rows.size(); ++r) {
        const std::string type = st.text(r, "type");
        BOOST_TEST_REQUIRE(gg.text(r, "type") == type);
        BOOST_TEST_REQUIRE(gg.text(r, "index") == st.text(r, "index"));
        if (type != "q" && type != "k") {
            BOOST_TEST(gg.rows[r] == st.rows[r], type);
            continue;
        }
        const std::size_t p = profile.row_named(type);
        const double bound = reordering_bound(profile.number(p, "vectors"), profile.number(p, "energy"));
        BOOST_TEST(std::abs(gg.number(r, "eigenvalue") - st.number(r, "eigenvalue")) <= bound, type << " " << r);
    }
    // The per-type profile columns of the unpermuted types are the same text;
    // r2_universal and gain mix in the q/k spectra through the universal basis.
    const csv_table gg_profile = read_csv(succeed({"profile", stories_gguf()}).out);
    BOOST_TEST_REQUIRE(gg_profile.rows.size() == profile.rows.size());
    for (std::size_t r = 0; r < profile.rows.size(); ++r) {
        const std::string type = profile.text(r, "type");
        for (const std::string column : {"matrices", "vectors", "dim", "k", "k50", "k90"})
            BOOST_TEST(gg_profile.text(r, column) == profile.text(r, column), type << " " << column);
        if (type != "q" && type != "k")
            for (const std::string column : {"energy", "pr", "r2_type", "stable_rank", "entropy_rank"})
                BOOST_TEST(gg_profile.text(r, column) == profile.text(r, column), type << " " << column);
    }
}

BOOST_AUTO_TEST_CASE(gguf_inspect_lists_the_ggml_names_and_reads_the_hidden_size) {
    const run_result& r = succeed({"inspect", stories_gguf()});
    const csv_table t = read_csv(r.out);
    BOOST_TEST(t.rows.size() == 48u);
    const std::size_t k = t.row_named("blk.3.attn_k.weight");
    BOOST_TEST(t.text(k, "type") == "k");
    BOOST_TEST(t.text(k, "layer") == "3");
    BOOST_TEST(t.text(k, "shape") == "32x64");
    BOOST_TEST(t.text(t.row_named("output.weight"), "type") == "head");
    BOOST_TEST(t.text(t.row_named("token_embd.weight"), "type") == "embed");
    BOOST_TEST(t.text(t.row_named("output_norm.weight"), "type") == "");
    BOOST_TEST(r.err.find("hidden size 64 (stories260K.gguf)") != std::string::npos, r.err);
}

// A Q8_0 GGUF written here from the F32 safetensors (llama.cpp's quantizer:
// d = max|x|/127 as fp16, q = round(x/d); down_proj, 172 wide, is not whole
// blocks and stays F32 as llama-quantize would keep it). Two claims:
// (1) the tool reads Q8_0 exactly: its tables equal those of an F32
//     safetensors file holding the dequantized values d·q, byte for byte;
// (2) against the original weights each eigenvalue of a type's Gram
//     G = Σ WᵀW moves by at most Σ (2‖W‖_F‖E‖_F + ‖E‖_F²) for E = d·q − W
//     (Weyl), plus the float32 accumulation bound of both runs.
BOOST_AUTO_TEST_CASE(q8_0_gguf_reads_exactly_and_stays_within_the_quantization_bound) {
    const adaptk::tensor_file source(data("stories260K/hf/f32/model.safetensors"));
    temp_dir dir;
    fs::create_directory(dir / "dequantized");
    fs::copy_file(data("stories260K/hf/f32/config.json"), dir / "dequantized" / "config.json");
    std::vector<adaptk::test::gguf_model_tensor> tensors;
    adaptk::safetensors_writer dequantized(dir / "dequantized" / "model.safetensors");
    std::map<std::string, double> perturbation;  // type -> Σ (2‖W‖‖E‖ + ‖E‖²)
    std::vector<std::vector<float>> dequantized_values;
    for (const auto& tensor : source.tensors()) {
        std::vector<float> values(tensor.elements);
        adaptk::decode(tensor.type, adaptk::test::stored_bytes(source, tensor).data(), values.size(), values.data());
        const bool quantize = tensor.shape.size() == 2 && tensor.shape[1] % 32 == 0;
        std::vector<float> stored = values;
        if (quantize) {
            const auto blocks = adaptk::test::quantize_q8_0(values);
            for (std::size_t i = 0; i < values.size(); ++i) {
                const std::byte* block = blocks.data() + i / 32 * 34;
                std::uint16_t scale;
                std::memcpy(&scale, block, 2);
                stored[i] = static_cast<float>(adaptk::test::half_reference(scale) *
                                               static_cast<std::int8_t>(block[2 + i % 32]));
            }
            if (const auto kind = adaptk::classify(tensor.name)) {
                double w2 = 0, e2 = 0;
                for (std::size_t i = 0; i < values.size(); ++i) {
                    w2 += double(values[i]) * values[i];
                    e2 += (double(stored[i]) - values[i]) * (double(stored[i]) - values[i]);
                }
                perturbation[std::string(adaptk::type_name(kind->type))] += 2 * std::sqrt(w2 * e2) + e2;
            }
        }
        tensors.push_back({tensor.name, tensor.shape, values,
                           quantize ? adaptk::test::gguf_code::type_q8_0 : adaptk::test::gguf_code::type_f32});
        dequantized.declare(tensor.name, adaptk::dtype::f32, tensor.shape);
        dequantized_values.push_back(std::move(stored));
    }
    for (const auto& values : dequantized_values) dequantized.write_values(std::span<const float>(values));
    dequantized.finish();
    adaptk::test::write_bytes(dir / "q8_0.gguf",
                              adaptk::test::gguf_model_image(
                                  tensors, {adaptk::test::gguf_kv_string("general.architecture", "llama"),
                                            adaptk::test::gguf_kv_u32("llama.embedding_length", 64)}));

    const std::string q8 = (dir / "q8_0.gguf").string();
    const csv_table inspect = read_csv(succeed({"inspect", q8}).out);
    BOOST_TEST(inspect.text(inspect.row_named("model.layers.0.mlp.up_proj.weight"), "dtype") == "Q8_0");
    BOOST_TEST(inspect.text(inspect.row_named("model.layers.0.mlp.down_proj.weight"), "dtype") == "F32");
    for (const std::string command : {"profile", "groups", "spectrum"})
        BOOST_TEST(succeed({command, q8}).out == succeed({command, (dir / "dequantized").string()}).out, command);

    const csv_table original = read_csv(succeed({"spectrum", stories_f32()}).out);
    const csv_table quantized = read_csv(succeed({"spectrum", q8}).out);
    const csv_table profile = read_csv(succeed({"profile", stories_f32()}).out);
    BOOST_TEST_REQUIRE(quantized.rows.size() == original.rows.size());
    // stories260K's lm_head holds the embedding's bytes: the tables count it once, as embed.
    perturbation.erase("head");
    BOOST_TEST(perturbation.size() == 7u);  // every type but down (and head)
    std::map<std::string, double> largest_move = check_weyl_bound(original, quantized, profile, perturbation, 1.01);
    // The bound is not vacuous: Q8_0 moves the spectrum by far less than the energy.
    for (const auto& [type, bound] : perturbation) {
        BOOST_TEST_MESSAGE(type << ": largest eigenvalue move " << largest_move[type] << ", bound " << bound);
        BOOST_TEST(bound < 0.05 * profile.number(profile.row_named(type), "energy"), type);
    }
    BOOST_TEST(largest_move["down"] == 0.0);  // left in F32, same rows, same order
}

namespace {

// The generator seed of each matrix of tests/data/ggml-quants/mixed.gguf (tools/ggml-fixtures).
const std::map<std::string, std::uint64_t>& mixed_gguf_seeds() {
    static const std::map<std::string, std::uint64_t> seeds{
        {"token_embd.weight", 10},     {"blk.0.attn_q.weight", 11},   {"blk.0.attn_k.weight", 12},
        {"blk.0.attn_v.weight", 13},   {"blk.0.attn_output.weight", 14}, {"blk.0.ffn_gate.weight", 15},
        {"blk.0.ffn_up.weight", 16},   {"blk.0.ffn_down.weight", 17}, {"output.weight", 18}};
    return seeds;
}

}  // namespace

// tests/data/ggml-quants/mixed.gguf: a generated d = 256 Llama layer quantized by
// llama.cpp (PROVENANCE.md), each matrix to another type (Q2_K..Q6_K, Q4_0,
// Q4_1, Q5_1; down_proj's Q4_1 blocks are cut by its column reads). test_ggml_quants
// proves the decoding equals llama.cpp's bit for bit; here (1) the streamed
// tables equal those of an F32 safetensors file of the decoded values, text
// for text, and (2) against the generated originals each eigenvalue moves by
// at most Σ (2‖W‖_F‖E‖_F + ‖E‖_F²) (Weyl) plus the float32 accumulation bound.
BOOST_AUTO_TEST_CASE(mixed_quantized_gguf_streams_exactly_and_stays_within_the_quantization_bound) {
    const fs::path mixed = data("ggml-quants/mixed.gguf");
    const adaptk::tensor_file file(mixed);
    const auto& seeds = mixed_gguf_seeds();
    temp_dir dir;
    for (const std::string copy : {"original", "dequantized"}) {
        fs::create_directory(dir / copy);
        adaptk::test::write_text(dir / copy / "config.json", "{\"hidden_size\": 256}");
    }
    adaptk::safetensors_writer original(dir / "original" / "model.safetensors");
    adaptk::safetensors_writer dequantized(dir / "dequantized" / "model.safetensors");
    std::vector<std::vector<float>> originals, decoded;
    std::map<std::string, double> perturbation;  // type -> Σ (2‖W‖‖E‖ + ‖E‖²)
    std::set<std::string> types_seen;
    for (const auto& tensor : file.tensors()) {
        const auto seed = seeds.find(tensor.name);
        if (seed == seeds.end()) continue;  // the F32 norms
        types_seen.insert(std::string(adaptk::dtype_name(tensor.type)));
        std::vector<float> values(tensor.elements);
        adaptk::decode(tensor.type, adaptk::test::stored_bytes(file, tensor).data(), values.size(), values.data());
        std::vector<float> source = adaptk::test::generated_matrix(seed->second, tensor.shape[0], tensor.shape[1]);
        double w2 = 0, e2 = 0;
        for (std::size_t i = 0; i < values.size(); ++i) {
            w2 += double(source[i]) * source[i];
            e2 += (double(values[i]) - source[i]) * (double(values[i]) - source[i]);
        }
        BOOST_TEST_REQUIRE(e2 < 0.1 * w2, tensor.name);  // the generator is the tool's
        perturbation[std::string(adaptk::type_name(adaptk::classify(tensor.name)->type))] += 2 * std::sqrt(w2 * e2) + e2;
        original.declare(tensor.name, adaptk::dtype::f32, tensor.shape);
        dequantized.declare(tensor.name, adaptk::dtype::f32, tensor.shape);
        originals.push_back(std::move(source));
        decoded.push_back(std::move(values));
    }
    BOOST_TEST(types_seen.size() == 8u);
    for (const auto& values : originals) original.write_values(std::span<const float>(values));
    for (const auto& values : decoded) dequantized.write_values(std::span<const float>(values));
    original.finish();
    dequantized.finish();

    const run_result& inspect = succeed({"inspect", mixed.string()});
    BOOST_TEST(inspect.err.find("9 weight matrices") != std::string::npos, inspect.err);
    for (const std::string command : {"profile", "groups", "spectrum", "layers"})
        BOOST_TEST(succeed({command, mixed.string()}).out == succeed({command, (dir / "dequantized").string()}).out,
                   command);

    const csv_table quantized = read_csv(succeed({"spectrum", mixed.string()}).out);
    const csv_table exact = read_csv(succeed({"spectrum", (dir / "original").string()}).out);
    const csv_table profile = read_csv(succeed({"profile", (dir / "original").string()}).out);
    BOOST_TEST_REQUIRE(quantized.rows.size() == exact.rows.size());
    BOOST_TEST_REQUIRE(exact.rows.size() == 9u * 256u);
    std::map<std::string, double> largest_move = check_weyl_bound(exact, quantized, profile, perturbation, 1.1);
    for (const auto& [type, bound] : perturbation) {
        BOOST_TEST_MESSAGE(type << ": largest eigenvalue move " << largest_move[type] << ", bound " << bound);
        BOOST_TEST(largest_move[type] > 0.0, type);  // quantization did move the spectrum
        // Q2_K's error is large, but the bound stays below the type's energy (the eigenvalues' sum).
        BOOST_TEST(bound < profile.number(profile.row_named(type), "energy"), type);
    }
}

// ---- compare ------------------------------------------------------------------------------------

namespace {

// Q8_0 blocks decoded by their definition (fp16 scale by half_reference, int8 values).
std::vector<double> q8_0_reference(std::span<const std::byte> blocks) {
    std::vector<double> values;
    for (std::size_t at = 0; at < blocks.size(); at += 34) {
        std::uint16_t scale;
        std::memcpy(&scale, blocks.data() + at, 2);
        for (std::size_t i = 0; i < 32; ++i)
            values.push_back(adaptk::test::half_reference(scale) * static_cast<double>(static_cast<std::int8_t>(blocks[at + 2 + i])));
    }
    return values;
}

}  // namespace

// The generated originals of ggml-quants/mixed.gguf as an F32 GGUF (A), against
// llama.cpp's mixed-type quantization of them and against a Q8_0 copy the test
// writes (B). difference_energy per type is checked against Σ‖W − W_q‖² / Σ‖W‖²
// computed here in float64 (mixed.gguf's values through adaptk::decode, which
// test_ggml_quants proves equal to llama.cpp's to_float; Q8_0's by its definition);
// the _a / _b columns equal each file's own profile, the changes their difference.
BOOST_AUTO_TEST_CASE(compare_f32_with_its_quantized_copies) {
    const fs::path mixed = data("ggml-quants/mixed.gguf");
    const adaptk::tensor_file file(mixed);
    const auto& seeds = mixed_gguf_seeds();
    std::vector<adaptk::test::gguf_model_tensor> originals, q8;
    std::map<std::string, std::map<std::string, std::pair<double, double>>> energies;  // B -> type -> (‖W‖², ‖E‖²)
    for (const auto& tensor : file.tensors()) {
        const auto seed = seeds.find(tensor.name);
        if (seed == seeds.end()) continue;
        auto source = adaptk::test::generated_matrix(seed->second, tensor.shape[0], tensor.shape[1]);
        std::vector<float> decoded(tensor.elements);
        adaptk::decode(tensor.type, adaptk::test::stored_bytes(file, tensor).data(), decoded.size(), decoded.data());
        const auto q8_values = q8_0_reference(adaptk::test::quantize_q8_0(source));
        const std::string type(adaptk::type_name(adaptk::classify(tensor.name)->type));
        for (std::size_t i = 0; i < source.size(); ++i) {
            const double w = source[i];
            energies["mixed"][type].first += w * w;
            energies["mixed"][type].second += (w - decoded[i]) * (w - decoded[i]);
            energies["q8_0"][type].first += w * w;
            energies["q8_0"][type].second += (w - q8_values[i]) * (w - q8_values[i]);
        }
        originals.push_back({tensor.name, tensor.shape, source, adaptk::test::gguf_code::type_f32});
        q8.push_back({tensor.name, tensor.shape, std::move(source), adaptk::test::gguf_code::type_q8_0});
    }
    const std::vector<std::vector<std::byte>> keys{adaptk::test::gguf_kv_string("general.architecture", "llama"),
                                                   adaptk::test::gguf_kv_u32("llama.embedding_length", 256)};
    temp_dir dir;
    adaptk::test::write_bytes(dir / "original.gguf", adaptk::test::gguf_model_image(originals, keys));
    adaptk::test::write_bytes(dir / "q8_0.gguf", adaptk::test::gguf_model_image(q8, keys));
    const std::string original = (dir / "original.gguf").string();
    const csv_table profile_a = read_csv(succeed({"profile", original}).out);
    for (const auto& [name, b] : {std::pair<std::string, std::string>{"mixed", mixed.string()},
                                  {"q8_0", (dir / "q8_0.gguf").string()}}) {
        const csv_table compared = read_csv(succeed({"compare", original, b}).out);
        const csv_table profile_b = read_csv(succeed({"profile", b}).out);
        BOOST_TEST_REQUIRE(compared.rows.size() == 9u, name);
        for (std::size_t row = 0; row < compared.rows.size(); ++row) {
            const std::string type = compared.text(row, "type");
            BOOST_TEST_CONTEXT(name << ", type " << type) {
                const auto [of_w, of_e] = energies.at(name).at(type);
                BOOST_TEST(of_e > 0.0);
                BOOST_TEST(compared.number(row, "difference_energy") == of_e / of_w, boost::test_tools::tolerance(1e-12));
                for (const std::string column : {"pr", "k50", "k90", "r2_type"}) {
                    const double in_a = profile_a.number(profile_a.row_named(type), column);
                    const double in_b = profile_b.number(profile_b.row_named(type), column);
                    BOOST_TEST(compared.number(row, column + "_a") == in_a, column);
                    BOOST_TEST(compared.number(row, column + "_b") == in_b, column);
                    BOOST_TEST(compared.number(row, column + "_change") == in_b - in_a, column);
                }
            }
        }
    }
    // Q8_0 loses less than the mix of 2- to 6-bit types on every type but the Q6_K head.
    const csv_table q8_rows = read_csv(succeed({"compare", original, (dir / "q8_0.gguf").string()}).out);
    const csv_table mixed_rows = read_csv(succeed({"compare", original, mixed.string()}).out);
    BOOST_TEST(q8_rows.number(q8_rows.row_named("o"), "difference_energy") <
               mixed_rows.number(mixed_rows.row_named("o"), "difference_energy"));  // Q2_K in mixed.gguf
}

BOOST_AUTO_TEST_CASE(compare_refuses_a_missing_tensor_and_a_single_model) {
    temp_dir dir;
    const std::vector<std::vector<std::byte>> keys{adaptk::test::gguf_kv_string("general.architecture", "llama"),
                                                   adaptk::test::gguf_kv_u32("llama.embedding_length", 32)};
    std::vector<adaptk::test::gguf_model_tensor> tensors{
        {"blk.0.attn_q.weight", {32, 32}, std::vector<float>(32 * 32, 0.5f)},
        {"blk.0.attn_v.weight", {32, 32}, std::vector<float>(32 * 32, 0.25f)}};
    adaptk::test::write_bytes(dir / "a.gguf", adaptk::test::gguf_model_image(tensors, keys));
    tensors.pop_back();
    adaptk::test::write_bytes(dir / "b.gguf", adaptk::test::gguf_model_image(tensors, keys));
    const std::vector<std::string> missing{"compare", (dir / "a.gguf").string(), (dir / "b.gguf").string(), "-q"};
    check_failure(run_stream(missing), 1,
                  {(dir / "b.gguf").string() + ": tensor 'blk.0.attn_v.weight': is not among its analysed matrices, but " +
                   (dir / "a.gguf").string() + " has it"},
                  missing);
    const std::vector<std::string> single{"compare", (dir / "a.gguf").string()};
    check_failure(run_stream(single), 2, {"compare: give two models, A and B"}, single);
    const std::vector<std::string> three{"compare", "x", "y", "z"};
    check_failure(run_stream(three), 2, {"unexpected argument 'z' (compare takes two models, A and B)"}, three);
}

// ---- llama2.c checkpoints -------------------------------------------------------------------------

namespace {

// The llama2.c file's weights copied into an F32 safetensors file under the
// same HF names (the test writer's layout, not the reader's), with config.json;
// version 2's matrices as the test's dequantization gives them.
void llama2c_as_safetensors(const fs::path& bin, const adaptk::test::llama2c_spec& spec, const fs::path& dir) {
    fs::create_directories(dir);
    adaptk::test::write_text(dir / "config.json", "{\"hidden_size\": " + std::to_string(spec.dim) + "}");
    const auto image = adaptk::test::read_bytes(bin);
    adaptk::safetensors_writer out(dir / "model.safetensors");
    std::uint64_t offset = spec.version == 0 ? 28 : 256;
    std::vector<std::vector<float>> values;
    for (const auto& t : adaptk::test::llama2c_layout(spec)) {
        const std::uint64_t n = adaptk::test::llama2c_elements(t);
        if (t.weight) {
            out.declare(t.name, adaptk::dtype::f32,
                        t.cols == 0 ? std::vector<std::uint64_t>{t.rows} : std::vector<std::uint64_t>{t.rows, t.cols});
            values.emplace_back(n);
            if (adaptk::test::llama2c_quantized(spec, t)) {
                for (std::uint64_t i = 0; i < n; ++i) {
                    float scale;
                    std::memcpy(&scale, image.data() + offset + n + i / std::uint64_t(spec.group) * 4, 4);
                    values.back()[i] = adaptk::test::dequantized(static_cast<std::int8_t>(image[offset + i]), scale);
                }
            } else {
                std::memcpy(values.back().data(), image.data() + offset, 4 * n);
            }
        }
        offset += adaptk::test::llama2c_bytes(spec, t);
    }
    for (const auto& v : values) out.write_values(std::span<const float>(v));
    out.finish();
}

void check_llama2c_tables_equal_safetensors(const fs::path& bin, const adaptk::test::llama2c_spec& spec) {
    temp_dir dir;
    llama2c_as_safetensors(bin, spec, dir / "hf");
    for (const std::string command : {"profile", "groups", "spectrum", "layers"})
        BOOST_TEST(succeed({command, bin.string()}).out == succeed({command, (dir / "hf").string()}).out,
                   bin.filename().string() << " " << command);
}

}  // namespace

// Generated legacy, version 1 and version 2 files (shared and own
// classifier): every table equals that of the same weights in safetensors.
// Version 2 in groups of 16: rows of 40 (down_proj) cut groups.
BOOST_AUTO_TEST_CASE(llama2c_tables_equal_those_of_the_same_weights_in_safetensors) {
    temp_dir dir;
    for (const int version : {0, 1, 2})
        for (const bool shared : {true, false}) {
            const adaptk::test::llama2c_spec spec{32, version == 2 ? 40 : 96, 2, 4, 2, 40, 16, shared, version,
                                                  version == 2 ? 16 : 0};
            std::uint64_t seed = 200;
            const fs::path bin = dir / ("v" + std::to_string(version) + (shared ? "-shared" : "-own") + ".bin");
            adaptk::test::write_bytes(bin, adaptk::test::llama2c_image(spec, [&](const adaptk::test::llama2c_tensor& t) {
                return adaptk::test::generated_matrix(seed++, t.rows, t.cols == 0 ? 1 : t.cols);
            }));
            check_llama2c_tables_equal_safetensors(bin, spec);
        }
}

// The real checkpoint, read from shared/ beside the repository when present (3.7 MB).
BOOST_AUTO_TEST_CASE(babyllama_tables_equal_those_of_its_safetensors_copy) {
    const fs::path real = data("../../../shared/models/babyllama-105/model5000.bin");
    if (!fs::exists(real)) {
        BOOST_TEST_MESSAGE("skipped: " << real << " is not present");
        return;
    }
    check_llama2c_tables_equal_safetensors(real, {128, 352, 5, 8, 4, 105, 256, true, 0});
    const run_result& r = succeed({"profile", real.string()});
    BOOST_TEST(r.err.find("tied embeddings, counted once as embed") != std::string::npos, r.err);
}

// ---- options --------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(thresholds_add_a_k_column) {
    const run_result& r = succeed({"profile", stories_f32(), "--thresholds", "0.99"});
    BOOST_TEST(header_line(r.out) == documented_headers.at("profile") + ",k99");
    const csv_table t = read_csv(r.out);
    for (std::size_t row = 0; row < t.rows.size(); ++row) {
        const double k90 = t.number(row, "k90"), k99 = t.number(row, "k99");
        BOOST_TEST((k90 <= k99 && k99 <= double(stories_dim)), t.text(row, "type"));
    }
    const run_result& layers = succeed({"layers", stories_f32(), "--thresholds", "0.99"});
    BOOST_TEST(header_line(layers.out) == documented_headers.at("layers") + ",k99");
}

BOOST_AUTO_TEST_CASE(k_above_d_is_clamped_with_a_note) {
    const run_result& r = succeed({"profile", stories_f32(), "--k", "100"});
    const csv_table t = read_csv(r.out);
    for (std::size_t row = 0; row < t.rows.size(); ++row) {
        BOOST_TEST(t.text(row, "k") == "64");
        BOOST_TEST(std::abs(t.number(row, "r2_type") - 1) <= 1e-12);  // the whole basis keeps everything
    }
    BOOST_TEST(r.err_lines().size() == 4u, r.err);  // and the tied-embedding, plan and spill notes
    BOOST_TEST(r.err.find("--k 100") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("clamped to 64") != std::string::npos, r.err);
    // --k 64 and a clamped --k 100 are the same run.
    BOOST_TEST(r.out == succeed({"profile", stories_f32(), "--k", "64"}).out);
}

BOOST_AUTO_TEST_CASE(quiet_leaves_stderr_empty_and_stdout_unchanged) {
    const std::vector<std::vector<std::string>> noisy{{"inspect", stories_f32()},
                                                      {"frontier", stories_f32()},
                                                      {"profile", stories_f32(), "--k", "100"}};
    for (const auto& args : noisy) {
        const run_result& loud = succeed(args);
        BOOST_TEST(!loud.err.empty(), describe(args) << " said nothing without --quiet");
        for (const std::string flag : {"--quiet", "-q"}) {
            auto quiet_args = args;
            quiet_args.push_back(flag);
            const run_result& quiet = succeed(quiet_args);
            BOOST_TEST(quiet.err.empty(), describe(quiet_args) << ": " << quiet.err);
            BOOST_TEST(quiet.out == loud.out, describe(quiet_args));
        }
    }
}

// ---- --format -----------------------------------------------------------------------------------

namespace {

// `text` split into lines and TAB-separated fields, undoing the documented escapes.
std::vector<std::vector<std::string>> read_tsv(const std::string& text) {
    std::vector<std::vector<std::string>> records;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        BOOST_TEST_REQUIRE(end != std::string::npos, "TSV without a final LF");
        std::vector<std::string> fields{""};
        for (std::size_t i = start; i < end; ++i) {
            if (text[i] == '\t') fields.emplace_back();
            else if (text[i] != '\\') fields.back() += text[i];
            else {
                const char escaped = text[++i];
                fields.back() += escaped == 't' ? '\t' : escaped == 'n' ? '\n' : escaped == 'r' ? '\r' : escaped;
            }
        }
        records.push_back(std::move(fields));
        start = end + 1;
    }
    return records;
}

// The JSON and TSV outputs hold what the CSV holds: same columns in order,
// same rows, strings equal, numbers equal to the last bit, empty fields null.
void check_formats_agree(const std::string& csv, const std::string& json, const std::string& tsv, const std::string& what) {
    const csv_table table = read_csv(csv);
    const auto tsv_records = read_tsv(tsv);
    BOOST_TEST_REQUIRE(tsv_records.size() == table.rows.size() + 1, what);
    BOOST_TEST((tsv_records[0] == table.header), what);
    for (std::size_t r = 0; r < table.rows.size(); ++r) BOOST_TEST((tsv_records[r + 1] == table.rows[r]), what << " row " << r);

    const auto rows = nlohmann::ordered_json::parse(json);
    BOOST_TEST_REQUIRE(rows.is_array(), what);
    BOOST_TEST_REQUIRE(rows.size() == table.rows.size(), what);
    std::size_t mismatches = 0;
    for (std::size_t r = 0; r < rows.size(); ++r) {
        std::vector<std::string> keys;
        for (const auto& item : rows[r].items()) keys.push_back(item.key());
        BOOST_TEST_REQUIRE(keys == table.header, what << " row " << r);
        for (std::size_t c = 0; c < keys.size(); ++c) {
            const std::string& field = table.rows[r][c];
            const auto& value = rows[r][keys[c]];
            double number = 0;
            const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), number);
            const bool numeric = !field.empty() && error == std::errc{} && end == field.data() + field.size();
            // CSV cannot tell an empty text from an empty cell: JSON may hold either.
            const bool same = field.empty()  ? value.is_null() || value == ""
                              : value.is_string() ? value.get<std::string>() == field
                              : numeric && value.is_number() && value.get<double>() == number;
            if (!same) {
                ++mismatches;
                BOOST_TEST_MESSAGE(what << " row " << r << " " << keys[c] << ": CSV '" << field << "' JSON " << value.dump());
            }
        }
    }
    BOOST_TEST(mismatches == 0u, what);
}

}  // namespace

BOOST_DATA_TEST_CASE(every_table_command_prints_the_same_table_as_json_and_tsv,
                     bdata::make(std::vector<std::string>{"inspect", "profile", "groups", "frontier", "budget", "layers",
                                                          "spectrum"}),
                     command) {
    std::vector<std::string> args{command, stories_f32(), "--quiet"};
    const std::string csv = succeed(args).out;
    auto with = [&](const std::string& format) {
        auto a = args;
        a.insert(a.end(), {"--format", format});
        return a;
    };
    BOOST_TEST(succeed(with("csv")).out == csv);
    check_formats_agree(csv, succeed(with("json")).out, succeed(with("tsv")).out, command);
}

BOOST_AUTO_TEST_CASE(report_format_json_writes_json_tables_and_the_same_svgs) {
    const temp_dir dir;
    const fs::path out = dir / "report";
    const run_result r = run_stream({"report", stories_f32(), "--out", out.string(), "--format", "json", "--ks", "8,32"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(listing(out) == (std::vector<std::string>{"allocation.json", "allocation.svg", "budget.json", "frontier.json", "frontier.svg", "groups.json",
                                                         "layers.json", "profile.json", "spectra.svg", "spectrum.json",
                                                         "summary.json"}),
               boost::test_tools::per_element());
    const auto groups = nlohmann::json::parse(read_text(out / "groups.json"));
    BOOST_TEST_REQUIRE(groups.is_array());
    BOOST_TEST(groups.size() == 5u);
}

// ---- summary.json against docs/summary.schema.json ------------------------------------------------

BOOST_AUTO_TEST_CASE(report_summary_conforms_to_the_documented_schema) {
    const char* schema_path = std::getenv("ADAPTK_SUMMARY_SCHEMA");
    BOOST_TEST_REQUIRE(schema_path != nullptr, "ADAPTK_SUMMARY_SCHEMA is not set; run with meson test");
    const auto schema = nlohmann::json::parse(read_text(schema_path));
    const temp_dir dir;
    // Extra thresholds add k99 / k99_5 to every type: the schema's pattern covers them.
    // The randomized method adds its settings and leaves k's it cannot know null.
    int run = 0;
    for (const std::vector<std::string>& extra :
         {std::vector<std::string>{}, {"--thresholds", "0.99,0.995", "--center", "--universal-weighting", "trace"},
          {"--method", "rsvd", "--k", "8", "--thresholds", "0.99"}}) {
        const fs::path out = dir / ("report" + std::to_string(run++));
        std::vector<std::string> args{"report", stories_f32(), "--out", out.string(), "--quiet", "--ks", "8"};
        args.insert(args.end(), extra.begin(), extra.end());
        const run_result r = run_stream(args);
        BOOST_TEST_REQUIRE(r.status == 0, r.err);
        const auto summary = nlohmann::json::parse(read_text(out / "summary.json"));
        const auto violations = adaptk::test::schema_violations(schema, summary);
        BOOST_TEST(violations.empty(), describe(args) << ": " << (violations.empty() ? "" : violations.front()));
        if (run == 2) BOOST_TEST(summary["types"][0].contains("k99_5"));
        if (run == 3) BOOST_TEST(summary.contains("sketch_size"));

        // The check can fail: each defect below must be caught.
        const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> defects{
            {"missing gain", [](nlohmann::json& j) { j.erase("gain"); }},
            {"dim as text", [](nlohmann::json& j) { j["dim"] = "64"; }},
            {"undocumented key", [](nlohmann::json& j) { j["extra"] = 1; }},
            {"fractional k50", [](nlohmann::json& j) { j["types"][0]["k50"] = 1.5; }},
            {"unknown type", [](nlohmann::json& j) { j["types"][1]["type"] = "qkv"; }},
            {"type missing pr", [](nlohmann::json& j) { j["types"][2].erase("pr"); }},
            {"note not text", [](nlohmann::json& j) { j["notes"].push_back(3); }},
            {"bad threshold column", [](nlohmann::json& j) { j["types"][0]["k99x"] = 3; }},
        };
        for (const auto& [name, spoil] : defects) {
            auto spoiled = summary;
            spoil(spoiled);
            BOOST_TEST(!adaptk::test::schema_violations(schema, spoiled).empty(), name);
        }
    }
}

// ---- report -------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(report_writes_every_table_equal_to_the_subcommands) {
    const temp_dir dir;
    const fs::path out = dir / "nested" / "report";
    // ks within --k: the report computes the same universal basis as each subcommand.
    const std::vector<std::string> common{"--k", "16", "--thresholds", "0.99", "--universal-weighting", "trace"};
    const std::vector<std::string> ks{"--ks", "4,8,16"}, threshold{"--threshold", "0.8"};
    std::vector<std::string> args{"report", stories_f32(), "--out", out.string()};
    for (const auto* extra : {&common, &ks, &threshold}) args.insert(args.end(), extra->begin(), extra->end());
    const run_result r = run_stream(args);
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.out.empty(), r.out);
    BOOST_TEST(r.err.find("wrote") != std::string::npos, r.err);

    BOOST_TEST(listing(out) == (std::vector<std::string>{"allocation.csv", "allocation.svg", "budget.csv", "frontier.csv", "frontier.svg", "groups.csv", "layers.csv",
                                                         "profile.csv", "spectra.svg", "spectrum.csv", "summary.json"}),
               boost::test_tools::per_element());
    // Each subcommand gets those of the common options it reads (it refuses the others).
    auto reads = [](const std::string& command, const std::string& option) {
        if (option == "--thresholds") return command == "profile" || command == "layers";
        if (option == "--universal-weighting") return command != "budget" && command != "spectrum";
        return command != "budget";  // --k
    };
    for (const auto& command : analysis_commands) {
        std::vector<std::string> sub{command, stories_f32()};
        for (std::size_t i = 0; i < common.size(); i += 2)
            if (reads(command, common[i])) sub.insert(sub.end(), {common[i], common[i + 1]});
        if (command == "frontier") sub.insert(sub.end(), ks.begin(), ks.end());
        if (command == "budget") sub.insert(sub.end(), threshold.begin(), threshold.end());
        const std::string written = read_text(out / (command + ".csv"));
        if (command == "layers")
            BOOST_TEST(written == succeed(sub).out, command << ".csv differs from " << describe(sub));
        else
            check_csv_close(written, succeed(sub).out, report_tolerance, command);
    }

    const auto summary = nlohmann::json::parse(read_text(out / "summary.json"));
    BOOST_TEST(summary.at("method").get<std::string>() == "exact");
    BOOST_TEST(summary.at("dim").get<std::uint64_t>() == stories_dim);
    BOOST_TEST(summary.at("k").get<std::uint64_t>() == 16u);
    BOOST_TEST(summary.at("universal_weighting").get<std::string>() == "trace");
    BOOST_TEST(summary.at("model").get<std::string>() == stories_f32());
    BOOST_TEST_REQUIRE(summary.at("types").size() == all_types.size());
    const csv_table profile = read_csv(read_text(out / "profile.csv"));
    for (std::size_t i = 0; i < all_types.size(); ++i) {
        const auto& type = summary["types"][i];
        BOOST_TEST(type.at("type").get<std::string>() == all_types[i]);
        BOOST_TEST(type.at("pr").get<double>() == profile.number(i, "pr"));
        BOOST_TEST(type.at("k90").get<double>() == profile.number(i, "k90"));
        BOOST_TEST(type.at("r2_type").get<double>() == profile.number(i, "r2_type"));
    }
}

// Default options: the report also asks LAPACK for universal eigenvectors up
// to the largest frontier K (64), `profile` for the top 32 only.
BOOST_AUTO_TEST_CASE(report_with_default_options_agrees_with_the_subcommands) {
    const temp_dir dir;
    const fs::path out = dir / "report";
    const run_result r = run_stream({"report", stories_f32(), "--out", out.string(), "--quiet"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.err.empty(), r.err);
    BOOST_TEST(r.out.empty());
    for (const auto& command : analysis_commands)
        check_csv_close(read_text(out / (command + ".csv")), succeed({command, stories_f32()}).out, report_tolerance,
                        command);
    for (const auto& name : listing(out)) BOOST_TEST(!name.ends_with(".tmp"), name);
}

BOOST_AUTO_TEST_CASE(report_into_a_regular_file_fails_and_leaves_it_alone) {
    const temp_dir dir;
    const fs::path occupied = dir / "occupied";
    adaptk::test::write_text(occupied, "keep me\n");
    const std::vector<std::string> args{"report", stories_f32(), "--out", occupied.string(), "--ks", "8,32"};
    check_failure(run_stream(args), 1, {"occupied"}, args);
    BOOST_TEST(read_text(occupied) == "keep me\n");
    BOOST_TEST(listing(dir.path()) == std::vector<std::string>{"occupied"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(report_replaces_an_earlier_report_completely) {
    const temp_dir dir;
    const fs::path out = dir / "report";
    const std::vector<std::string> first{"report", stories_f32(), "--out", out.string(), "--ks", "8", "-q"};
    BOOST_TEST_REQUIRE(run_stream(first).status == 0);
    const std::vector<std::string> second{"report", stories_f32(), "--out", out.string(), "--ks", "8", "--k", "8", "-q"};
    BOOST_TEST_REQUIRE(run_stream(second).status == 0);
    BOOST_TEST(read_text(out / "layers.csv") == succeed({"layers", stories_f32(), "--k", "8"}).out);
    check_csv_close(read_text(out / "profile.csv"), succeed({"profile", stories_f32(), "--k", "8"}).out,
                    report_tolerance, "profile");
    BOOST_TEST(listing(out).size() == 11u);
}

namespace {

// Files bigger than `bytes` fail with EFBIG in processes spawned while it
// lives (RLIMIT_FSIZE is inherited; SIGXFSZ ignored so write() reports it).
class file_size_limit {
public:
    explicit file_size_limit(rlim_t bytes) : previous_signal_(std::signal(SIGXFSZ, SIG_IGN)) {
        ::getrlimit(RLIMIT_FSIZE, &previous_);
        rlimit limit = previous_;
        limit.rlim_cur = bytes;
        ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    ~file_size_limit() {
        ::setrlimit(RLIMIT_FSIZE, &previous_);
        std::signal(SIGXFSZ, previous_signal_);
    }
    file_size_limit(const file_size_limit&) = delete;
    file_size_limit& operator=(const file_size_limit&) = delete;

private:
    rlimit previous_{};
    void (*previous_signal_)(int);
};

std::map<std::string, std::string> contents(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& name : listing(dir)) files[name] = read_text(dir / name);
    return files;
}

}  // namespace

// An rsvd report writes no budget or layers table: those of an earlier exact
// report into the same directory must not survive beside the new files.
BOOST_AUTO_TEST_CASE(report_leaves_no_file_of_an_earlier_report) {
    const temp_dir dir;
    const fs::path out = dir / "report";
    BOOST_TEST_REQUIRE(run_stream({"report", stories_f32(), "--out", out.string(), "--ks", "8", "-q"}).status == 0);
    BOOST_TEST_REQUIRE(fs::exists(out / "layers.csv"));
    const std::vector<std::string> rsvd{"report", stories_f32(), "--out", out.string(), "--ks", "8", "--method", "rsvd", "-q"};
    BOOST_TEST_REQUIRE(run_stream(rsvd).status == 0);
    BOOST_TEST(listing(out) == (std::vector<std::string>{"allocation.csv", "allocation.svg", "frontier.csv", "frontier.svg",
                                                         "groups.csv", "profile.csv", "spectra.svg", "spectrum.csv",
                                                         "summary.json"}),
               boost::test_tools::per_element());
    BOOST_TEST(listing(dir.path()) == std::vector<std::string>{"report"}, boost::test_tools::per_element());
}

// A report into a directory of other files would delete them: refused up front.
BOOST_AUTO_TEST_CASE(report_refuses_a_directory_of_other_files) {
    const temp_dir dir;
    adaptk::test::write_text(dir / "notes.txt", "mine\n");
    const std::vector<std::string> args{"report", stories_f32(), "--out", dir.path().string(), "--ks", "8"};
    check_failure(run_stream(args), 1, {dir.path().string(), "'notes.txt'", "no report file"}, args);
    BOOST_TEST(listing(dir.path()) == std::vector<std::string>{"notes.txt"}, boost::test_tools::per_element());
}

// A failure while writing a table, and while writing an SVG after every table
// is written: the earlier report stays as it was, whole, and nothing is left
// beside it. The failure is a file size limit the run inherits (EFBIG).
BOOST_DATA_TEST_CASE(report_failing_midway_leaves_the_earlier_report_whole, bdata::make({"table", "svg"}), where) {
    const temp_dir dir;
    const fs::path out = dir / "report";
    const std::vector<std::string> args{"report", stories_f32(), "--out", out.string(), "--ks", "8",
                                        "--method", "rsvd", "--k", "4", "-q"};
    BOOST_TEST_REQUIRE(run_stream({"report", stories_f32(), "--out", out.string(), "--ks", "8", "-q"}).status == 0);
    const auto earlier = contents(out);
    // The sizes of this run's files, from a run that succeeds.
    const fs::path trial = dir / "trial";
    std::vector<std::string> trial_args = args;
    trial_args[3] = trial.string();
    BOOST_TEST_REQUIRE(run_stream(trial_args).status == 0);
    std::uintmax_t before_svg = 0;  // the largest file written before spectra.svg
    for (const auto& name : listing(trial))
        if (!name.ends_with(".svg")) before_svg = std::max(before_svg, fs::file_size(trial / name));
    const std::uintmax_t svg = fs::file_size(trial / "spectra.svg");
    const std::uintmax_t profile = fs::file_size(trial / "profile.csv");  // the first file written
    BOOST_TEST_REQUIRE(svg > before_svg, "spectra.svg (" << svg << " bytes) is not the largest file");
    // The limit holds for the captured stderr file too: the error line must fit.
    BOOST_TEST_REQUIRE(profile > 600u);
    fs::remove_all(trial);

    const std::string failing = std::string(where) == "table" ? "profile.csv" : "spectra.svg";
    run_result r;
    {
        const file_size_limit limit(std::string(where) == "table" ? profile - 1 : before_svg + 1);
        r = run_stream(args);
    }
    check_failure(r, 1, {failing}, args);
    BOOST_TEST(contents(out) == earlier);
    BOOST_TEST(listing(dir.path()) == std::vector<std::string>{"report"}, boost::test_tools::per_element());
}

// ---- other architectures and --types ---------------------------------------------

namespace {

// A checkpoint named in no family the tool knows (d = 16), and a rules file for it.
fs::path write_custom_model(const temp_dir& dir) {
    arma::arma_rng::set_seed(11);
    std::vector<adaptk::test::named_matrix> tensors;
    for (int l = 0; l < 2; ++l) {
        const std::string prefix = "blocks." + std::to_string(l) + ".";
        tensors.push_back({prefix + "wq.weight", arma::randn(16, 16)});
        tensors.push_back({prefix + "w2.weight", arma::randn(16, 24)});
    }
    tensors.push_back({"tok.weight", arma::randn(40, 16)});
    tensors.push_back({"blocks.0.mystery.weight", arma::randn(16, 16)});
    const fs::path model = dir / "custom";
    adaptk::test::write_model(model, 16, tensors, adaptk::dtype::f32);
    adaptk::test::write_text(dir / "rules.csv",
                             "# type,layout,regex\n"
                             "q,linear,blocks\\.(\\d+)\\.wq\\.weight\n"
                             "down,,blocks\\.(\\d+)\\.w2\\.weight\n"
                             "embed,linear,tok\\.weight\n");
    return model;
}

}  // namespace

BOOST_AUTO_TEST_CASE(inspect_names_the_matrices_no_rule_matched) {
    const temp_dir dir;
    const fs::path model = write_custom_model(dir);
    const run_result plain = run_stream({"inspect", model.string()});
    BOOST_TEST_REQUIRE(plain.status == 0, plain.err);
    BOOST_TEST(plain.err.find("6 2-D tensor(s) matched no naming rule and are not analysed: blocks.0.wq.weight, "
                              "blocks.0.w2.weight, blocks.1.wq.weight, blocks.1.w2.weight, tok.weight, ... "
                              "(--types FILE adds rules)") != std::string::npos,
               plain.err);

    const run_result ruled = run_stream({"inspect", model.string(), "--types", (dir / "rules.csv").string()});
    BOOST_TEST_REQUIRE(ruled.status == 0, ruled.err);
    const csv_table t = read_csv(ruled.out);
    BOOST_TEST(t.text(t.row_named("blocks.1.wq.weight"), "type") == "q");
    BOOST_TEST(t.text(t.row_named("blocks.1.wq.weight"), "layer") == "1");
    BOOST_TEST(t.text(t.row_named("blocks.0.w2.weight"), "type") == "down");
    BOOST_TEST(t.text(t.row_named("tok.weight"), "type") == "embed");
    BOOST_TEST(t.text(t.row_named("blocks.0.mystery.weight"), "type") == "");
    BOOST_TEST(ruled.err.find("1 2-D tensor(s) matched no naming rule and are not analysed: blocks.0.mystery.weight "
                              "(--types FILE adds rules)") != std::string::npos,
               ruled.err);
}

BOOST_AUTO_TEST_CASE(types_file_drives_the_analysis) {
    const temp_dir dir;
    const fs::path model = write_custom_model(dir);
    const csv_table t = read_csv(succeed({"profile", model.string(), "--types", (dir / "rules.csv").string()}).out);
    BOOST_TEST_REQUIRE(t.rows.size() == 3u);
    BOOST_TEST(t.text(0, "type") == "q");
    BOOST_TEST(t.number(0, "matrices") == 2.0);
    BOOST_TEST(t.text(1, "type") == "down");
    BOOST_TEST(t.number(1, "vectors") == 48.0);  // columns of the two [16, 24] matrices
    BOOST_TEST(t.text(2, "type") == "embed");
}

BOOST_AUTO_TEST_CASE(bad_types_files_fail_with_one_line_naming_file_and_line) {
    const temp_dir dir;
    const fs::path model = write_custom_model(dir);
    adaptk::test::write_text(dir / "bad.csv", "q,linear,ok\nquery,linear,blocks\\.wq\n");
    const std::vector<std::string> bad{"profile", model.string(), "--types", (dir / "bad.csv").string()};
    check_failure(run_stream(bad), 1, {(dir / "bad.csv").string() + ": line 2: unknown type 'query'"}, bad);
    const std::vector<std::string> missing{"inspect", model.string(), "--types", (dir / "absent.csv").string()};
    check_failure(run_stream(missing), 1, {(dir / "absent.csv").string()}, missing);
    const std::vector<std::string> no_value{"inspect", model.string(), "--types"};
    check_failure(run_stream(no_value), 2, {"--types needs a value"}, no_value);
}

BOOST_AUTO_TEST_CASE(gpt2_checkpoint_is_inspected_and_profiled_as_its_parts) {
    const temp_dir dir;
    arma::arma_rng::set_seed(5);
    const fs::path model = dir / "gpt2";
    adaptk::test::write_model(model, 16,
                              {{"h.0.attn.c_attn.weight", arma::randn(16, 48)},
                               {"h.0.attn.c_proj.weight", arma::randn(16, 16)},
                               {"h.0.mlp.c_fc.weight", arma::randn(16, 64)},
                               {"h.0.mlp.c_proj.weight", arma::randn(64, 16)},
                               {"wte.weight", arma::randn(50, 16)}},
                              adaptk::dtype::f16, 1, R"({"n_embd": 16, "n_head": 4, "n_layer": 1})");
    const csv_table listed = read_csv(succeed({"inspect", model.string()}).out);
    BOOST_TEST(listed.text(listed.row_named("h.0.attn.c_attn.weight"), "type") == "qkv");
    BOOST_TEST(listed.text(listed.row_named("h.0.attn.c_attn.weight"), "layer") == "0");
    BOOST_TEST(listed.text(listed.row_named("h.0.mlp.c_fc.weight"), "type") == "up");

    const run_result& r = succeed({"layers", model.string()});
    const csv_table t = read_csv(r.out);
    BOOST_TEST_REQUIRE(t.rows.size() == 7u);  // q k v o up down embed
    BOOST_TEST(t.text(0, "name") == "h.0.attn.c_attn.weight[q]");
    BOOST_TEST(t.text(2, "name") == "h.0.attn.c_attn.weight[v]");
    BOOST_TEST(t.text(5, "type") == "down");
    BOOST_TEST(r.err.find("tied embeddings, counted once as embed") != std::string::npos, r.err);
}

// ---- state files: accumulate --part I/N, then --from-state ------------------------------------------

namespace {

// Two processes sum the same per-matrix float64 Grams in different orders
// (gram.hpp: each matrix is flushed at its end): float64 rounding only.
constexpr double merge_tolerance = 1e-9;

// accumulate parts 1..N of `model` into `dir` (with `extra` options); their paths.
std::vector<std::string> accumulate_parts(const std::string& model, std::size_t parts, const fs::path& dir,
                                          const std::vector<std::string>& extra = {}) {
    fs::create_directories(dir);
    std::vector<std::string> files;
    for (std::size_t part = 1; part <= parts; ++part) {
        files.push_back((dir / ("part-" + std::to_string(part) + ".state")).string());
        std::vector<std::string> args{"accumulate", model, "--part", std::to_string(part) + "/" + std::to_string(parts),
                                      "--state", files.back()};
        args.insert(args.end(), extra.begin(), extra.end());
        const run_result r = run_stream(args);
        BOOST_TEST_REQUIRE(r.status == 0, describe(args) << ": " << r.err);
        BOOST_TEST(r.out.empty(), r.out);
    }
    return files;
}

std::vector<std::string> with_states(std::vector<std::string> args, const std::vector<std::string>& files) {
    args.push_back("--from-state");
    args.insert(args.end(), files.begin(), files.end());
    return args;
}

}  // namespace

BOOST_DATA_TEST_CASE(from_state_prints_the_whole_runs_tables, bdata::make({1, 2, 3, 4}), parts) {
    const temp_dir dir;
    const auto files = accumulate_parts(stories_f32(), parts, dir.path());
    for (const std::string command : {"profile", "groups", "frontier", "budget", "spectrum"}) {
        // --thresholds only where the table has K columns to add to.
        std::vector<std::string> options{command};
        if (command == "profile") options.insert(options.end(), {"--thresholds", "0.99"});
        const auto args = with_states(options, files);
        const run_result r = run_stream(args);
        require_success(r, args);
        // K columns (k50, k90, k99, budget's k) are integers: any difference exceeds the tolerance.
        options.insert(options.begin() + 1, stories_f32());
        check_csv_close(r.out, succeed(options).out, merge_tolerance, command);
    }
}

BOOST_AUTO_TEST_CASE(from_state_with_center_and_trace_weighting) {
    const temp_dir dir;
    const auto files = accumulate_parts(stories_bf16(), 3, dir.path(), {"--center"});
    for (const std::string command : {"profile", "groups"}) {
        const std::vector<std::string> options{"--center", "--universal-weighting", "trace"};
        std::vector<std::string> whole{command, stories_bf16()};
        whole.insert(whole.end(), options.begin(), options.end());
        std::vector<std::string> merged{command};
        merged.insert(merged.end(), options.begin(), options.end());
        check_csv_close(succeed(with_states(merged, files)).out, succeed(whole).out, merge_tolerance, command);
    }
    // Centred states also give the uncentred tables (the sums are extra).
    check_csv_close(succeed(with_states({"profile"}, files)).out, succeed({"profile", stories_bf16()}).out, merge_tolerance,
                    "uncentred");
}

BOOST_AUTO_TEST_CASE(from_state_of_sharded_and_gguf_input) {
    for (const std::string& model : {stories_sharded_f32(), data("stories260K/stories260K.gguf").string()}) {
        const temp_dir dir;
        const auto files = accumulate_parts(model, 2, dir.path());
        check_csv_close(succeed(with_states({"profile"}, files)).out, succeed({"profile", model}).out, merge_tolerance, model);
    }
}

BOOST_AUTO_TEST_CASE(report_from_state_leaves_out_layers_csv) {
    const temp_dir dir;
    const auto files = accumulate_parts(stories_f32(), 2, dir.path());
    const run_result r = run_stream(with_states({"report", "--out", (dir / "report").string()}, files));
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.err.find("layers.csv needs per-matrix rows, which these state files do not hold") != std::string::npos, r.err);
    BOOST_TEST(listing(dir / "report") == (std::vector<std::string>{"allocation.csv", "allocation.svg", "budget.csv", "frontier.csv",
                                                                     "frontier.svg", "groups.csv", "profile.csv", "spectra.svg",
                                                                     "spectrum.csv", "summary.json"}),
               boost::test_tools::per_element());
    check_csv_close(read_text(dir / "report" / "profile.csv"), succeed({"profile", stories_f32()}).out, merge_tolerance,
                    "report profile.csv");
    const auto summary = nlohmann::json::parse(read_text(dir / "report" / "summary.json"));
    BOOST_TEST(summary.at("model").get<std::string>() == stories_f32());  // recorded in the states
}

BOOST_AUTO_TEST_CASE(from_state_refuses_with_one_line) {
    const temp_dir dir;
    const auto files = accumulate_parts(stories_f32(), 2, dir.path());
    const auto missing = with_states({"profile"}, {files[0]});
    check_failure(run_stream(missing), 1, {files[0], "part 2/2 of this run is missing"}, missing);
    const auto twice = with_states({"profile"}, {files[0], files[0]});
    check_failure(run_stream(twice), 1, {"part 1/2 is also given as"}, twice);
    const auto centred = with_states({"profile", "--center"}, files);
    check_failure(run_stream(centred), 1, {files[0], "accumulated without --center"}, centred);
    const auto layers = with_states({"layers", "--model", stories_f32()}, files);
    check_failure(run_stream(layers), 1, {files[0], "no per-matrix rows, which layers needs", "--per-matrix"}, layers);
    const auto allocate = with_states({"allocate", "--per", "matrix", "--budget", "0.3"}, files);
    check_failure(run_stream(allocate), 1, {files[0], "no per-matrix rows, which allocate --per matrix needs"}, allocate);
    // One part with per-matrix rows (a run of one part): refused beside parts without them, or without --model.
    const auto with_rows = accumulate_parts(stories_f32(), 1, dir.path() / "rows", {"--per-matrix"});
    const auto mixed = with_states({"profile"}, {files[0], with_rows[0]});
    check_failure(run_stream(mixed), 1, {with_rows[0], "per-matrix rows solved in single, unlike", files[0]}, mixed);
    const auto no_model = with_states({"layers"}, with_rows);
    check_failure(run_stream(no_model), 2, {"layers --from-state needs --model MODEL"}, no_model);
    const auto other = with_states({"layers", "--model", stories_bf16()}, with_rows);
    check_failure(run_stream(other), 1, {stories_bf16(), "BF16", "differs from F32"}, other);
    const auto precision = with_states({"layers", "--model", stories_f32(), "--eig-precision", "double"}, with_rows);
    check_failure(run_stream(precision), 2, {"--eig-precision does not apply to --from-state"}, precision);
    const std::vector<std::string> model_alone{"layers", stories_f32(), "--model", stories_f32()};
    check_failure(run_stream(model_alone), 2, {"--model goes with --from-state"}, model_alone);
    const auto randomized = with_states({"profile", "--method", "rsvd"}, files);
    check_failure(run_stream(randomized), 2, {"--from-state", "--method rsvd"}, randomized);
    const std::vector<std::string> both{"profile", stories_f32(), "--from-state", files[0]};
    check_failure(run_stream(both), 2, {"--from-state replaces MODEL"}, both);
    const std::vector<std::string> no_part{"accumulate", stories_f32(), "--state", files[0]};
    check_failure(run_stream(no_part), 2, {"--part I/N is required"}, no_part);
    const std::vector<std::string> bad_part{"accumulate", stories_f32(), "--part", "3/2", "--state", files[0]};
    check_failure(run_stream(bad_part), 2, {"--part: '3/2' is not I/N"}, bad_part);
}

// Parts accumulated with --per-matrix hold each matrix's own eigenvalues; the
// merge re-reads the weights (--model) once for the r2 columns. One BLAS
// thread on both sides: the float32 solves and projections depend on the count.
BOOST_DATA_TEST_CASE(layers_from_per_matrix_states_equal_the_whole_run, bdata::make({2, 3}), parts) {
    const temp_dir dir;
    const auto files = accumulate_parts(stories_f32(), parts, dir.path(), {"--per-matrix", "--threads", "1"});
    const std::vector<std::string> options{"--threads", "1", "--thresholds", "0.99"};
    auto whole = options;
    whole.insert(whole.begin(), {"layers", stories_f32()});
    auto layers = options;
    layers.insert(layers.begin(), {"layers", "--model", stories_f32()});
    check_csv_close(succeed(with_states(layers, files)).out, succeed(whole).out, merge_tolerance, "layers");
    if (parts != 2) return;
    // report: layers.csv with --model; without it, the rest (allocation.csv's per-matrix optimum included).
    auto report = options;
    report.insert(report.begin(), {"report", "--model", stories_f32(), "--out", (dir / "r").string()});
    const run_result projected = run_stream(with_states(report, files));
    BOOST_TEST_REQUIRE(projected.status == 0, projected.err);
    check_csv_close(read_text(dir / "r" / "layers.csv"), succeed(whole).out, merge_tolerance, "report layers.csv");
    const run_result bare = run_stream(with_states({"report", "--threads", "1", "--out", (dir / "bare").string()}, files));
    BOOST_TEST_REQUIRE(bare.status == 0, bare.err);
    BOOST_TEST(bare.err.find("layers.csv needs --model MODEL with --from-state") != std::string::npos, bare.err);
    BOOST_TEST(!fs::exists(dir / "bare" / "layers.csv"));
    const std::vector<std::string> allocate{"allocate", "--per", "matrix", "--budget", "0.3", "--threads", "1"};
    std::vector<std::string> whole_allocate = allocate;
    whole_allocate.insert(whole_allocate.begin() + 1, stories_f32());
    check_csv_close(succeed(with_states(allocate, files)).out, succeed(whole_allocate).out, merge_tolerance,
                    "allocate --per matrix");
}

// accumulate states the plan of its part (its share streamed, each type's
// Gram handed out as a state) and fits --max-memory as the table commands do.
// No matrix here has more than 512 vectors, so blocks of 512 compute exactly
// what blocks of 1024 do: the fitted part's state is the unlimited one's bytes.
BOOST_AUTO_TEST_CASE(accumulate_fits_max_memory_or_refuses_naming_what_it_needs) {
    adaptk::checkpoint model(stories_f32());
    std::vector<std::string> notes;
    const auto matrices = model.matrices(stories_dim, notes);
    const auto part_of = adaptk::split_by_bytes(matrices, 2);
    adaptk::analysis_options part;
    part.reads = [&](std::size_t m) { return part_of[m] == 0; };
    part.hands_out_states = true;
    auto plan_at = [&](std::size_t block_vectors) {
        part.block_vectors = block_vectors;
        return adaptk::planned_bytes(matrices, stories_dim, part);
    };
    const std::uint64_t full = plan_at(1024), halved = plan_at(512), smallest = plan_at(64);
    BOOST_TEST_REQUIRE(halved < full);
    const temp_dir dir;
    auto accumulate = [&](const std::string& state, const std::vector<std::string>& extra) {
        std::vector<std::string> args{"accumulate", stories_f32(), "--part", "1/2", "--state", (dir / state).string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    };
    const run_result unlimited = run_stream(accumulate("unlimited.state", {}));
    BOOST_TEST_REQUIRE(unlimited.status == 0, unlimited.err);
    BOOST_TEST(std::abs(stated_plan(unlimited) - static_cast<double>(full) / 1048576) <= 0.05 + 1e-9, unlimited.err);
    const run_result fitted = run_stream(accumulate("fitted.state", {"--max-memory", std::to_string(halved)}));
    BOOST_TEST_REQUIRE(fitted.status == 0, fitted.err);
    BOOST_TEST(fitted.err.find("--max-memory: blocks of 512 vectors") != std::string::npos, fitted.err);
    BOOST_TEST((read_text(dir / "fitted.state") == read_text(dir / "unlimited.state")));
    // With our thread count given, the blocks are all it may shrink.
    const auto refused = accumulate("refused.state", {"--max-memory", std::to_string(smallest - 1), "--threads",
                                                      std::to_string(adaptk::detail::blas_threads())});
    check_failure(run_stream(refused), 1, {"is too small: the exact method needs", "for hidden size 64"}, refused);
    BOOST_TEST(!fs::exists(dir / "refused.state"));
}

BOOST_AUTO_TEST_CASE(failed_accumulate_leaves_no_state_file) {
    const temp_dir dir;
    // A shard that is missing: the run fails before streaming, and no file appears.
    const fs::path model = dir / "model";
    fs::copy(data("stories260K/hf-sharded/f32"), model, fs::copy_options::recursive);
    for (const auto& entry : fs::directory_iterator(model))
        if (entry.path().filename().string().starts_with("model-00002")) fs::remove(entry.path());
    const std::vector<std::string> args{"accumulate", model.string(), "--part", "1/2", "--state", (dir / "p.state").string()};
    check_failure(run_stream(args), 1, {"model-00002"}, args);
    BOOST_TEST(!fs::exists(dir / "p.state"));
    const std::vector<std::string> unwritable{"accumulate", stories_f32(), "-q", "--part", "1/1", "--state",
                                              (dir / "no-such-dir" / "p.state").string()};
    check_failure(run_stream(unwritable), 1, {"cannot write the state file, no directory", "no-such-dir"}, unwritable);
}

BOOST_AUTO_TEST_SUITE_END()
