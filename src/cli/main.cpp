// adaptk-stream: the command-line front end. The library throws; this file
// catches once, prints one line on stderr and maps the failure to an exit
// status (2 usage, 1 bad input or I/O). Tables are built completely before
// the first byte reaches stdout, so a failure never leaves half a CSV.

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <system_error>

#include "adaptk/allocation.hpp"
#include "adaptk/analysis.hpp"
#include "adaptk/atomic_file.hpp"
#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"
#include "adaptk/mapped_file.hpp"
#include "adaptk/partition.hpp"
#include "adaptk/plots.hpp"
#include "adaptk/ranks.hpp"
#include "adaptk/state_file.hpp"
#include "adaptk/table_writer.hpp"
#include "adaptk/tables.hpp"
#include "cli/options.hpp"
#include "detail/linalg.hpp"

namespace {

using namespace adaptk;
namespace fs = std::filesystem;

class messages {
public:
    explicit messages(bool quiet) : quiet_(quiet) {}
    void note(const std::string& line) const {
        if (!quiet_) std::cerr << "adaptk-stream: " << line << '\n';
    }
    void notes(const std::vector<std::string>& lines) const {
        for (const auto& line : lines) note(line);
    }
    bool quiet() const { return quiet_; }

private:
    bool quiet_;
};

// Bytes done, rate and ETA on one self-overwriting stderr line, only when
// stderr is a terminal; at most five updates a second.
class progress_line {
public:
    explicit progress_line(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO)) {}
    ~progress_line() {
        if (shown_) std::cerr << '\n';
    }
    void operator()(std::uint64_t done, std::uint64_t total) {
        if (!enabled_) return;
        const auto now = clock::now();
        if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
        last_ = now;
        const double seconds = std::chrono::duration<double>(now - start_).count();
        const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
        const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
        char line[160];
        std::snprintf(line, sizeof line, "\r%.2f / %.2f GB  %.0f MB/s  ETA %.0f s   ", static_cast<double>(done) / 1e9,
                      static_cast<double>(total) / 1e9, rate / 1e6, eta);
        std::cerr << line << std::flush;
        shown_ = true;
    }

private:
    using clock = std::chrono::steady_clock;
    bool enabled_;
    bool shown_ = false;
    clock::time_point start_ = clock::now();
    clock::time_point last_{};
};

void emit(const table& t, table_format format) {
    std::ostringstream text;
    write_table(text, t, format);
    std::cout << text.str() << std::flush;
    if (!std::cout) throw std::system_error(errno ? errno : EIO, std::generic_category(), "stdout: write failed");
}

void write_text_file(const fs::path& path, const std::string& text) {
    atomic_file file(path);
    file.stream() << text;
    file.commit();
}

checkpoint open_model(const cli::options& o, const fs::path& path) {
    return checkpoint(path, o.types_file.empty() ? type_rules{} : type_rules::read(o.types_file));
}

int run_inspect(const cli::options& o, const messages& say) {
    const checkpoint model = open_model(o, o.model);
    say.notes(model.notes());
    table out{"inspect", {"name", "dtype", "shape", "type", "group", "layer", "bytes", "offset", "file"}, {}};
    std::uint64_t total_bytes = 0;
    std::vector<bool> type_seen(all_weight_types.size());
    std::size_t classified = 0;
    std::vector<std::string> unmatched;  // 2-D tensors no rule named
    for (const auto& entry : model.tensors()) {
        const auto& tensor = model.info(entry);
        const auto& file = model.files()[entry.file];
        total_bytes += tensor.bytes();
        cell type, group, layer;
        if (entry.kind) {
            type = std::string(class_name(*entry.kind));
            group = std::string(group_name(entry.kind->group));
            if (entry.kind->layer) layer = static_cast<std::int64_t>(*entry.kind->layer);
            type_seen[static_cast<std::size_t>(entry.kind->type)] = true;
            ++classified;
        } else if (tensor.shape.size() == 2) {
            unmatched.push_back(tensor.name);
        }
        out.rows.push_back({tensor.name, std::string(dtype_name(tensor.type)), shape_string(tensor.shape), type, group,
                            layer, static_cast<std::int64_t>(tensor.bytes()),
                            static_cast<std::int64_t>(file.file_offset(tensor)), file.path().string()});
    }
    emit(out, o.format);

    std::string types;
    for (std::size_t i = 0; i < all_weight_types.size(); ++i)
        if (type_seen[i]) types += " " + std::string(type_name(all_weight_types[i]));
    std::string hidden = "unknown";
    try {
        std::vector<std::string> notes;
        hidden = std::to_string(model.hidden_size(o.hidden_size, notes)) +
                 (o.hidden_size ? " (--hidden-size)" : model.config().hidden_size ? " (" + model.config_path().filename().string() + ")"
                                                       : " (inferred)");
    } catch (const format_error&) {
    }
    say.note(o.model.string() + ": " + std::to_string(model.tensors().size()) + " tensors in " +
             std::to_string(model.files().size()) + " file(s), " + std::to_string(total_bytes) + " bytes of data; " +
             "hidden size " + hidden + "; " + std::to_string(classified) + " weight matrices of types:" +
             (types.empty() ? " none" : types));
    if (!unmatched.empty()) {
        constexpr std::size_t named_at_most = 5;
        std::string names;
        for (std::size_t i = 0; i < std::min(unmatched.size(), named_at_most); ++i)
            names += (i == 0 ? "" : ", ") + unmatched[i];
        if (unmatched.size() > named_at_most) names += ", ...";
        say.note(std::to_string(unmatched.size()) + " 2-D tensor(s) matched no naming rule and are not analysed: " +
                 names + " (--types FILE adds rules)");
    }
    return 0;
}

