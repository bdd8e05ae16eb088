#pragma once
// The exact spectral budget in one streaming pass over the mapped weights.
// For each type t (in report order) its matrices' hidden-axis vectors are
// accumulated into C_t = Σ XᵀX (float64, one d×d accumulator alive at a time),
// C_t is parked in a temporary file and reduced to its eigenvalues. Then the
// universal Gram C_u = Σ_t w_t C_t is rebuilt from the parked matrices, its
// top eigenvectors V_u found, and each type's captured energy vᵀC_t v read off.
// With per-matrix statistics, each matrix's own Gram is decomposed as well
// and a second, cheap pass projects every matrix onto the type's and the
// universal top-K bases; those solves wait in the spill file and run side by
// side, one per solver thread, between matrices in the memory the streaming
// frees. RAM: about three d×d float64 matrices, independent of layers and
// vocabulary.
// The randomized method (method::rsvd) replaces all of that with
// randomized_eigen (rsvd.hpp) over q + 2 streaming passes, every type and
// C_u together: top-k eigenvalues with error bounds, exact energies, and
// RAM O(types·d·(q + 2)·ℓ) instead of O(d²).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <armadillo>

#include "adaptk/classify.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/gram_kernel.hpp"
#include "adaptk/rsvd.hpp"
#include "adaptk/spectrum.hpp"
#include "adaptk/weight_matrix.hpp"

