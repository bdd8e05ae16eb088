#define BOOST_TEST_MODULE ranks
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

// The binary (ADAPTK_STREAM) under a real `mpirun --oversubscribe -np N`
// (MPIRUN), N = 1..4 on whatever cores there are, against the same binary
// run as one process. Every launch goes through coreutils `timeout` (TIMEOUT), so a
// rank that hangs fails the test (status 124) instead of stalling the suite.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/cli_support.hpp"

namespace fs = std::filesystem;
namespace bdata = boost::unit_test::data;
using adaptk::test::parse_csv;
using adaptk::test::read_text;
using adaptk::test::run_program;
using adaptk::test::run_result;
using adaptk::test::run_stream;
using adaptk::test::temp_dir;

namespace {

// Each rank sums its share of the per-matrix float64 Grams, the ranks then
// add the sums: the whole run's terms in another float64 order.
constexpr double merge_tolerance = 1e-9;
const std::vector<std::string> table_commands{"profile", "groups", "frontier", "budget", "spectrum", "layers"};

fs::path data(const std::string& relative) { return adaptk::test::data_dir() / relative; }
std::string stories_f32() { return data("stories260K/hf/f32").string(); }

std::string environment(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') throw std::runtime_error(std::string(name) + " is not set; run with 'meson test'");
    return value;
}

// `mpirun -np N` for every group of `ranks`: one group is one program line
// (adaptk-stream ARGS); several make mpirun's MPMD form (`A : B`), rank order as given.
run_result mpirun(const std::vector<std::pair<int, std::vector<std::string>>>& groups,
                  const std::string& program = environment("ADAPTK_STREAM")) {
    std::vector<std::string> args{"120", environment("MPIRUN"), "--allow-run-as-root", "--oversubscribe", "--quiet",
                                  "--mca", "btl", "self,vader"};
    for (std::size_t g = 0; g < groups.size(); ++g) {
        if (g > 0) args.push_back(":");
        args.insert(args.end(), {"-np", std::to_string(groups[g].first), program});
        args.insert(args.end(), groups[g].second.begin(), groups[g].second.end());
    }
    return run_program(environment("TIMEOUT"), args);
}

run_result mpirun(int ranks, const std::vector<std::string>& args) { return mpirun({{ranks, args}}); }

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
    std::vector<std::string> found;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        if (text.compare(start, prefix.size(), prefix) == 0) found.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return found;
}

bool parse_number(const std::string& t, double& value) {
    const auto [end, error] = std::from_chars(t.data(), t.data() + t.size(), value);
    return !t.empty() && error == std::errc{} && end == t.data() + t.size();
}

// The same CSV up to `relative` times the largest magnitude in each column;
// text and integer columns (K) must agree exactly, as any difference exceeds it.
// The ranks carry each type's rounding inputs, so their error columns match the
// single process's; a one-rank report accumulates each matrix's Gram on its
// own (per-matrix statistics), whose shorter float32 runs bound its rounding
// by no more (`per_matrix`: error columns only no larger, as in test_cli).
void check_csv_close(const std::string& got, const std::string& want, const std::string& what, bool per_matrix = false) {
    const auto a = parse_csv(got), b = parse_csv(want);
    BOOST_TEST_REQUIRE(a.size() == b.size(), what << ": row counts differ");
    BOOST_TEST_REQUIRE(a.front() == b.front(), what << ": headers differ");
    for (std::size_t c = 0; c < b.front().size(); ++c) {
        double scale = 0, value = 0;
        for (const auto& row : b)
            if (parse_number(row.at(c), value)) scale = std::max(scale, std::abs(value));
        for (std::size_t r = 1; r < a.size(); ++r) {
            const std::string &x = a[r].at(c), &y = b[r].at(c);
            double u = 0, v = 0;
            const std::string& column = b.front()[c];
            if (per_matrix && (column == "error_estimate" || column == "error_bound")) {
                BOOST_TEST((parse_number(x, u) && parse_number(y, v) && u <= v * (1 + merge_tolerance)),
                           what << " row " << r << " column " << column << ": '" << x << "' vs '" << y << "'");
                continue;
            }
            BOOST_TEST((x == y || (parse_number(x, u) && parse_number(y, v) && std::abs(u - v) <= merge_tolerance * scale)),
                       what << " row " << r << " column " << b.front()[c] << ": '" << x << "' vs '" << y << "'");
        }
    }
}

// One BLAS thread, as the ranks run: float32 sgemm sums (rsvd's sketches,
// the per-matrix projections) depend on the thread count.
const std::string& single_process(const std::vector<std::string>& args) {
    static std::map<std::vector<std::string>, std::string> outputs;
    auto found = outputs.find(args);
    if (found == outputs.end()) {
        std::vector<std::string> serial = args;
        if (std::find(args.begin(), args.end(), "--threads") == args.end()) serial.insert(serial.end(), {"--threads", "1"});
        const run_result r = run_stream(serial);
        BOOST_TEST_REQUIRE(r.status == 0, r.err);
        found = outputs.emplace(args, r.out).first;
    }
    return found->second;
}