// summary.json: the run's settings, the headline `all` row of the groups
// table, and the profile rows, all taken from the tables the CSVs hold.
nlohmann::ordered_json summary_json(const cli::options& o, const analysis_result& result, const table& profile,
                                    const table& groups, const std::vector<std::string>& notes) {
    nlohmann::ordered_json summary;
    summary["tool"] = "adaptk-stream " ADAPTK_VERSION;
    summary["model"] = o.model.string();
    summary["method"] = method_name(result.how);
    summary["dim"] = result.dim;
    summary["k"] = result.k;
    summary["passes"] = result.passes;
    if (result.how == method::rsvd) {
        summary["oversample"] = o.oversample;
        summary["power_iterations"] = o.power_iterations;
        summary["seed"] = o.seed;
        summary["sketch_size"] = result.sketch_size;
        summary["universal_error_bound_absolute"] = result.universal_error;
        summary["universal_capture_change"] = result.universal_capture_change;
    }
    summary["center"] = result.center;
    summary["universal_weighting"] = result.trace_weighting ? "trace" : "sum";
    for (const auto& row : groups.rows)
        if (std::get<std::string>(row[0]) == "all") {
            const auto all = row_object(groups, row);
            summary["r2_type_mean"] = all["r2_type"];
            summary["r2_universal_mean"] = all["r2_universal"];
            summary["gain"] = all["gain"];
        }
    auto& types = summary["types"] = nlohmann::ordered_json::array();
    for (const auto& row : profile.rows) types.push_back(row_object(profile, row));
    summary["notes"] = notes;
    return summary;
}

std::string mebibytes(std::uint64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return text;
}

