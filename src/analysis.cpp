#include "adaptk/analysis.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "adaptk/dtype.hpp"
#include "adaptk/error.hpp"
#include "adaptk/gram.hpp"
#include "adaptk/spectrum.hpp"
#include "adaptk/tensor_info.hpp"
#include "adaptk/vectors.hpp"
#include "detail/eigen_pool.hpp"
#include "detail/linalg.hpp"
#include "detail/part_runner.hpp"
#include "detail/spill.hpp"

namespace adaptk {
namespace {

constexpr std::size_t spill_chunk_columns = detail::spill_file::chunk_columns;

// The randomized method's blocks: 2^20 values (4 MiB of float32) or 512
// vectors, whichever is more, but at most 2^21 values (8 MiB), its largest
// buffer after the Krylov bases at d ≥ 4096; still 64 vectors per thread at
// d = 16384, where its GEMMs run near their full rate. Each block costs a
// packing of the pass's basis and, for a column-vector tensor, d preads:
// at d = 4096, blocks of 128 instead of 256 took 4.7 more CPU s of 38
// (BENCHMARKS, "rsvd at d = 4096: one pending sum, blocks of 512"). The exact
// method's blocks stay at block_vectors: its BF16 kernel packs pairs.
constexpr std::uint64_t randomized_block_values = 1 << 20, randomized_max_block_values = 1 << 21;
constexpr std::uint64_t randomized_block_vectors = 512;
std::size_t stream_block_vectors(const analysis_options& options, std::uint64_t d) {
    if (options.how == method::exact) return options.block_vectors;
    const std::uint64_t vectors = std::max(randomized_block_values / d, std::min(randomized_block_vectors, randomized_max_block_values / d));
    return static_cast<std::size_t>(std::max<std::uint64_t>(std::min<std::uint64_t>(options.block_vectors, vectors), 1));
}

// The matrices [first, last) of one type: checkpoint::matrices() returns them
// grouped by type, in report order.
struct type_run {
    std::size_t first, last;
};
std::vector<type_run> type_runs(const std::vector<weight_matrix>& matrices) {
    std::vector<type_run> runs;
    for (std::size_t m = 0; m < matrices.size(); ++m)
        if (m == 0 || matrices[m].kind.type != matrices[m - 1].kind.type)
            runs.push_back({m, m + 1});
        else
            runs.back().last = m + 1;
    return runs;
}

// Safe from several threads: the projection pass streams matrices side by side.
class progress_meter {
public:
    progress_meter(const analysis_options& options, std::uint64_t total) : options_(options), total_(total) {}
    void advance(std::uint64_t bytes) {
        const std::lock_guard lock(mutex_);
        done_ += bytes;
        if (options_.progress) options_.progress(done_, total_);
    }

private:
    const analysis_options& options_;
    std::uint64_t total_;
    std::uint64_t done_ = 0;
    std::mutex mutex_;
};

// One reusable block buffer per precision.
struct block_buffers {
    arma::fmat floats;
    arma::mat doubles;
    arma::Mat<std::uint16_t> bf16_bits;
};

// Streams one matrix's vectors into `sink(block, count)`; float64 files keep
// float64 precision, everything else is decoded to float32 for ssyrk, except
// BF16 with `RawBf16`: its bits as stored, for the accumulator's BF16 kernel.
// With `readers`, each block is read in shares by its threads.
template <bool RawBf16 = false, class Sink>
void stream_matrix(const weight_matrix& matrix, std::size_t block_vectors, block_buffers& buffers,
                   progress_meter& meter, Sink&& sink, detail::part_runner* readers = nullptr) {
    const std::uint64_t bytes_per_vector = matrix.vector_bytes() / std::max<std::uint64_t>(matrix.vector_count(), 1);
    auto run = [&](auto& buffer) {
        using real = typename std::decay_t<decltype(buffer)>::elem_type;
        vector_stream<real> stream(matrix, block_vectors, readers != nullptr ? readers->threads() : 1);
        if (buffer.n_rows != stream.dim() || buffer.n_cols < block_vectors) buffer.set_size(stream.dim(), block_vectors);
        auto next = [&] {
            if (readers == nullptr) return stream.next(buffer.memptr());
            return stream.next(buffer.memptr(), [readers](std::size_t shares, const auto& read) { readers->run(shares, read); });
        };
        for (std::size_t count; (count = next()) != 0;) {
            sink(buffer.memptr(), count);
            meter.advance(count * bytes_per_vector);
        }
    };
    if constexpr (RawBf16)
        if (matrix.type == dtype::bf16) return run(buffers.bf16_bits);
    if (matrix.type == dtype::f64)
        run(buffers.doubles);
    else
        run(buffers.floats);
}

// XᵀX (count×count, float64) of a d×count block: the inner products of its vectors.
template <class Real>
arma::mat vector_products(const Real* block, std::size_t d, std::size_t count) {
    const arma::mat x = arma::conv_to<arma::mat>::from(arma::Mat<Real>(const_cast<Real*>(block), d, count, false, true));
    return x.t() * x;
}
// The same from raw BF16 bits.
arma::mat vector_products(const std::uint16_t* bf16_block, std::size_t d, std::size_t count) {
    arma::mat x(d, count);
    for (std::size_t i = 0; i < x.n_elem; ++i) x[i] = bf16_to_float(bf16_block[i]);
    return x.t() * x;
}

// v_jᵀ C v_j for every column v_j of `basis`, with C read back from the spill
// in column chunks: (C V) = Σ_chunks C[:, a:b] V[a:b, :].
arma::vec captured_energy(const detail::spill_file& spill, std::size_t slot, const arma::mat& basis) {
    const std::size_t d = basis.n_rows;
    arma::mat product(d, basis.n_cols, arma::fill::zeros);
    arma::mat chunk(d, spill_chunk_columns);
    for (std::size_t first = 0; first < d; first += spill_chunk_columns) {
        const std::size_t count = std::min(spill_chunk_columns, d - first);
        spill.read_columns(slot, first, count, chunk.memptr());
        const arma::mat columns(chunk.memptr(), d, count, false, true);  // a view: head_cols() would copy it
        product += columns * basis.rows(first, first + count - 1);
    }
    arma::vec captured(basis.n_cols);
    for (std::size_t j = 0; j < basis.n_cols; ++j) captured[j] = arma::dot(basis.col(j), product.col(j));
    return captured;
}

// ‖Vᵀx‖² summed over a matrix's vectors, for two bases, against Σ‖x‖²:
// 2·d·k multiply-adds per vector and basis, in the block's precision.
class projected_energy {
public:
    projected_energy(const arma::mat& type_basis, const arma::mat& universal_basis)
        : type_basis_(type_basis),
          universal_basis_(universal_basis),
          type_basis_f_(arma::conv_to<arma::fmat>::from(type_basis)),
          universal_basis_f_(arma::conv_to<arma::fmat>::from(universal_basis)) {}