namespace adaptk {

enum class method { exact, rsvd };
std::string_view method_name(method m) noexcept;  ///< "exact", "rsvd"

struct type_spectrum;
struct matrix_spectrum;

/// Precision of the per-matrix eigenvalue solves (--eig-precision). The Gram
/// itself is a float64 sum of float32 products (gram.hpp) either way; single
/// (float32) rounds it to float32 for ssyevd, whose error (|Δλ| ≤ p(d)·ε₃₂·λ₁) is of
/// the class the float32 products already carry, and the layers table's
/// columns, sums over the spectrum, stay within 1e-4 of double (K_p ±1;
/// measured in BENCHMARKS.md). F64 files, whose Grams hold float64 products,
/// are solved in float64 either way; so are type spectra, the universal basis
/// and every eigenvector.
enum class eig_precision { float32, float64 };
std::string_view eig_precision_name(eig_precision p) noexcept;  ///< "single", "double"

struct analysis_options {
    method how = method::exact;
    std::size_t k = 32;            ///< K of the r2 columns (clamped to d)
    std::size_t universal_k = 32;  ///< universal basis vectors to compute (≥ k; clamped to d)
    bool center = false;           ///< subtract each type's mean vector
    bool trace_weighting = false;  ///< C_u = Σ C_t / tr(C_t) instead of Σ C_t
    bool per_matrix = false;       ///< also the per-matrix statistics (the layers table)
    eig_precision matrix_precision = eig_precision::float32;  ///< of the per-matrix eigenvalue solves
    /// Per-matrix mode: threads solving eigenproblems side by side, on
    /// single-threaded BLAS, between matrices (detail/eigen_pool.hpp); the
    /// Grams wait in the spill file. 0 solves on the streaming thread, one
    /// at a time. The projection pass streams as many matrices side by side.
    std::size_t solver_threads = 2;
    std::size_t block_vectors = 1024;
    /// exact: where the type Grams are parked (spill_bytes of them); empty:
    /// $TMPDIR, else /tmp.
    std::filesystem::path spill_directory;
    /// The Gram kernel for BF16 tensors; unset: active_gram_kernel().
    std::optional<gram_kernel> kernel;
    /// Resident memory of the ranks' transport beside the analysis (MPI's
    /// libraries and runtime: rank_group::transport_bytes), counted in planned_bytes.
    std::uint64_t transport_bytes = 0;
    /// The run is accumulate_grams' (a state file's part): the streaming
    /// alone, each type's Gram handed out as a packed state. For planned_bytes.
    bool hands_out_states = false;
    /// With method::rsvd: oversample, power_iterations, error_probes, seed
    /// (k and trace weighting come from the fields above; k = this->k).
    rsvd_options randomized;
    /// Called after every block: bytes of weights read so far, and in all.
    std::function<void(std::uint64_t done, std::uint64_t total)> progress;
    /// The share of a partitioned run (MPI ranks, state files): true for the
    /// matrices this process streams (empty: all of them). The others still
    /// count in the type totals; their vectors arrive through `combine`.
    std::function<bool(std::size_t matrix_index)> reads;
    /// Called with each type's accumulator, types in report order, after this
    /// process streamed its share and before the Gram is decomposed: adds what
    /// was accumulated elsewhere with gram_accumulator::operator+= (on the
    /// process that owns the type; the others' accumulators are then unused).
    std::function<void(std::size_t type_index, gram_accumulator& gram)> combine;
    /// Exact method over several processes (MPI ranks; all empty in one
    /// process): each type is decomposed where its Gram was combined, and the
    /// results meet on one process, which alone has the whole analysis_result.
    struct type_owners {
        /// Whether this process decomposes type `type_index` (its Gram was combined here).
        std::function<bool(std::size_t type_index)> owns;
        /// Collective: sums every process's share of C_u = Σ_t w_t C_t (its own
        /// types) onto the process that builds the universal basis; true there.
        std::function<bool(arma::mat& universal)> meet;
        /// Collective: the universal eigenpairs, from where meet() returned true, to every process.
        std::function<void(eigenpairs& top)> share_basis;
        /// Collective: each type's spectrum, from its owner onto the process
        /// meet() chose (result.types there is complete afterwards).
        std::function<void(std::vector<type_spectrum>& types)> gather;
        /// Collective, per-matrix statistics: type `type_index`'s top-k
        /// eigenvectors (d×k), from its owner to every process.
        std::function<void(std::size_t type_index, arma::mat& basis)> share_type_basis;
        /// Collective, per-matrix statistics: each matrix's row (eigenvalues,
        /// r2s), from the process that read it onto the one meet() chose.
        std::function<void(std::vector<matrix_spectrum>& matrices)> gather_matrices;
    } owners;
    /// Per-matrix statistics of a partitioned run without ranks (state files):
    /// matrix `matrix_index`'s own eigenvalues (descending), for each matrix
    /// `reads` does not select; they were computed where it was read.
    std::function<arma::vec(std::size_t matrix_index)> matrix_eigenvalues;
    /// Per-matrix statistics: the matrices the projection pass streams for
    /// r2_type and r2_universal (empty: those `reads` selects). A merge of
    /// state files projects every matrix of the weights it was given, or
    /// none (their r2 columns stay NaN).
    std::function<bool(std::size_t matrix_index)> projects;
    /// The randomized method over several processes (MPI ranks; with `reads`):
    /// each pass's sketches summed over them before the next (rsvd.hpp).
    pass_combiner combine_sketches;
};

struct type_spectrum {
    weight_type type{};
    std::size_t matrices = 0;
    std::uint64_t vectors = 0;
    std::uint64_t parameters = 0;   ///< Σ rows·cols of its matrices
    /// tr C_t = Σ‖x‖² (centered with --center), or the sum of the clipped
    /// eigenvalues where rounding made that larger (spectrum_energy): every
    /// fraction of the type divides by it, so none passes 1.
    double energy = 0;
    arma::vec eigenvalues;          ///< exact: all d, descending, ≥ 0; rsvd: the top k Ritz values
    arma::vec eigenvalue_errors;    ///< rsvd: bounds on |λ_i − θ_i| (rsvd.hpp); empty for exact
    /// exact: the accuracy contract. Every eigenvalue is within rounding_bound
    /// of that of the Gram of the decoded vectors in exact arithmetic: float32
    /// accumulation (gram_rounding) plus float64 steps (adding matrices,
    /// centering, dsyevd's backward error); rounding_estimate is what rounding
    /// typically does (√n instead of n). Both 0 for rsvd, whose errors above include it.
    double rounding_bound = 0;
    double rounding_estimate = 0;
    arma::vec eigenvalue_changes;   ///< rsvd: estimates of λ_i − θ_i (rsvd.hpp value_changes); empty for exact
    /// v_jᵀ C_t v_j / tr(C_t) for the universal eigenvectors j < universal_k:
    /// prefix sums give r2_universal at any K ≤ universal_k.
    arma::vec universal_capture;
};

struct matrix_spectrum {
    std::string name;
    tensor_class kind{};
    std::uint64_t rows = 0;
    std::uint64_t cols = 0;
    arma::vec eigenvalues;     ///< of the matrix's own d×d Gram, descending
    double r2_type = 0;        ///< energy kept by the type's top-K basis (NaN: not projected)
    double r2_universal = 0;   ///< energy kept by the universal top-K basis (NaN: not projected)
};

struct analysis_result {
    method how = method::exact;
    std::uint64_t dim = 0;
    std::size_t k = 0;            ///< after clamping to d
    std::size_t universal_k = 0;  ///< after clamping to d
    bool center = false;
    bool trace_weighting = false;
    std::vector<type_spectrum> types;        ///< present types, report order
    arma::vec universal_eigenvalues;         ///< top universal_k of C_u, descending
    std::vector<matrix_spectrum> matrices;   ///< when per_matrix, in input order
    std::size_t passes = 1;                  ///< streaming passes over the weights (per_matrix adds one)
    std::size_t sketch_size = 0;             ///< rsvd: ℓ, columns per Krylov block
    double universal_error = 0;              ///< rsvd: error_estimate of the universal eigenvalues
    double universal_capture_change = 0;     ///< rsvd: rsvd_result::universal_capture_change, an estimate of r2_universal's error
};

/// True when `t` holds every eigenvalue (exact method): statistics of the
/// whole spectrum (pr, entropy rank, any k_p) are defined.
bool has_full_spectrum(const type_spectrum& t, std::uint64_t dim) noexcept;

/// Bytes analyse(matrices, d, options) will hold at its peak: its buffers
/// (accumulators or Krylov bases, block buffers) plus the file bytes read in
/// flight (a staging buffer or a column tile; nothing is mapped), OpenBLAS's
/// buffers of the threads that call it, and a measured share for the program
/// and the ranks' transport; per-matrix solves run in what the streaming
/// frees. The figure --max-memory is checked against; the benchmark compares
/// it with the measured peak RSS.
std::uint64_t planned_bytes(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options);

/// CPU seconds analyse(matrices, d, options) without per-matrix statistics is
/// planned to take, from the shape alone: for comparing the methods
/// (--method auto), not a wall-time promise.
double planned_seconds(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options);

/// Bytes the exact method parks in its temporary spill file (one d×d float64
/// Gram per type, per matrix also one per solver thread, one without them); 0 for rsvd.
std::uint64_t spill_bytes(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options);
/// The directory the spill file goes to: options.spill_directory, else
/// $TMPDIR, else /tmp.
std::filesystem::path spill_directory(const analysis_options& options);
/// The exact method's streaming pass alone: the matrices options.reads selects,
/// one accumulator per type (Σx tracked with options.center) handed to
/// `sink(type_index, gram)`, types in report order, one d×d accumulator alive
/// at a time. Every block reaches float64 at its end (gram.hpp), so
/// the parts of a partition add up to the whole run's Grams up to float64
/// summation order. With options.per_matrix each matrix is also accumulated
/// on its own (a second d×d accumulator) and its eigenvalues, solved at
/// options.matrix_precision, handed to `matrix_sink(matrix_index, values)`
/// before its type's `sink`: own_eigenvalue_count of them. Throws like analyse.
void accumulate_grams(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options,
                      const std::function<void(std::size_t type_index, gram_accumulator& gram)>& sink,
                      const std::function<void(std::size_t matrix_index, const arma::vec& eigenvalues)>& matrix_sink = {});

/// How many eigenvalues per-matrix statistics give `matrix`: d, or its vector
/// count N when N < d and one block (options.block_vectors) holds them all,
/// as it is then decomposed through its N×N XᵀX.
std::uint64_t own_eigenvalue_count(const weight_matrix& matrix, std::uint64_t d, const analysis_options& options);

/// What separates two checkpoints' matrices of one type (compare): Σ‖W_A‖² and
/// Σ‖W_A − W_B‖² over its matrices, in float64 from the decoded values.
struct type_difference {
    weight_type type{};
    std::size_t matrices = 0;
    double energy_a = 0;
    double difference_energy = 0;
};

/// Streams every matrix of `a` (that options.reads selects) together with the
/// one of `b` of the same name, block by block (both mapped; RAM two
/// d×block_vectors float64 buffers), and returns per type, in `a`'s order, the
/// energies of type_difference (over the pairs streamed here).
/// `model_a` and `model_b` name the checkpoints in messages: throws
/// format_error naming the model and tensor when a matrix of one has no
/// namesake in the other or their shapes differ.
std::vector<type_difference> difference_energies(const std::vector<weight_matrix>& a, const std::string& model_a,
                                                 const std::vector<weight_matrix>& b, const std::string& model_b,
                                                 const analysis_options& options);

/// Runs the analysis over `matrices` (as checkpoint::matrices() returns them:
/// grouped by type). per_matrix needs method::exact. Throws
/// std::invalid_argument for d = 0, an empty list, per_matrix with rsvd,
/// reads / combine with per_matrix but without either the owners'
/// share_type_basis and gather_matrices (MPI ranks) or matrix_eigenvalues
/// (state files), combine or owners
/// with rsvd, reads without combine_sketches with rsvd or the reverse,
/// numerical_error if LAPACK fails, std::system_error on spill-file failure.
analysis_result analyse(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options);

}  // namespace adaptk