// --method and --max-memory: fills settings.how and block_vectors. auto takes
// rsvd when exact does not fit, or when rsvd's planned CPU time is under half
// of exact's (exact's complete spectra are worth up to 2×), else exact; a
// method that does not fit first tries smaller blocks, then (without
// --threads) one BLAS thread, then (rsvd) no extra pass for C_u, then
// refuses with what it would need. Each plan is of the run `partition`
// makes of the settings (state files, ranks).
void choose_method(const cli::options& o, const std::vector<weight_matrix>& matrices, std::uint64_t d,
                   analysis_options& settings, const std::function<void(analysis_options&)>& partition,
                   std::vector<std::string>& notes) {
    settings.k = o.k;
    settings.block_vectors = o.block_vectors;
    settings.randomized.oversample = o.oversample;
    settings.randomized.power_iterations = o.power_iterations;
    settings.randomized.seed = o.seed;
    auto with = [&](method how) {
        analysis_options trial = settings;
        trial.how = how;
        partition(trial);
        return trial;
    };
    auto plan = [&](method how) { return planned_bytes(matrices, d, with(how)); };
    auto seconds = [&](method how) { return planned_seconds(matrices, d, with(how)); };
    settings.how = o.method == cli::method_choice::rsvd ? method::rsvd : method::exact;
    if (o.method == cli::method_choice::automatic && o.max_memory && plan(method::exact) > *o.max_memory) {
        settings.how = method::rsvd;
        notes.push_back("--method auto: exact would need " + mebibytes(plan(method::exact)) + " (> --max-memory " +
                        mebibytes(*o.max_memory) + "); using rsvd");
    } else if (o.method == cli::method_choice::automatic && !o.center &&
               2 * seconds(method::rsvd) < seconds(method::exact)) {
        settings.how = method::rsvd;
        char text[160];
        std::snprintf(text, sizeof text, "--method auto: rsvd is planned at %.0f CPU s, exact at %.0f; using rsvd",
                      seconds(method::rsvd), seconds(method::exact));
        notes.push_back(text);
    }
    if (settings.how == method::rsvd && o.center)
        throw usage_error("--center is not supported by --method rsvd (use --method exact)");
    if (!o.max_memory) return;
    constexpr std::size_t smallest_block = 64;  // below this BLAS runs far from its peak
    auto shrink_blocks = [&] {
        while (plan(settings.how) > *o.max_memory && settings.block_vectors > smallest_block)
            settings.block_vectors = std::max(smallest_block, settings.block_vectors / 2);
    };
    shrink_blocks();
    // Every BLAS thread of the exact method holds its own buffers, so one
    // thread is slower but smaller; not when --threads asked for more, nor
    // where it plans no less (rsvd's threads share their buffers).
    const int threads = detail::blas_threads();
    if (plan(settings.how) > *o.max_memory && !o.threads && threads > 1) {
        const analysis_options before = settings;
        const std::uint64_t before_plan = plan(settings.how);
        detail::set_blas_threads(1);
        settings.solver_threads = 0;
        settings.block_vectors = o.block_vectors;
        shrink_blocks();
        if (plan(settings.how) >= before_plan) {
            detail::set_blas_threads(threads);
            settings = before;
        }
    }
    // Last C_u's extra passes, one at a time: they cost accuracy
    // (r2_universal) where the steps above cost only time.
    const std::size_t extra_passes = settings.randomized.universal_extra_passes;
    while (plan(settings.how) > *o.max_memory && settings.how == method::rsvd &&
           settings.randomized.universal_extra_passes > 0) {
        --settings.randomized.universal_extra_passes;
        settings.block_vectors = o.block_vectors;
        shrink_blocks();
    }
    const std::uint64_t needed = plan(settings.how);
    if (needed > *o.max_memory) {
        std::string advice;
        if (settings.how == method::exact && cli::supports_rsvd(o.what))
            advice = "; --method rsvd would need " + mebibytes(plan(method::rsvd));
        throw std::runtime_error("--max-memory " + mebibytes(*o.max_memory) + " is too small: the " +
                                 std::string(method_name(settings.how)) + " method needs " + mebibytes(needed) +
                                 " for hidden size " + std::to_string(d) + advice);
    }
    std::vector<std::string> steps;
    if (detail::blas_threads() != threads) steps.push_back("one BLAS thread (of " + std::to_string(threads) + ")");
    if (settings.block_vectors != o.block_vectors)
        steps.push_back("blocks of " + std::to_string(settings.block_vectors) + " vectors");
    if (const std::size_t kept = settings.randomized.universal_extra_passes; kept != extra_passes)
        steps.push_back(kept == 0 ? "no extra pass for the universal basis"
                                  : std::to_string(kept) + " extra pass(es) for the universal basis (of " +
                                        std::to_string(extra_passes) + ")");
    std::string fitted;
    for (std::size_t i = 0; i < steps.size(); ++i)
        fitted += (i == 0 ? "" : i + 1 == steps.size() ? " and " : ", ") + steps[i];
    if (!fitted.empty())
        notes.push_back("--max-memory: " + fitted + " to fit " + mebibytes(*o.max_memory) + " (planned " +
                        mebibytes(needed) + ")");
}

// Said every run, so a peak RSS can be read against it (BENCHMARKS.md).
std::string plan_note(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& settings) {
    return "the " + std::string(method_name(settings.how)) + " method plans " +
           mebibytes(planned_bytes(matrices, d, settings)) + " of memory (--max-memory is checked against it)";
}

std::string parameter_text(std::uint64_t count) { return std::to_string(count) + " parameters"; }