    void add(const float* block, std::size_t d, std::size_t count) {
        accumulate(block, d, count, type_basis_f_, universal_basis_f_);
    }
    void add(const double* block, std::size_t d, std::size_t count) {
        accumulate(block, d, count, type_basis_, universal_basis_);
    }
    double type_fraction() const { return fraction(in_type_); }
    double universal_fraction() const { return fraction(in_universal_); }

private:
    // A projection keeps at most the vector's energy; float32 products can
    // round a vector inside the basis's span a few ulps past it.
    double fraction(double projected) const {
        return total_ > 0 ? std::min(projected / total_, 1.0) : arma::datum::nan;
    }
    template <class Real>
    void accumulate(const Real* block, std::size_t d, std::size_t count, const arma::Mat<Real>& type_basis,
                    const arma::Mat<Real>& universal_basis) {
        const arma::Mat<Real> x(const_cast<Real*>(block), d, count, false, true);  // a view, no copy
        for (std::size_t i = 0; i < d * count; ++i) total_ += static_cast<double>(block[i]) * block[i];
        in_type_ += squared_norm(arma::Mat<Real>(type_basis.t() * x));
        in_universal_ += squared_norm(arma::Mat<Real>(universal_basis.t() * x));
    }
    template <class Real>
    static double squared_norm(const arma::Mat<Real>& m) {
        double sum = 0;
        for (const Real value : m) sum += static_cast<double>(value) * value;
        return sum;
    }