// A failure: non-zero status, nothing on stdout, exactly one line of ours on stderr with every fragment.
void check_failure(const run_result& r, const std::vector<std::string>& fragments) {
    BOOST_TEST(r.status != 0);
    BOOST_TEST(r.status != 124, "a rank hung: " << r.err);
    BOOST_TEST(r.out.empty(), r.out);
    const auto ours = lines_starting(r.err, "adaptk-stream: ");
    BOOST_TEST(ours.size() == 1u, r.err);
    for (const auto& fragment : fragments) BOOST_TEST(r.err.find(fragment) != std::string::npos, fragment << " in " << r.err);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ranks)

// report writes every table in one run; each is compared with the
// single-process command of the same name. layers.csv's rows are each
// matrix's own spectrum and projections, computed on the rank that read it
// and gathered onto rank 0.
BOOST_DATA_TEST_CASE(every_table_equals_the_single_process_run, bdata::make({1, 2, 3, 4}), ranks) {
    const temp_dir dir;
    const run_result r = mpirun(ranks, {"report", stories_f32(), "--out", (dir / "out").string(), "--threads", "1"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.out.empty(), r.out);
    for (const auto& command : table_commands)
        check_csv_close(read_text(dir / "out" / (command + ".csv")), single_process({command, stories_f32()}), command, ranks == 1);
    if (ranks > 1) {
        // Rank 0 reports what every rank sent and received, and the type Grams
        // it decomposed: type t on rank t mod N (the reduce-scatter by type).
        const auto traffic = lines_starting(r.err, "adaptk-stream: rank ");
        BOOST_TEST_REQUIRE(traffic.size() == static_cast<std::size_t>(ranks), r.err);
        const std::size_t types = parse_csv(read_text(dir / "out" / "profile.csv")).size() - 1;
        for (int rank = 0; rank < ranks; ++rank) {
            std::size_t owned = 0;
            for (std::size_t t = 0; t < types; ++t) owned += t % static_cast<std::size_t>(ranks) == static_cast<std::size_t>(rank);
            const std::string expected = "decomposed " + std::to_string(owned) + " type Grams";
            BOOST_TEST(traffic[rank].find(expected) != std::string::npos, traffic[rank] << " has " << expected);
        }
        BOOST_TEST(lines_starting(r.err, "adaptk-stream: wrote").size() == 1u, r.err);
    }
}

// rsvd: each pass's sketches are summed over the ranks before the next, so
// every table equals the single-process rsvd run up to float64 summation
// order (the float32 runs end with each matrix in both), the error columns too.
BOOST_DATA_TEST_CASE(rsvd_tables_equal_the_single_process_run, bdata::make({1, 2, 3, 4}), ranks) {
    const temp_dir dir;
    const std::vector<std::string> rsvd{"--method", "rsvd", "--k", "8"};
    std::vector<std::string> args{"report", stories_f32(), "--out", (dir / "out").string(), "--threads", "1"};
    args.insert(args.end(), rsvd.begin(), rsvd.end());
    const run_result r = mpirun(ranks, args);
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    for (const std::string command : {"profile", "groups", "frontier", "spectrum"}) {
        std::vector<std::string> single{command, stories_f32()};
        single.insert(single.end(), rsvd.begin(), rsvd.end());
        check_csv_close(read_text(dir / "out" / (command + ".csv")), single_process(single), command);
    }
}

BOOST_AUTO_TEST_CASE(ranks_given_different_options_are_refused) {
    check_failure(mpirun({{1, {"profile", stories_f32(), "-q", "--method", "rsvd"}},
                          {1, {"profile", stories_f32(), "-q", "--method", "rsvd", "--seed", "7"}}}),
                  {"the MPI ranks were given different analysis options"});
}

// compare streams pairs of matrices: each rank its share of A's, the
// difference energies summed over the ranks, then A and B analysed as split runs.
BOOST_AUTO_TEST_CASE(compare_equals_the_single_process_run) {
    const std::vector<std::string> args{"compare", stories_f32(), data("stories260K/hf/bf16").string()};
    const run_result r = mpirun(3, args);
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    check_csv_close(r.out, single_process(args), "compare");
}

BOOST_AUTO_TEST_CASE(only_rank_0_prints_the_table) {
    const run_result r = mpirun(3, {"spectrum", stories_f32(), "--threads", "1"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    check_csv_close(r.out, single_process({"spectrum", stories_f32()}), "spectrum");
}

BOOST_AUTO_TEST_CASE(centered_trace_weighted_sharded_and_gguf_input) {
    const std::vector<std::string> options{"--center", "--universal-weighting", "trace", "--threads", "1"};
    for (const std::string& model : {data("stories260K/hf-sharded/bf16").string(), data("stories260K/stories260K.gguf").string()})
        for (const std::string command : {"profile", "layers"}) {
            std::vector<std::string> args{command, model};
            args.insert(args.end(), options.begin(), options.end());
            const run_result r = mpirun(3, args);
            BOOST_TEST_REQUIRE(r.status == 0, r.err);
            check_csv_close(r.out, single_process(args), command + " " + model);
        }
}

// Rank 1 of 2 gets a damaged copy (mpirun's MPMD form): the run ends on every
// rank, with rank 1's message printed once by rank 0.
BOOST_AUTO_TEST_CASE(a_bad_tensor_on_one_rank_ends_every_rank_with_one_message) {
    const temp_dir dir;
    const fs::path bad = dir / "bad";
    fs::copy(data("stories260K/hf-sharded/f32"), bad, fs::copy_options::recursive);
    // Shard 2's header claims a longer data section than the file holds.
    const fs::path shard = bad / "model-00002-of-00003.safetensors";
    fs::resize_file(shard, fs::file_size(shard) - 64);
    for (const std::string method : {"exact", "rsvd"}) {
        const run_result r = mpirun({{1, {"profile", stories_f32(), "-q", "--method", method}},
                                     {1, {"profile", bad.string(), "-q", "--method", method}}});
        check_failure(r, {"model-00002-of-00003.safetensors", "tensor '"});
    }
}

BOOST_AUTO_TEST_CASE(an_unreadable_shard_on_one_rank_ends_every_rank_with_one_message) {
    const temp_dir dir;
    const fs::path bad = dir / "bad";
    fs::copy(data("stories260K/hf-sharded/f32"), bad, fs::copy_options::recursive);
    fs::remove(bad / "model-00003-of-00003.safetensors");
    const run_result r = mpirun({{2, {"groups", stories_f32(), "-q"}}, {1, {"groups", bad.string(), "-q"}}});
    check_failure(r, {"model-00003-of-00003.safetensors"});
}

BOOST_AUTO_TEST_CASE(a_refused_max_memory_on_one_rank_ends_every_rank_with_one_message) {
    const run_result r =
        mpirun({{1, {"profile", stories_f32(), "-q"}}, {1, {"profile", stories_f32(), "-q", "--max-memory", "1K"}}});
    check_failure(r, {"--max-memory", "is too small"});
}

BOOST_AUTO_TEST_CASE(what_does_not_run_over_ranks_is_refused_once) {
    check_failure(mpirun(2, {"accumulate", stories_f32(), "-q", "--part", "1/2", "--state", "x"}), {"not under mpirun"});
}

// The plan the run's note states ("... plans X MiB of memory").
double planned_mib(const std::string& err) {
    const std::size_t at = err.find(" plans ");
    BOOST_TEST_REQUIRE(at != std::string::npos, err);
    return std::stod(err.substr(at + 7));
}

// adaptk-stream alone never loads MPI's libraries; under mpirun it becomes
// adaptk-stream-mpi, whose plan counts their pages (1.5 MiB) and MPI_Init's
// runtime (7 MiB).
BOOST_AUTO_TEST_CASE(under_mpirun_the_program_becomes_adaptk_stream_mpi) {
    // One BLAS thread in both: mpirun binds a rank to a core, which changes the default.
    const run_result alone = adaptk::test::run_stream({"profile", stories_f32(), "--threads", "1"});
    const run_result ranked = mpirun(1, {"profile", stories_f32(), "--threads", "1"});
    BOOST_TEST_REQUIRE(alone.status == 0, alone.err);
    BOOST_TEST_REQUIRE(ranked.status == 0, ranked.err);
    BOOST_TEST(ranked.out == alone.out);
    BOOST_TEST(planned_mib(ranked.err) - planned_mib(alone.err) == 8.5, boost::test_tools::tolerance(0.01));
}

// A copy with no adaptk-stream-mpi beside it, as a build without MPI: several
// ranks would each analyse the whole model, so each refuses.
BOOST_AUTO_TEST_CASE(without_adaptk_stream_mpi_several_ranks_are_refused) {
    const temp_dir dir;
    const fs::path program = dir / "adaptk-stream";
    fs::copy_file(environment("ADAPTK_STREAM"), program);
    const run_result r = mpirun({{2, {"profile", stories_f32(), "-q"}}}, program.string());
    BOOST_TEST(r.status != 0);
    BOOST_TEST(r.out.empty());
    const auto lines = lines_starting(r.err, "adaptk-stream: ");
    BOOST_TEST(lines.size() == 2u, r.err);
    for (const std::string& line : lines) BOOST_TEST(line.find("started by mpirun, but this build has no MPI") != std::string::npos, line);
}

BOOST_AUTO_TEST_SUITE_END()