// allocate: the greedy ranks at --budget beside the uniform K, with notes on
// what limited them; the plan file, if asked for, before the table.
void run_allocate(const cli::options& o, const analysis_result& result, const std::vector<weight_matrix>& matrices,
                  const messages& say) {
    const auto units = o.allocate_per_matrix ? matrix_units(result) : type_units(result);
    const auto objective = o.energy_objective ? allocation_objective::energy : allocation_objective::weighted;
    const std::uint64_t original = parameters_original(units), most = parameters_at_most(units);
    const std::uint64_t budget =
        o.budget.count ? o.budget.count : static_cast<std::uint64_t>(o.budget.fraction * static_cast<double>(original));
    const auto chosen = allocate_ranks(units, budget, objective);
    const auto uniform = uniform_ranks(units, budget, objective);

    std::uint64_t cheapest = UINT64_MAX;
    std::string at_computed;  // units whose rank stops at the rsvd eigenvalues
    for (const auto& u : units) {
        cheapest = std::min(cheapest, u.step_cost);
        if (result.how == method::rsvd && u.k_max == u.eigenvalues.n_elem)
            at_computed += (at_computed.empty() ? "" : ", ") + u.name;
    }
    if (!at_computed.empty())
        say.note("--method rsvd: ranks stop at the " + std::to_string(result.k) +
                 " eigenvalues computed (k_max) for " + at_computed + "; larger K is not extrapolated (raise --k)");
    if (budget < cheapest)
        say.note("budget of " + parameter_text(budget) + " is below one component of any unit (the cheapest costs " +
                 std::to_string(cheapest) + "): every k is 0");
    else if (budget >= most)
        say.note("budget of " + parameter_text(budget) + " covers every unit at k_max (" + parameter_text(most) +
                 " of the " + std::to_string(original) +
                 " analysed): " + std::to_string(budget - most) + " unspent");
    else
        say.note("greedy allocation: " + std::string(objective_name(objective)) + " objective " +
                 std::to_string(chosen.objective) + ", at most " + std::to_string(chosen.gap_bound) +
                 " below the optimum; uniform K = " + std::to_string(uniform.uniform_k) + " keeps " +
                 std::to_string(uniform.objective));

    if (!o.plan_file.empty()) {
        const table plan = plan_table(units, chosen, matrices);
        const std::string extension = o.plan_file.extension().string().substr(1);
        if (const auto format = format_named(extension); format && extension != "json") {
            write_table_file(o.plan_file, plan, *format);
        } else {
            nlohmann::ordered_json settings;
            settings["tool"] = "adaptk-stream " ADAPTK_VERSION;
            settings["model"] = o.model.string();
            settings["per"] = o.allocate_per_matrix ? "matrix" : "type";
            settings["objective"] = objective_name(objective);
            settings["method"] = method_name(result.how);
            settings["budget"] = budget;
            settings["params_kept"] = chosen.params_kept;
            settings["params_original"] = original;
            settings["energy_kept"] = chosen.objective;
            write_text_file(o.plan_file, plan_json(plan, settings).dump(2) + "\n");
        }
        say.note("wrote the rank plan " + o.plan_file.string());
    }
    emit(allocation_table(units, o.allocate_per_matrix ? "matrix" : "type", chosen, uniform), o.format);
}

// Notes are printed once a step has made them, or before the error when a
// later step fails, so the note that explains a failure (a tensor left out,
// an inferred size) is never lost; summary.json keeps all of them.
struct note_log {
    std::vector<std::string> lines;
    std::size_t printed = 0;

    void print(const messages& say) {
        for (; printed < lines.size(); ++printed) say.note(lines[printed]);
    }
};

// The files a report writes, for every format: what an existing --out may
// hold, since committing a report replaces the whole directory.
bool is_report_file(const std::string& name) {
    for (const std::string stem : {"profile", "groups", "frontier", "budget", "layers", "spectrum", "allocation"})
        for (const auto& [format, extension] : table_formats)
            if (name == stem + "." + std::string(extension)) return true;
    return name == "summary.json" || name == "spectra.svg" || name == "frontier.svg" || name == "allocation.svg";
}

// Before the long pass: --out must be new, empty, or an earlier report (never
// a directory of other files, which the swap would delete).
void check_report_directory(const fs::path& out) {
    std::error_code error;
    if (fs::is_directory(out, error))
        for (const auto& item : fs::directory_iterator(out)) {
            const std::string name = item.path().filename().string();
            if (!is_report_file(name))
                throw std::system_error(std::make_error_code(std::errc::directory_not_empty),
                                        out.string() + ": holds '" + name +
                                            "', which is no report file; --out must be a new or empty directory "
                                            "or an earlier report");
        }
}

// The matrices to analyse; when there are none, the notes saying why each
// classified tensor was left out come first, and the error quotes the first.
std::vector<weight_matrix> analysed_matrices(const fs::path& path, const checkpoint& model, std::uint64_t d,
                                             note_log& notes, const messages& say) {
    const std::size_t before = notes.lines.size();
    auto matrices = model.matrices(d, notes.lines);
    if (!matrices.empty()) return matrices;
    notes.print(say);
    const std::size_t left_out = notes.lines.size() - before;
    std::string reason = "no weight matrix to analyse at hidden size " + std::to_string(d);
    if (left_out > 0)
        reason += "; " + std::to_string(left_out) + " left out, the first: " + notes.lines[before];
    throw format_error(path.string(), "", reason);
}