    const arma::mat& type_basis_;
    const arma::mat& universal_basis_;
    arma::fmat type_basis_f_;
    arma::fmat universal_basis_f_;
    double total_ = 0, in_type_ = 0, in_universal_ = 0;
};

// The exact method's accuracy contract (type_spectrum::rounding_bound): the
// accumulators' rounding, summed over the Grams that make up C_t, plus float64
// steps after them: adding `grams` Grams, centering (‖s‖²/n ≤ Σ‖x‖²) and
// dsyevd (backward error ~d·u·‖C‖, Anderson et al., LAPACK Users' Guide §4.7),
// together at most (d + grams + 3)·u·Σ‖x‖², u = 2⁻⁵³.
void set_rounding(type_spectrum& spectrum, gram_rounding accumulated, double raw_energy, std::uint64_t d,
                  std::size_t grams) {
    const double float64_steps = static_cast<double>(d + grams + 3) * 0x1.0p-53 * raw_energy;
    spectrum.rounding_bound = accumulated.bound + float64_steps;
    spectrum.rounding_estimate = accumulated.estimate + float64_steps;
}

bool streams_here(const analysis_options& options, std::size_t matrix) { return !options.reads || options.reads(matrix); }
bool projects_here(const analysis_options& options, std::size_t matrix) {
    return options.projects ? options.projects(matrix) : streams_here(options, matrix);
}

// The matrices of [first, last) this process reads, into `gram`. Each block's
// float32 sums reach float64 at the block's end (gram.hpp) and no block spans
// two matrices, so the parts of a partition differ from the whole run only in
// float64 summation order.
void stream_share(const std::vector<weight_matrix>& matrices, std::size_t first, std::size_t last,
                  const analysis_options& options, block_buffers& buffers, progress_meter& meter,
                  gram_accumulator& gram) {
    for (std::size_t m = first; m < last; ++m) {
        if (!streams_here(options, m)) continue;
        stream_matrix<true>(matrices[m], options.block_vectors, buffers, meter,
                            [&](const auto* block, std::size_t count) { gram.add(block, count); });
    }
}

// A matrix with fewer vectors than dimensions, all in one block: its
// spectrum comes from the small XᵀX (N×N), N eigenvalues rather than d.
bool decomposed_short(const weight_matrix& matrix, std::uint64_t d, const analysis_options& options) {
    return matrix.vector_count() < d && matrix.vector_count() <= options.block_vectors;
}

// One matrix's vectors into `gram` (reset first). A short one
// (decomposed_short) is decomposed through its XᵀX as it streams: the d×d
// Gram's nonzero eigenvalues at (N/d)³ the cost, into `own`. Returns whether
// it was.
bool stream_own_gram(const weight_matrix& matrix, std::uint64_t d, const analysis_options& options,
                     block_buffers& buffers, progress_meter& meter, gram_accumulator& gram, arma::vec& own) {
    const bool short_side = decomposed_short(matrix, d, options);
    gram.reset();
    stream_matrix<true>(matrix, options.block_vectors, buffers, meter, [&](const auto* block, std::size_t count) {
        gram.add(block, count);
        if (short_side) own = eigenvalues_descending(vector_products(block, d, count));
    });
    return short_side;
}

// An F64 file's Gram holds float64 products: float32 would lose precision it has.
bool float32_solve(const weight_matrix& matrix, const analysis_options& options) {
    return options.matrix_precision == eig_precision::float32 && matrix.type != dtype::f64;
}

arma::vec own_eigenvalues(arma::mat own_gram, bool single) {
    return single ? eigenvalues_descending(arma::conv_to<arma::fmat>::from(own_gram)) : eigenvalues_descending(std::move(own_gram));
}

// A partitioned per-matrix run: each matrix of [first, last) read here is
// accumulated on its own, decomposed now on this thread, and added to the
// type's `gram` (two d×d accumulators and a float32 copy for the solve,
// planned_bytes counts them). Only its float64 addition order differs from
// stream_share's.
void stream_share_spectra(const std::vector<weight_matrix>& matrices, std::size_t first, std::size_t last,
                          const analysis_options& options, block_buffers& buffers, progress_meter& meter,
                          gram_accumulator& gram, std::vector<arma::vec>& matrix_values) {
    gram_accumulator own(gram.dim(), gram.tracks_sum());
    if (options.kernel) own.use_kernel(*options.kernel);
    for (std::size_t m = first; m < last; ++m) {
        if (!streams_here(options, m)) continue;
        const bool short_side = stream_own_gram(matrices[m], gram.dim(), options, buffers, meter, own, matrix_values[m]);
        gram += own;
        if (!short_side) matrix_values[m] = own_eigenvalues(own.take(false), float32_solve(matrices[m], options));
    }
}

// Weight bytes this process streams in one pass.
std::uint64_t share_bytes(const std::vector<weight_matrix>& matrices, const analysis_options& options) {
    std::uint64_t total = 0;
    for (std::size_t m = 0; m < matrices.size(); ++m)
        if (streams_here(options, m)) total += matrices[m].vector_bytes();
    return total;
}

void check_arguments(const std::vector<weight_matrix>& matrices, std::uint64_t d) {
    if (d == 0) throw std::invalid_argument("analyse: hidden size is 0");
    if (matrices.empty()) throw std::invalid_argument("analyse: no matrices to analyse");
}

// The accumulator's buffers: its float64 Gram and float32 panel.
std::uint64_t accumulator_bytes(std::uint64_t d) { return 8 * d * d + 4 * std::min<std::uint64_t>(gram_panel_rows, d) * d; }

// A d×d matrix of Real in a solver's region of the lent room (a view: nothing
// allocated), or in memory of its own when the job got no region.
template <class Real>
arma::Mat<Real> square_in(std::span<std::byte> region, std::size_t d) {
    if (region.size() < sizeof(Real) * d * d) return arma::Mat<Real>(d, d);
    return arma::Mat<Real>(reinterpret_cast<Real*>(region.data()), d, d, false, false);
}

// The d×d float64 matrix at the start of `room` rounded to float32 in place,
// column-major from the same start. Column j ≥ 1 lands on float64 columns
// before j, already converted; column 0, which it overlaps, goes through a copy.
void narrow_in_place(std::span<std::byte> room, std::size_t d) {
    const auto* wide = reinterpret_cast<const double*>(room.data());
    auto* narrow = reinterpret_cast<float*>(room.data());
    const std::vector<double> first_column(wide, wide + d);
    for (std::size_t j = 0; j < d; ++j) {
        const double* column = j == 0 ? first_column.data() : wide + j * d;
        std::transform(column, column + d, narrow + j * d, [](double x) { return static_cast<float>(x); });
    }
}

// The Gram parked in `slot`, read into `region` (square_in): rounded to
// float32 chunk by chunk for a float32 solve, so no solve holds a float64 Gram
// beside its float32 copy.
template <class Real>
arma::Mat<Real> parked_gram(const detail::spill_file& spill, std::size_t slot, std::size_t d, std::span<std::byte> region) {
    arma::Mat<Real> gram = square_in<Real>(region, d);
    if constexpr (std::is_same_v<Real, float>)
        spill.read_float(slot, gram.memptr());
    else
        spill.read(slot, gram.memptr());
    return gram;
}

// Phase 1, one streaming pass: each type's Gram, parked in `spill`, reduced to
// its eigenvalues; with per-matrix statistics also each matrix's own spectrum
// and the type's top-k basis. The d×d accumulators and block buffers live
// only here, so the later phases run in what they free. Per-matrix mode keeps
// the type's running Gram in its spill slot rather than in RAM (a 32 MiB read
// and write per matrix, from the page cache), so it too holds one d×d float64
// accumulator at a time. Its solves wait in the spill too (a parking slot per
// solver thread but one) and run side by side once every solver thread has
// one, in the accumulator's own buffer, lent to them between matrices (two
// float32 solves fit, or one float64), the last matrix's where it lies: the
// streaming keeps all BLAS threads, the solves one core each, and the peak
// stays the streaming's.
void accumulate_types(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options,
                      progress_meter& meter, detail::spill_file& spill, analysis_result& result,
                      std::vector<std::optional<std::size_t>>& slots, std::vector<arma::mat>& type_bases) {
    auto new_accumulator = [&] {
        gram_accumulator gram(d, options.center);
        if (options.kernel) gram.use_kernel(*options.kernel);
        return gram;
    };
    gram_accumulator gram = new_accumulator();
    block_buffers buffers;
    const auto runs = type_runs(matrices);
    // Filled by the solvers; moved into `result` once all are done.
    std::vector<arma::vec> type_values(runs.size());
    std::vector<double> type_traces(runs.size());
    std::vector<arma::vec> matrix_values(options.per_matrix ? matrices.size() : 0);
    type_bases.assign(options.per_matrix ? runs.size() : 0, arma::mat());
    const std::uint64_t gram_bytes = 8 * d * d;
    detail::eigen_pool solvers(options.per_matrix ? options.solver_threads : 0, [&gram] { return gram.lend(); });
    std::vector<std::size_t> parking;  // spill slots of the matrix Grams queued for the solvers
    std::size_t parked = 0;
    // The types' float64 solves wait for the next run and go last in it: each
    // fills the whole room, so it runs alone, and queued before a matrix's
    // solve it would keep that solve from running beside the one before.
    std::vector<detail::eigen_pool::job> type_solves;
    auto submit_type_solves = [&] {
        for (auto& solve : type_solves) solvers.submit(gram_bytes, alignof(double), std::move(solve));
        type_solves.clear();
    };
    auto solve_queued = [&] {
        submit_type_solves();
        solvers.run();
        parked = 0;
    };
    for (const auto [first, last] : runs) {
        type_spectrum spectrum;
        spectrum.type = matrices[first].kind.type;
        spectrum.matrices = last - first;
        std::optional<std::size_t> slot;
        arma::vec type_sum(d, arma::fill::zeros);  // per-matrix mode with --center
        gram_rounding rounding;                      // per-matrix mode: summed over the matrices
        double raw_energy = 0;
        gram.reset();
        for (std::size_t m = first; m < last; ++m) {
            const weight_matrix& matrix = matrices[m];
            spectrum.vectors += matrix.vector_count();
            spectrum.parameters += matrix.rows * matrix.cols;
            if (!options.per_matrix) continue;
            // r2 NaN until projected (here or where the matrix was read).
            result.matrices.push_back({matrix.name, matrix.kind, matrix.rows, matrix.cols, {}, arma::datum::nan, arma::datum::nan});
            if (options.reads) continue;  // a partitioned run: decomposed where it is read (stream_share_spectra)
            arma::vec& own = matrix_values[m];  // the matrix's own Gram eigenvalues
            const bool short_side = stream_own_gram(matrix, d, options, buffers, meter, gram, own);
            if (options.center) type_sum += gram.sum();
            const gram_rounding own_rounding = gram.rounding();
            rounding.bound += own_rounding.bound;
            rounding.estimate += own_rounding.estimate;
            raw_energy += gram.trace();
            // Its upper triangle is what the solves read and what the type's
            // slot sums; the slot is mirrored once, at the type's end.
            const arma::mat& own_gram = gram.upper();
            if (slot)
                spill.add(*slot, own_gram);
            else
                slot = spill.write(own_gram);
            if (short_side) continue;
            const bool single = float32_solve(matrix, options);
            const std::uint64_t bytes = (single ? sizeof(float) : sizeof(double)) * d * d;
            if (parked + 1 >= solvers.workers()) {
                // The last matrix before the solves (every one without solver
                // threads) is solved where it lies, at the start of the room
                // they are lent, rounded to float32 there for a float32 solve:
                // neither parked nor read back.
                const std::span<std::byte> room = gram.lend();
                if (single) narrow_in_place(room, d);
                solvers.submit_first(bytes, [&own, single, d](std::span<std::byte> region) {
                    own = single ? eigenvalues_descending(square_in<float>(region, d))
                                 : eigenvalues_descending(square_in<double>(region, d));
                });
                solve_queued();
                continue;
            }
            // Parked in the spill and read back into a solver's region.
            if (parked == parking.size())
                parking.push_back(spill.write(own_gram));
            else
                spill.overwrite(parking[parked], own_gram);
            solvers.submit(bytes, single ? alignof(float) : alignof(double),
                           [&own, &spill, at = parking[parked], single, d](std::span<std::byte> region) {
                               own = single ? eigenvalues_descending(parked_gram<float>(spill, at, d, region))
                                            : eigenvalues_descending(parked_gram<double>(spill, at, d, region));
                           });
            ++parked;
        }
        arma::mat type_gram;
        if (!options.per_matrix || options.reads) {
            if (options.per_matrix)
                stream_share_spectra(matrices, first, last, options, buffers, meter, gram, matrix_values);
            else
                stream_share(matrices, first, last, options, buffers, meter, gram);
            if (options.combine) options.combine(result.types.size(), gram);
            if (options.owners.owns && !options.owners.owns(result.types.size())) {
                // Decomposed on the process its Gram was combined on; gathered later.
                slots.push_back(std::nullopt);
                result.types.push_back(std::move(spectrum));
                continue;
            }
            rounding = gram.rounding();
            raw_energy = gram.trace();
            type_gram = gram.take(options.center);
            slot = spill.write(type_gram);
        } else {
            type_gram = parked_gram<double>(spill, *slot, d, gram.lend());  // the matrices' Grams are all in the spill
            mirror_upper(type_gram);
            if (options.center && spectrum.vectors > 0) center_gram(type_gram, type_sum, spectrum.vectors);
            spill.overwrite(*slot, type_gram);
        }
        slots.push_back(*slot);
        const std::size_t t = result.types.size();
        type_traces[t] = arma::trace(type_gram);
        if (solvers.workers() > 0) type_gram.reset();  // read back from the spill when solved
        // With per-matrix statistics the same reduction gives the type's top-k basis too.
        type_solves.push_back([&, t, at = *slot, c = std::move(type_gram)](std::span<std::byte> region) mutable {
            arma::mat gram_of_type = c.is_empty() ? parked_gram<double>(spill, at, d, region) : std::move(c);
            if (!options.per_matrix) {
                type_values[t] = eigenvalues_descending(std::move(gram_of_type));
                return;
            }
            spectrum_with_basis both = spectrum_and_top_vectors(std::move(gram_of_type), result.k);
            type_values[t] = std::move(both.values);
            type_bases[t] = std::move(both.vectors);
        });
        if (solvers.workers() == 0) submit_type_solves();
        set_rounding(spectrum, rounding, raw_energy, d, spectrum.matrices);
        result.types.push_back(std::move(spectrum));
    }
    solve_queued();
    for (std::size_t t = 0; t < type_values.size(); ++t) {
        if (!slots[t]) continue;  // another rank's type: its spectrum is gathered later
        result.types[t].eigenvalues = std::move(type_values[t]);
        result.types[t].energy = spectrum_energy(type_traces[t], result.types[t].eigenvalues);
    }
    for (std::size_t m = 0; m < matrix_values.size(); ++m)
        result.matrices[m].eigenvalues =
            options.matrix_eigenvalues && !streams_here(options, m) ? options.matrix_eigenvalues(m) : std::move(matrix_values[m]);
}

// Phase 2: C_u = Σ_t w_t C_t rebuilt chunk by chunk from the spill, its top
// eigenpairs, and each type's energy captured by them. Over several processes
// each adds the types it owns, the shares meet on one process, which finds the
// eigenpairs and shares them; each process then computes its types' capture
// and the spectra are gathered where C_u was built.
eigenpairs universal_basis(const detail::spill_file& spill, const std::vector<std::optional<std::size_t>>& slots,
                           const analysis_options& options, analysis_result& result) {
    const std::size_t d = result.dim;
    arma::mat universal(d, d, arma::fill::zeros);
    {
        arma::mat chunk(d, spill_chunk_columns);
        for (std::size_t t = 0; t < slots.size(); ++t) {
            if (!slots[t]) continue;
            const double energy = result.types[t].energy;
            const double weight = options.trace_weighting ? (energy > 0 ? 1.0 / energy : 0.0) : 1.0;
            for (std::size_t col = 0; col < d; col += spill_chunk_columns) {
                const std::size_t count = std::min<std::size_t>(spill_chunk_columns, d - col);
                spill.read_columns(*slots[t], col, count, chunk.memptr());
                universal.cols(col, col + count - 1) += weight * chunk.head_cols(count);
            }
        }
    }
    eigenpairs top;
    if (!options.owners.meet || options.owners.meet(universal)) top = top_eigenpairs(std::move(universal), result.universal_k);
    universal.reset();
    if (options.owners.share_basis) options.owners.share_basis(top);
    result.universal_eigenvalues = top.values;
    for (std::size_t t = 0; t < slots.size(); ++t) {
        if (!slots[t]) continue;
        result.types[t].universal_capture =
            captured_energy(spill, *slots[t], top.vectors) / result.types[t].energy;  // NaN for an all-zero type
    }
    if (options.owners.gather) options.owners.gather(result.types);
    return top;
}

// Phase 3, a second streaming pass: the energy of each matrix inside its
// type's and the universal top-k bases. The matrices are independent, so with
// solver threads they are projected side by side, a matrix per thread on
// single-threaded BLAS: the pass is mostly reading and decoding, which one
// thread did alone while the other BLAS threads waited.
void project_matrices(const std::vector<weight_matrix>& matrices, const analysis_options& options,
                      progress_meter& meter, const std::vector<arma::mat>& type_bases, const arma::mat& universal,
                      analysis_result& result) {
    std::vector<std::pair<std::size_t, std::size_t>> work;  // (type, matrix)
    const auto runs = type_runs(matrices);
    for (std::size_t t = 0; t < runs.size(); ++t)
        for (std::size_t m = runs[t].first; m < runs[t].last; ++m)
            if (projects_here(options, m)) work.emplace_back(t, m);  // the rest, where they are read: gathered below
    std::atomic<std::size_t> next = 0;
    auto project = [&](std::size_t) {
        try {
            block_buffers buffers;
            for (std::size_t i; (i = next++) < work.size();) {
                const auto [t, m] = work[i];
                projected_energy energy(type_bases[t], universal);
                stream_matrix(matrices[m], options.block_vectors, buffers, meter,
                              [&](const auto* block, std::size_t count) { energy.add(block, result.dim, count); });
                result.matrices[m].r2_type = energy.type_fraction();
                result.matrices[m].r2_universal = energy.universal_fraction();
            }
        } catch (...) {
            next = work.size();  // the others take no new matrix
            throw;               // rethrown by run() once they have finished
        }
    };
    const std::size_t threads =
        options.solver_threads > 1 ? std::clamp<std::size_t>(work.size(), 1, options.solver_threads) : 1;
    std::optional<detail::single_threaded_blas> one_thread;
    if (threads > 1) one_thread.emplace();
    detail::part_runner(threads).run(threads, project);
    if (options.owners.gather_matrices) options.owners.gather_matrices(result.matrices);
}

// The randomized method: one randomized_eigen over all types, each of its
// passes streaming every matrix once with its blocks routed to their type.
void analyse_randomized(const std::vector<weight_matrix>& matrices, const analysis_options& options,
                        progress_meter& meter, analysis_result& result) {
    std::vector<std::size_t> group_of_matrix;
    for (const auto [first, last] : type_runs(matrices)) {
        type_spectrum spectrum;
        spectrum.type = matrices[first].kind.type;
        spectrum.matrices = last - first;
        for (std::size_t m = first; m < last; ++m) {
            spectrum.vectors += matrices[m].vector_count();
            spectrum.parameters += matrices[m].rows * matrices[m].cols;
            group_of_matrix.push_back(result.types.size());
        }
        result.types.push_back(std::move(spectrum));
    }
    rsvd_options settings = options.randomized;
    settings.k = result.k;
    settings.trace_weighting = options.trace_weighting;
    block_buffers buffers;
    const std::size_t block_size = stream_block_vectors(options, result.dim);
    // Reading and decoding the blocks took a fifth of the CPU at d = 4096, on
    // one thread while the GEMMs' other thread waited: as many threads as the
    // GEMMs take share each block (BENCHMARKS, "rsvd at d = 4096: blocks read in shares").
    detail::part_runner readers(static_cast<std::size_t>(std::max(detail::blas_threads(), 1)));
    auto run_pass = [&](block_visitor& visit) {
        for (std::size_t m = 0; m < matrices.size(); ++m) {
            if (!streams_here(options, m)) continue;
            stream_matrix(
                matrices[m], block_size, buffers, meter,
                [&](const auto* block, std::size_t count) { visit(group_of_matrix[m], block, count); }, &readers);
            visit.end_run();  // float32 runs end with the matrix: the same sums however the matrices are split
        }
    };
    const rsvd_result eigen =
        randomized_eigen(result.dim, result.types.size(), {}, settings, run_pass, options.combine_sketches);
    for (std::size_t t = 0; t < result.types.size(); ++t) {
        type_spectrum& spectrum = result.types[t];
        const rsvd_group_result& group = eigen.groups[t];
        spectrum.energy = spectrum_energy(group.trace, group.values);
        spectrum.eigenvalues = group.values;
        spectrum.eigenvalue_errors = group.value_errors;
        spectrum.eigenvalue_changes = group.value_changes;
        // randomized_eigen returns cumulative captures of the trace; the result
        // holds them per vector, as fractions of the energy.
        const arma::vec cumulative = eigen.universal_capture[t] * (group.trace / spectrum.energy);
        spectrum.universal_capture = cumulative - arma::join_cols(arma::vec{0.0}, cumulative.head(cumulative.n_elem - 1));
    }
    result.universal_eigenvalues = eigen.universal.values;
    result.passes = eigen.passes;
    result.sketch_size = eigen.sketch_size;
    result.universal_error = eigen.universal.error_estimate;
    result.universal_capture_change = eigen.universal_capture_change;
}

}  // namespace

std::string_view method_name(method m) noexcept { return m == method::exact ? "exact" : "rsvd"; }

std::string_view eig_precision_name(eig_precision p) noexcept {
    return p == eig_precision::float32 ? "single" : "double";
}

bool has_full_spectrum(const type_spectrum& t, std::uint64_t dim) noexcept {
    return t.eigenvalue_errors.n_elem == 0 && t.eigenvalues.n_elem == dim;
}

std::uint64_t planned_bytes(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options) {
    // Measured: the program and OpenBLAS's buffers, stories260K profile: 7.3 MiB
    // peak RSS; the 1.1B profile (d = 2048) peaked 1.7 MiB above a plan with 8,
    // and 0.2 MiB above one with 10 once rows were read rather than mapped.
    const std::uint64_t runtime = (21ull << 19) + options.transport_bytes;
    constexpr std::uint64_t fault_around = 128ull << 10;  // pages the kernel maps around a fault
    const std::uint64_t b = stream_block_vectors(options, d);
    // Bytes read from the file in flight (nothing is mapped): decoded rows
    // go through a staging buffer (row_staging_bytes, or one row when
    // longer); a column block is read by row segments into a tile of 16 × b
    // values. rsvd reads each block in shares, one per BLAS thread, each
    // with a tile and a share of the staging (analyse_randomized).
    const std::uint64_t types = type_runs(matrices).size();
    const std::uint64_t readers =
        options.how == method::rsvd ? static_cast<std::uint64_t>(std::max(detail::blas_threads(), 1)) : 1;
    std::uint64_t in_flight = 0;
    bool any_f64 = false, any_bf16 = false, any_float = false;
    for (const weight_matrix& matrix : matrices) {
        const std::uint64_t row_bytes = storage_bytes(matrix.type, matrix.stored_cols()).value_or(0);
        in_flight = std::max(in_flight, matrix.vectors_are_rows
                                            ? std::max<std::uint64_t>(row_staging_bytes, readers * row_bytes)
                                            : readers * 16 * b * 8);
        any_f64 = any_f64 || matrix.type == dtype::f64;
        any_bf16 = any_bf16 || matrix.type == dtype::bf16;
        any_float = any_float || (matrix.type != dtype::f64 && matrix.type != dtype::bf16);
    }
    const std::uint64_t common = runtime + in_flight + fault_around;
    if (options.how == method::exact) {
        // Phase 1: the float64 accumulator, its float32 panel, the block
        // buffers (BF16 blocks as stored plus the kernel's packed copy, or
        // plus their float32 decode for the fp32 kernel; with per-matrix
        // statistics also a float32 block for the projection pass, which
        // accumulate_grams has not). Per-matrix solves run in the
        // accumulator's float64 buffer, their small buffers in its panel,
        // which it frees while lending (gram_accumulator::lend).
        const bool bf16_kernel = options.kernel.value_or(active_gram_kernel()) != gram_kernel::fp32;
        const bool projection_block = options.per_matrix && !options.hands_out_states;
        const std::uint64_t block_element_bytes = (any_f64 ? 8 : 0) + (any_float || projection_block ? 4 : 0) +
                                                  (any_bf16 ? (bf16_kernel ? 4 : 6) : 0);
        // OpenBLAS's packing buffers: 1.5 MiB per thread that ran BLAS, kept
        // to the end (1.1B profile on the fp32 kernel: 62.0 MiB peak with one
        // thread, 63.4 with two). The streaming touches them with ssyrk/dsyrk
        // blocks (anything but BF16 on a BF16 kernel), the per-matrix solves
        // on each solving thread, phase 2's eigensolver once (its reduction
        // is mostly matrix-vector work: the 1.1B profile at --max-memory 48M
        // peaked below a plan without it).
        constexpr std::uint64_t blas_buffer = 3ull << 19;
        const std::uint64_t blas_threads = static_cast<std::uint64_t>(std::max(detail::blas_threads(), 1));
        const bool blas_blocks = any_f64 || any_float || (any_bf16 && !bf16_kernel);
        const std::uint64_t solver_buffers =
            options.per_matrix ? blas_buffer * std::max<std::uint64_t>(options.solver_threads, 1) : 0;
        // Beside the type's accumulator, 12·d² B when Grams are combined: a
        // received packed state (4·d²) and the accumulator unpacked from it
        // (8·d², rank_group::combine, state_set::add_to); a partitioned
        // per-matrix run holds as much solving a matrix (stream_share_spectra:
        // its float64 Gram and the float32 copy ssyevd takes). Measured on a
        // 1-layer 1.1B-shaped checkpoint over 2 ranks: profile 108.1 MiB peak
        // against a plan of 61.6 without this term, layers 112.0 against 105.4
        // with a second accumulator in its place.
        // accumulate_grams copies each type's Gram out as a packed state (4·d²)
        // once the matrices' solves are done.
        const std::uint64_t beside = std::max(options.combine || (options.per_matrix && options.reads) ? 12 * d * d : 0,
                                              options.hands_out_states ? 4 * d * d : 0);
        // Blocks only where phase 1 streams: a merge of state files reads no
        // matrix (1-layer 1.1B-shaped merge: 94.0 MiB peak against a plan of
        // 110.6 that counted them).
        bool streams = !options.reads;
        for (std::size_t m = 0; m < matrices.size() && !streams; ++m) streams = options.reads(m);
        const std::uint64_t blocks = d * b * block_element_bytes;
        // Each type's eigenvalues (dsyevd, no vectors) are solved in phase 1
        // on the Gram the accumulator hands over, beside the block buffers:
        // LAPACK's workspace (2 + nb)·d doubles (nb = 32, DSYTRD's block),
        // the values twice, and the nb×d panel OpenBLAS packs for dsytrd's
        // rank-2k updates. Without it the plan was 0.7 MiB below the peak at
        // d = 4096 and 3.0 at 8192 (BENCHMARKS, "rsvd at d = 16384 under 256 MiB").
        constexpr std::uint64_t tridiagonal_block = 32;
        const std::uint64_t type_solve = options.hands_out_states ? 0 : 8 * d * (2 * tridiagonal_block + 4);
        const std::uint64_t accumulate = accumulator_bytes(d) + beside +
                                         (streams ? blocks + (blas_blocks ? blas_buffer * blas_threads : 0) : 0) +
                                         solver_buffers + type_solve;
        if (options.hands_out_states) return common + accumulate;
        // Phase 2: C_u, a spill chunk, the universal eigenvectors and dsyevr's
        // work; with per-matrix statistics also what phase 1 leaves for the
        // projection pass: the type bases (d×k each) and every matrix's
        // eigenvalues. report on the 1.1B checkpoint (K up to 1024) peaked
        // 6.5 MiB above a plan without these and the buffers.
        std::uint64_t kept = solver_buffers;
        if (options.per_matrix) {
            kept += types * 8 * d * std::min<std::uint64_t>(options.k, d);
            for (const weight_matrix& matrix : matrices) kept += 8 * std::min(d, matrix.vector_count());
        }
        // Over ranks the owners' shares of C_u meet on rank 0: one received beside it.
        const std::uint64_t shares = options.owners.meet ? 2 : 1;
        const std::uint64_t universal = shares * 8 * d * d + 8 * d * spill_chunk_columns +
                                        8 * d * std::min<std::uint64_t>(options.universal_k, d) + 8 * 26 * d +
                                        blas_buffer + kept;
        // Phase 3, the projection pass: beside what phase 1 kept and the
        // universal basis, each projecting thread's decoded block (float64 for
        // F64 files, else float32), staged rows and float32 copies of the two
        // bases, and a BLAS buffer for each thread it starts.
        const std::uint64_t projecting = std::max<std::uint64_t>(options.solver_threads, 1);
        const std::uint64_t projecting_thread = d * b * ((any_f64 ? 8 : 0) + (any_float || any_bf16 ? 4 : 0)) +
                                                row_staging_bytes + 2 * 4 * d * std::min<std::uint64_t>(options.k, d);
        const std::uint64_t projection =
            options.per_matrix ? projecting * projecting_thread + (projecting - 1) * blas_buffer + kept +
                                     8 * d * std::min<std::uint64_t>(options.universal_k, d)
                               : 0;
        return common + std::max({accumulate, universal, projection});
    }
    // randomized_eigen (rsvd.hpp), at its peak, the last pass: per Gram (each
    // type's and C_u) its Krylov basis and probes, d×(m + r) in float32
    // (float64 once a block is: any F64 tensor), the float64 product
    // d×(ℓ + r), the Ritz matrix and capture (m×m float64 each), and the
    // stream's block per block precision; then the larger of two phases,
    // since the pass's buffers go before the bases grow (randomized_eigen):
    // in the pass its basis [Q_g | probes | Q_u | probes] and pending sum
    // (d×2(ℓ + r)) and its Xᵀ·B (b×2(ℓ + r)) per block precision (the BLAS
    // threads share them, each taking a part of every GEMM), a flush's
    // float64 images of Q_u (d×ℓ) and their projection's row chunk (512×m);
    // between passes extend_basis's float64 d×ℓ blocks and one basis being
    // grown. Measured against peak RSS at d = 2048 and 16384: BENCHMARKS,
    // "rsvd at d = 16384 under 256 MiB".
    const std::uint64_t block_element_bytes = (any_f64 ? 8 : 0) + (any_float || any_bf16 ? 4 : 0);
    const std::uint64_t basis_element_bytes = any_f64 ? 8 : 4;
    const std::uint64_t k = std::min<std::uint64_t>(options.k, d);
    const std::uint64_t ell = std::min<std::uint64_t>(k + options.randomized.oversample, d);
    const std::uint64_t r = options.randomized.error_probes;
    const std::uint64_t m = std::min<std::uint64_t>((options.randomized.power_iterations + 2) * ell, d);
    const std::uint64_t per_gram = basis_element_bytes * d * (m + r) + 8 * d * (ell + r) + 16 * m * m;
    const std::uint64_t pass_width = 2 * (ell + r);
    const std::uint64_t blocks = block_element_bytes * d * b;
    const std::uint64_t pass = block_element_bytes * (2 * d + b) * pass_width + 8 * d * ell + 8 * 512 * m;
    const std::uint64_t between_passes = 3 * 8 * d * ell + basis_element_bytes * d * m;
    // C_u's extra passes (planned as taken): its basis grows to m_u columns,
    // its Ritz matrix and capture to m_u×m_u, and the Ritz solves that judge
    // and finish it hold m_u×m_u float64 pairs. Measured, 1.1B BF16 profile:
    // peak RSS 53.3 MiB, 1.0 MiB above the plan without this term.
    const std::uint64_t m_u =
        std::min<std::uint64_t>((options.randomized.power_iterations + 2 + options.randomized.universal_extra_passes) * ell, d);
    const std::uint64_t universal_growth =
        m_u > m ? basis_element_bytes * d * (m_u - m) + 16 * (m_u * m_u - m * m) + 16 * m_u * m_u : 0;
    // Measured, 1.1B BF16 profile with blocks of 128: peak RSS 0.35 MiB above
    // this sum; 1 MiB more of runtime than the exact path (not yet traced).
    constexpr std::uint64_t randomized_runtime = 1ull << 20;
    // Over MPI ranks each partial sum is received into a buffer of its size
    // (ranks.hpp): at most one product, d×(ℓ + r) float64, at a time.
    const std::uint64_t combine_buffer = options.combine_sketches ? 8 * d * (ell + r) : 0;
    return common + randomized_runtime + (types + 1) * per_gram + blocks + std::max(pass, between_passes) +
           universal_growth + combine_buffer;
}

// Exact: V·d²/2 Gram multiply-adds and (types + 1) eigensolvers of c·d³; rsvd, V·2d·(ℓ(2q + 3 + e) + 2r) multiply-adds (V vectors
// per pass, e the universal's extra passes, planned as taken). Rates measured (CPU s, user + sys, 2 threads) on the llama-3-8b
// preset with 1 layer (d = 4096, V = 309760): exact 122.9 s, of which the ten
// dsyevd-class solves take ≈ 52 s (0.65 s each at d = 2048, BENCHMARKS
// "Per-matrix spectra"), so the Gram runs at ≈ 3.7e10 multiply-adds per CPU
// second; rsvd (k 32, defaults) 8.5e11 multiply-adds in ≈ 30 s, reads and
// dense algebra included. For comparing the methods, not a wall-time promise.
double planned_seconds(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options) {
    constexpr double gram_rate = 3.7e10, randomized_rate = 2.8e10;
    constexpr double eigensolver_seconds_per_d3 = 0.65 / (2048.0 * 2048.0 * 2048.0);
    double vectors = 0;
    for (const weight_matrix& matrix : matrices) vectors += static_cast<double>(matrix.vector_count());
    const double types = static_cast<double>(type_runs(matrices).size());
    const double dim = static_cast<double>(d);
    if (options.how == method::exact)
        return vectors * dim * dim / 2 / gram_rate + (types + 1) * eigensolver_seconds_per_d3 * dim * dim * dim;
    const double k = static_cast<double>(std::min<std::uint64_t>(options.k, d));
    const double ell = std::min(k + static_cast<double>(options.randomized.oversample), dim);
    const double q = static_cast<double>(options.randomized.power_iterations);
    const double extra = static_cast<double>(options.randomized.universal_extra_passes);
    const double columns = ell * (2 * q + 3 + extra) + 2 * static_cast<double>(options.randomized.error_probes);
    return vectors * 2 * dim * columns / randomized_rate;
}

std::uint64_t spill_bytes(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options) {
    if (options.how != method::exact) return 0;
    // Per matrix also a parking slot per solver thread but one: the last
    // matrix before the solves is solved in place (accumulate_types).
    const std::size_t parking = options.per_matrix ? std::max<std::size_t>(options.solver_threads, 1) - 1 : 0;
    return (type_runs(matrices).size() + parking) * d * d * sizeof(double);
}

std::filesystem::path spill_directory(const analysis_options& options) {
    return detail::spill_file::where(options.spill_directory);
}

namespace {

// For each matrix of `a`, its namesake in `b`: same shape (so the same hidden
// axis), and no matrix of `b` left without a partner.
std::vector<const weight_matrix*> namesakes(const std::vector<weight_matrix>& a, const std::string& model_a,
                                            const std::vector<weight_matrix>& b, const std::string& model_b) {
    std::map<std::string, const weight_matrix*> by_name;
    for (const auto& matrix : b) by_name.emplace(matrix.name, &matrix);
    std::vector<const weight_matrix*> partners;
    for (const auto& matrix : a) {
        const auto found = by_name.find(matrix.name);
        if (found == by_name.end())
            throw format_error(model_b, matrix.name,
                               "is not among its analysed matrices, but " + model_a +
                                   " has it (compare needs the same tensor names; a tensor left out has a note above)");
        const weight_matrix& partner = *found->second;
        if (partner.rows != matrix.rows || partner.cols != matrix.cols)
            throw format_error(model_b, matrix.name,
                               "shape " + shape_string({partner.rows, partner.cols}) + " differs from " +
                                   shape_string({matrix.rows, matrix.cols}) + " in " + model_a);
        partners.push_back(&partner);
        by_name.erase(found);
    }
    if (!by_name.empty())
        throw format_error(model_a, by_name.begin()->first,
                           "is not among its analysed matrices, but " + model_b +
                               " has it (compare needs the same tensor names; a tensor left out has a note above)");
    return partners;
}

}  // namespace

// Σ‖a‖² and Σ‖a − b‖² in float64 over paired blocks: 3·d multiply-adds per vector.
std::vector<type_difference> difference_energies(const std::vector<weight_matrix>& a, const std::string& model_a,
                                                 const std::vector<weight_matrix>& b, const std::string& model_b,
                                                 const analysis_options& options) {
    const auto partners = namesakes(a, model_a, b, model_b);
    std::uint64_t total_bytes = 0;
    for (std::size_t m = 0; m < a.size(); ++m)
        if (streams_here(options, m)) total_bytes += a[m].vector_bytes() + partners[m]->vector_bytes();
    progress_meter meter(options, total_bytes);
    std::vector<type_difference> differences;
    arma::mat block_a, block_b;
    for (const auto [first, last] : type_runs(a)) {
        type_difference difference{a[first].kind.type, last - first, 0, 0};
        for (std::size_t m = first; m < last; ++m) {
            if (!streams_here(options, m)) continue;  // another process's pair
            vector_stream<double> stream_a(a[m], options.block_vectors), stream_b(*partners[m], options.block_vectors);
            block_a.set_size(stream_a.dim(), options.block_vectors);
            block_b.set_size(stream_b.dim(), options.block_vectors);
            for (std::size_t count; (count = stream_a.next(block_a.memptr())) != 0;) {
                stream_b.next(block_b.memptr());  // the same shape: the same count
                const std::size_t values = count * stream_a.dim();
                for (std::size_t i = 0; i < values; ++i) {
                    const double change = block_a[i] - block_b[i];
                    difference.energy_a += block_a[i] * block_a[i];
                    difference.difference_energy += change * change;
                }
            }
            meter.advance(a[m].vector_bytes() + partners[m]->vector_bytes());
        }
        differences.push_back(difference);
    }
    return differences;
}

void accumulate_grams(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options,
                      const std::function<void(std::size_t type_index, gram_accumulator& gram)>& sink,
                      const std::function<void(std::size_t matrix_index, const arma::vec& eigenvalues)>& matrix_sink) {
    check_arguments(matrices, d);
    progress_meter meter(options, share_bytes(matrices, options));
    gram_accumulator gram(d, options.center);
    block_buffers buffers;
    std::vector<arma::vec> matrix_values(options.per_matrix ? matrices.size() : 0);
    const auto runs = type_runs(matrices);
    for (std::size_t t = 0; t < runs.size(); ++t) {
        gram.reset();
        if (!options.per_matrix) {
            stream_share(matrices, runs[t].first, runs[t].last, options, buffers, meter, gram);
        } else {
            stream_share_spectra(matrices, runs[t].first, runs[t].last, options, buffers, meter, gram, matrix_values);
            for (std::size_t m = runs[t].first; m < runs[t].last; ++m)
                if (streams_here(options, m)) matrix_sink(m, std::exchange(matrix_values[m], {}));
        }
        sink(t, gram);
    }
}

std::uint64_t own_eigenvalue_count(const weight_matrix& matrix, std::uint64_t d, const analysis_options& options) {
    return decomposed_short(matrix, d, options) ? matrix.vector_count() : d;
}

analysis_result analyse(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options) {
    check_arguments(matrices, d);
    if ((options.reads || options.combine || options.owners.owns) && options.per_matrix &&
        !(options.reads && ((options.owners.share_type_basis && options.owners.gather_matrices) || options.matrix_eigenvalues)))
        throw std::invalid_argument("analyse: a partitioned run with per-matrix statistics needs share_type_basis and "
                                    "gather_matrices, or matrix_eigenvalues");
    if (options.how == method::rsvd &&
        (options.combine || options.owners.owns || bool(options.reads) != bool(options.combine_sketches)))
        throw std::invalid_argument("analyse: a partitioned rsvd run takes reads with combine_sketches, nothing else");

    analysis_result result;
    result.dim = d;
    result.k = std::min<std::size_t>(options.k, d);
    result.universal_k = std::min<std::size_t>(std::max(options.universal_k, options.k), d);
    result.center = options.center;
    result.trace_weighting = options.trace_weighting;
    result.how = options.how;

    const std::uint64_t total_bytes = share_bytes(matrices, options);
    std::uint64_t projected_bytes = 0;
    for (std::size_t m = 0; m < matrices.size() && options.per_matrix; ++m)
        if (projects_here(options, m)) projected_bytes += matrices[m].vector_bytes();
    progress_meter meter(options, total_bytes + projected_bytes);

    if (options.how == method::rsvd) {
        if (options.per_matrix) throw std::invalid_argument("analyse: per-matrix statistics need the exact method");
        if (options.center) throw std::invalid_argument("analyse: --center is not supported by the rsvd method");
        result.universal_k = result.k;
        progress_meter passes_meter(
            options, total_bytes * (options.randomized.power_iterations + 2 + options.randomized.universal_extra_passes));
        analyse_randomized(matrices, options, passes_meter, result);
        return result;
    }
    result.passes = options.per_matrix ? 2 : 1;
    detail::spill_file spill(d, options.spill_directory);
    std::vector<std::optional<std::size_t>> slots;  // nullopt: a type decomposed on another process
    std::vector<arma::mat> type_bases;  // top-k eigenvectors per type, for the per-matrix pass
    accumulate_types(matrices, d, options, meter, spill, result, slots, type_bases);
    if (options.per_matrix && options.owners.share_type_basis)
        for (std::size_t t = 0; t < type_bases.size(); ++t) options.owners.share_type_basis(t, type_bases[t]);
    const eigenpairs universal = universal_basis(spill, slots, options, result);
    if (options.per_matrix)
        project_matrices(matrices, options, meter, type_bases, universal.vectors.head_cols(result.k), result);
    return result;
}

}  // namespace adaptk