// --k and --ks above d are clamped to d, with a note.
void clamp_to_hidden_size(cli::options& o, std::uint64_t d, note_log& notes) {
    if (o.k > d) {
        notes.lines.push_back("--k " + std::to_string(o.k) + " exceeds the hidden size; clamped to " + std::to_string(d));
        o.k = d;
    }
    bool clamped_ks = false;
    for (auto& k : o.frontier_ks)
        if (k > d) {
            k = d;
            clamped_ks = true;
        }
    if (clamped_ks && (o.what == cli::command::frontier || o.what == cli::command::report))
        notes.lines.push_back("frontier K values above the hidden size were clamped to " + std::to_string(d));
    std::sort(o.frontier_ks.begin(), o.frontier_ks.end());
    o.frontier_ks.erase(std::unique(o.frontier_ks.begin(), o.frontier_ks.end()), o.frontier_ks.end());
}

// Everything analyse() is asked for, the method and block size included
// (after clamping --k and --ks to d).
analysis_options analysis_settings(cli::options& o, const std::vector<weight_matrix>& matrices, std::uint64_t d,
                                   const std::optional<state_set>& states, rank_group& ranks, note_log& notes) {
    clamp_to_hidden_size(o, d, notes);
    analysis_options settings;
    settings.transport_bytes = ranks.transport_bytes();
    // Before choose_method: the plan counts the per-matrix projection's block.
    // From states only when they hold per-matrix rows, solved as they say.
    settings.per_matrix = (!states || states->per_matrix()) &&
                          (o.what == cli::command::layers || o.what == cli::command::report ||
                           (o.what == cli::command::allocate && o.allocate_per_matrix));
    settings.matrix_precision = states && states->per_matrix() ? *states->per_matrix()
                                                               : o.matrix_precision.value_or(eig_precision::float32);
    // A solver thread per BLAS thread; with one, solves stay on the streaming thread.
    settings.solver_threads = detail::blas_threads() > 1 ? static_cast<std::size_t>(detail::blas_threads()) : 0;
    settings.universal_k = o.k;
    if (o.what == cli::command::frontier || o.what == cli::command::report)
        settings.universal_k = std::max(o.k, o.frontier_ks.back());
    settings.center = o.center;
    settings.trace_weighting = o.trace_weighting;
    // The run's partition (state files' parts, this rank's share), in every
    // plan choose_method weighs: combining Grams holds more than streaming them.
    auto partition = [&](analysis_options& s) {
        if (states) {
            s.reads = [](std::size_t) { return false; };
            s.combine = [&states](std::size_t type_index, gram_accumulator& gram) { states->add_to(type_index, gram); };
            if (s.per_matrix) {
                s.matrix_eigenvalues = [&states](std::size_t m) { return states->eigenvalues(m); };
                // The projection pass reads the weights --model gave, else nothing (r2 columns stay NaN).
                s.projects = [projected = !o.weights.empty()](std::size_t) { return projected; };
            }
        }
        ranks.attach(matrices, s);
    };
    choose_method(o, matrices, d, settings, partition, notes.lines);
    if (o.what == cli::command::allocate && o.allocate_per_matrix && settings.how != method::exact)
        throw std::runtime_error("allocate --per matrix needs the exact per-matrix spectra, and --method auto chose "
                                 "rsvd to fit --max-memory");
    settings.per_matrix = settings.per_matrix && settings.how == method::exact;
    partition(settings);
    ranks.share(matrices, settings);
    settings.spill_directory = o.spill_dir;
    notes.lines.push_back(plan_note(matrices, d, settings));
    if (const std::uint64_t spill = spill_bytes(matrices, d, settings); spill > 0)
        notes.lines.push_back("the exact method parks its type Grams (" + mebibytes(spill) +
                              ") in a temporary file in " + spill_directory(settings).string() + " (--spill-dir)");
    return settings;
}

// Every table, summary.json and the SVGs into the staging directory, then
// swapped in whole: the report appears complete or not at all.
// `no_layers` says why layers.csv is missing from an exact run (state files),
// empty when per-matrix statistics ran.
void write_report(const cli::options& o, const analysis_result& result, const std::string& no_layers, note_log& notes,
                  const messages& say, atomic_directory& out) {
    std::vector<table> tables{profile_table(result, o.thresholds), groups_table(result),
                              frontier_table(result, o.frontier_ks)};
    if (result.how != method::exact) {
        notes.lines.push_back("budget.csv and layers.csv need every eigenvalue (--method exact): not written");
    } else {
        tables.push_back(budget_table(result, o.budget_threshold));
        if (no_layers.empty())
            tables.push_back(layers_table(result, o.thresholds));
        else
            notes.lines.push_back(no_layers);
    }
    tables.push_back(spectrum_table(result));
    if (!result.center)
        tables.push_back(allocation_frontier(
            result, o.energy_objective ? allocation_objective::energy : allocation_objective::weighted, o.budget_threshold));
    else
        notes.lines.push_back("allocation.csv and allocation.svg need the uncentered spectra (no --center): not written");
    const std::string extension(format_name(o.format));
    std::string written;
    for (const table& t : tables) {
        write_table_file(out.staging() / (t.name + "." + extension), t, o.format);
        written += (written.empty() ? "" : ",") + t.name;
    }
    write_text_file(out.staging() / "summary.json", summary_json(o, result, tables[0], tables[1], notes.lines).dump(2) + "\n");
    write_text_file(out.staging() / "spectra.svg", spectra_svg(result));
    write_text_file(out.staging() / "frontier.svg", frontier_svg(result, tables[2]));
    if (!result.center) write_text_file(out.staging() / "allocation.svg", allocation_svg(tables.back()));
    out.commit();
    notes.print(say);
    say.note("wrote " + (o.out_dir / ("{" + written + "}." + extension)).string() +
             ", summary.json, spectra.svg, frontier.svg" + (result.center ? "" : ", allocation.svg"));
}

void emit_command_table(const cli::options& o, const analysis_result& result, const std::vector<weight_matrix>& matrices,
                        const messages& say) {
    switch (o.what) {
    case cli::command::profile: emit(profile_table(result, o.thresholds), o.format); break;
    case cli::command::groups: emit(groups_table(result), o.format); break;
    case cli::command::frontier: emit(frontier_table(result, o.frontier_ks), o.format); break;
    case cli::command::budget: emit(budget_table(result, o.budget_threshold), o.format); break;
    case cli::command::layers: emit(layers_table(result, o.thresholds), o.format); break;
    case cli::command::spectrum: emit(spectrum_table(result), o.format); break;
    case cli::command::allocate: run_allocate(o, result, matrices, say); break;
    case cli::command::report:
    case cli::command::compare:
    case cli::command::inspect:
    case cli::command::accumulate: break;
    }
}

int accumulate_part(const cli::options& o, const messages& say, note_log& notes) {
    // Before the long pass: a --state whose directory is missing fails now, not after it.
    const fs::path state_dir = o.state_out.parent_path().empty() ? fs::path(".") : o.state_out.parent_path();
    if (!fs::is_directory(state_dir))
        throw std::system_error(std::make_error_code(std::errc::no_such_file_or_directory),
                                o.state_out.string() + ": cannot write the state file, no directory " + state_dir.string());
    const checkpoint model = open_model(o, o.model);
    notes.lines = model.notes();
    const std::uint64_t d = model.hidden_size(o.hidden_size, notes.lines);
    const auto matrices = analysed_matrices(o.model, model, d, notes, say);
    analysis_options settings;
    settings.center = o.center;
    settings.per_matrix = o.per_matrix_state;
    settings.matrix_precision = o.matrix_precision.value_or(eig_precision::float32);
    // The per-matrix solves run on the streaming thread with every BLAS
    // thread, each holding its buffers: as many as solver threads would.
    settings.solver_threads = static_cast<std::size_t>(detail::blas_threads());
    // Planned and fitted to --max-memory as this part's run: write_state
    // streams the part's share and hands out each type's Gram.
    const auto part_of = split_by_bytes(matrices, o.parts);
    auto as_part = [&](analysis_options& s) {
        s.reads = [&](std::size_t m) { return part_of[m] + 1 == o.part; };
        s.hands_out_states = true;
    };
    choose_method(o, matrices, d, settings, as_part, notes.lines);
    analysis_options planned = settings;
    as_part(planned);
    notes.lines.push_back(plan_note(matrices, d, planned));
    notes.print(say);
    {
        progress_line progress(!say.quiet());
        settings.progress = std::ref(progress);
        write_state(o.state_out, {o.model.string(), "adaptk-stream " ADAPTK_VERSION}, matrices, d, settings, o.part, o.parts);
    }
    say.note("wrote part " + std::to_string(o.part) + "/" + std::to_string(o.parts) + " of " + o.model.string() + " to " +
             o.state_out.string());
    return 0;
}

int analyse_and_write(cli::options o, const messages& say, rank_group& ranks, note_log& notes) {
    std::optional<atomic_directory> report_dir;
    if (o.what == cli::command::report && ranks.rank() == 0) {
        check_report_directory(o.out_dir);
        report_dir.emplace(o.out_dir);  // its staging directory now: an unwritable place fails before the pass
    }
    // The weights come from MODEL, or as Grams from --from-state's parts (through settings.combine).
    std::optional<checkpoint> model;
    std::optional<state_set> states;
    std::uint64_t d = 0;
    std::vector<weight_matrix> matrices;
    if (o.state_inputs.empty()) {
        model.emplace(open_model(o, o.model));
        notes.lines = model->notes();
        d = model->hidden_size(o.hidden_size, notes.lines);
        matrices = analysed_matrices(o.model, *model, d, notes, say);
    } else {
        if (ranks.size() > 1) throw usage_error("--from-state merges on one process: start it without mpirun");
        states.emplace(o.state_inputs);
        d = states->dim();
        if (o.hidden_size && *o.hidden_size != d)
            throw usage_error("--hidden-size " + std::to_string(*o.hidden_size) + " differs from the states' hidden size " +
                              std::to_string(d));
        if (o.center && !states->center())
            throw format_error(o.state_inputs.front().string(), "", "accumulated without --center, which --center needs");
        if (o.what == cli::command::layers) states->require_per_matrix("layers");
        if (o.what == cli::command::allocate && o.allocate_per_matrix) states->require_per_matrix("allocate --per matrix");
        matrices = states->matrices();
        if (!o.weights.empty()) {
            // Re-read for the projection pass alone; they must be the matrices the parts streamed.
            states->require_per_matrix("--model (the projection pass)");
            model.emplace(open_model(o, o.weights));
            notes.lines = model->notes();
            auto weights = analysed_matrices(o.weights, *model, d, notes, say);
            states->check_weights(weights, o.weights.string());
            matrices = std::move(weights);
        }
        o.model = states->model();
        o.method = cli::method_choice::exact;
    }
    analysis_options settings = analysis_settings(o, matrices, d, states, ranks, notes);
    notes.print(say);
    progress_line progress(!say.quiet());
    // Rank 0 shows the whole run's bytes, its own share scaled up: the shares are equal by bytes.
    std::uint64_t all_bytes = 0;
    for (const auto& matrix : matrices) all_bytes += matrix.vector_bytes();
    settings.progress = [&](std::uint64_t done, std::uint64_t total) {
        if (ranks.size() == 1 || total == 0) return progress(done, total);
        progress(static_cast<std::uint64_t>(static_cast<double>(done) / static_cast<double>(total) * static_cast<double>(all_bytes)),
                 all_bytes);
    };
    const analysis_result result = analyse(matrices, d, settings);
    if (ranks.size() > 1) {
        if (const rank_outcome outcome = ranks.agree({}); outcome.status != 0) throw rank_failure(outcome);
        const std::vector<rank_traffic> traffic = ranks.traffic();
        for (std::size_t r = 0; r < traffic.size(); ++r)
            say.note("rank " + std::to_string(r) + " of " + std::to_string(traffic.size()) + ": sent " +
                     std::to_string(traffic[r].sent) + " bytes, received " + std::to_string(traffic[r].received) +
                     " bytes, decomposed " + std::to_string(traffic[r].types) + " type Grams");
        if (ranks.rank() != 0) return 0;  // only rank 0 writes
    }
    if (report_dir) {
        std::string no_layers;
        if (states && !states->per_matrix())
            no_layers = "layers.csv needs per-matrix rows, which these state files do not hold (accumulate with "
                        "--per-matrix): not written";
        else if (states && o.weights.empty())
            no_layers = "layers.csv needs --model MODEL with --from-state (r2_type and r2_universal project the "
                        "weights): not written";
        write_report(o, result, no_layers, notes, say, *report_dir);
    } else {
        emit_command_table(o, result, matrices, say);
    }
    return 0;
}

// compare: A and B analysed alike at A's hidden size, after a first pass that
// streams both for the difference energies (and refuses unlike names early).
// Over MPI ranks each rank streams the pairs of its share of A, the energies
// are summed, and B is split on its own for its analysis.
int compare_and_write(cli::options o, const messages& say, rank_group& ranks, note_log& notes) {
    const checkpoint model_a = open_model(o, o.model);
    const checkpoint model_b = open_model(o, o.model_b);
    notes.lines = model_a.notes();
    notes.lines.insert(notes.lines.end(), model_b.notes().begin(), model_b.notes().end());
    const std::uint64_t d = model_a.hidden_size(o.hidden_size, notes.lines);
    if (const std::uint64_t d_b = model_b.hidden_size(o.hidden_size, notes.lines); d_b != d)
        throw format_error(o.model_b.string(), "", "hidden size " + std::to_string(d_b) + " differs from " +
                                                       std::to_string(d) + " of " + o.model.string());
    const auto matrices_a = analysed_matrices(o.model, model_a, d, notes, say);
    const auto matrices_b = analysed_matrices(o.model_b, model_b, d, notes, say);
    analysis_options settings = analysis_settings(o, matrices_a, d, std::nullopt, ranks, notes);
    notes.print(say);
    progress_line progress(!say.quiet());
    settings.progress = std::ref(progress);
    auto differences = difference_energies(matrices_a, o.model.string(), matrices_b, o.model_b.string(), settings);
    std::vector<double> energies;
    for (const auto& difference : differences) energies.insert(energies.end(), {difference.energy_a, difference.difference_energy});
    ranks.sum(energies);
    for (std::size_t t = 0; t < differences.size(); ++t) {
        differences[t].energy_a = energies[2 * t];
        differences[t].difference_energy = energies[2 * t + 1];
    }
    const analysis_result result_a = analyse(matrices_a, d, settings);
    if (ranks.size() > 1) ranks.share(matrices_b, settings);  // B's own split: its matrices may be ordered otherwise
    const analysis_result result_b = analyse(matrices_b, d, settings);
    if (ranks.rank() != 0) return 0;  // only rank 0 writes
    emit(compare_table(result_a, result_b, differences, o.thresholds), o.format);
    return 0;
}

// Every command but inspect: --threads set once; notes made before a failure
// are printed before its message.
int run_analysis(const cli::options& o, const messages& say, rank_group& ranks) {
    note_log notes;
    if (o.threads) detail::set_blas_threads(*o.threads);
    try {
        switch (o.what) {
        case cli::command::compare: return compare_and_write(o, say, ranks, notes);
        case cli::command::accumulate:
            if (ranks.size() > 1)
                throw usage_error("accumulate splits a run for jobs without MPI: start it once per part, not under mpirun");
            return accumulate_part(o, say, notes);
        default: return analyse_and_write(o, say, ranks, notes);
        }
    } catch (...) {
        notes.print(say);
        throw;
    }
}

// One run on this rank, its failure as (status, message): 2 usage, 1 anything else.
rank_outcome run(int argc, char** argv, rank_group& ranks) {
    try {
        const cli::parsed parsed = cli::parse(argc, argv);
        if (!parsed.run) {
            if (ranks.rank() != 0) return {};
            std::cout << parsed.text << std::flush;
            if (!std::cout) throw std::system_error(errno ? errno : EIO, std::generic_category(), "stdout: write failed");
            return {};
        }
        const cli::options& o = *parsed.run;
        const messages say(o.quiet || ranks.rank() != 0);
        if (o.what == cli::command::inspect) {
            if (ranks.rank() == 0) run_inspect(o, say);
        } else {
            run_analysis(o, say, ranks);
        }
        return {};
    } catch (const usage_error& e) {
        return {2, e.what()};
    } catch (const std::bad_alloc&) {
        return {1, "out of memory (--max-memory plans the buffers to fit, or refuses up front)"};
    }
}

}  // namespace

int main(int argc, char** argv) {
    // Big buffers (d×d Grams, vector blocks) always come from mmap and go back
    // to the system when freed; glibc would otherwise raise its threshold after
    // the first free and keep later ones in a heap that never shrinks.
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    exit_on_shrunk_mapping("adaptk-stream");
    try {
        rank_group ranks(argc, argv);
        rank_outcome outcome;
        try {
            outcome = ranks.agree(run(argc, argv, ranks));
        } catch (const rank_failure& e) {
            outcome = e.outcome();  // agreed inside the analysis
        } catch (const std::exception& e) {
            outcome = ranks.agree({1, e.what()});
        }
        if (outcome.status != 0 && ranks.rank() == 0) std::cerr << "adaptk-stream: " << outcome.message << '\n';
        return outcome.status;
    } catch (const std::exception& e) {  // MPI itself failed
        std::cerr << "adaptk-stream: " << e.what() << '\n';
        return 1;
    }
}
