#include "adaptk/analysis.hpp"

#include <algorithm>
#include <stdexcept>

#include "adaptk/gram.hpp"
#include "adaptk/spectrum.hpp"
#include "adaptk/vectors.hpp"
#include "detail/spill.hpp"

namespace adaptk {
namespace {

// Columns of a parked Gram read back at a time: d×256 doubles (4 MiB at d = 2048).
constexpr std::size_t spill_chunk_columns = 256;

class progress_meter {
public:
    progress_meter(const analysis_options& options, std::uint64_t total) : options_(options), total_(total) {}
    void advance(std::uint64_t bytes) {
        done_ += bytes;
        if (options_.progress) options_.progress(done_, total_);
    }

private:
    const analysis_options& options_;
    std::uint64_t total_;
    std::uint64_t done_ = 0;
};

// Streams one matrix's vectors into `sink(block, count)`; float64 files keep
// float64 precision, everything else is decoded to float32 for ssyrk.
template <class Sink>
void stream_matrix(const weight_matrix& matrix, std::size_t block_vectors, arma::fmat& float_block,
                   arma::mat& double_block, progress_meter& meter, Sink&& sink) {
    const std::uint64_t bytes_per_vector = matrix.bytes.size() / std::max<std::uint64_t>(matrix.vector_count(), 1);
    auto run = [&](auto& buffer) {
        using real = typename std::decay_t<decltype(buffer)>::elem_type;
        vector_stream<real> stream(matrix, block_vectors);
        if (buffer.n_rows != stream.dim() || buffer.n_cols < block_vectors) buffer.set_size(stream.dim(), block_vectors);
        for (std::size_t count; (count = stream.next(buffer.memptr())) != 0;) {
            sink(buffer.memptr(), count);
            meter.advance(count * bytes_per_vector);
        }
    };
    if (matrix.type == dtype::f64)
        run(double_block);
    else
        run(float_block);
}

// XᵀX (count×count, float64) of a d×count block: the inner products of its vectors.
template <class Real>
arma::mat vector_products(const Real* block, std::size_t d, std::size_t count) {
    const arma::mat x = arma::conv_to<arma::mat>::from(arma::Mat<Real>(const_cast<Real*>(block), d, count, false, true));
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
        product += chunk.head_cols(count) * basis.rows(first, first + count - 1);
    }
    return arma::sum(basis % product, 0).t();
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
    double type_fraction() const { return total_ > 0 ? in_type_ / total_ : arma::datum::nan; }
    double universal_fraction() const { return total_ > 0 ? in_universal_ / total_ : arma::datum::nan; }

private:
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

}  // namespace

analysis_result analyse(const std::vector<weight_matrix>& matrices, std::uint64_t d, const analysis_options& options) {
    if (d == 0) throw std::invalid_argument("analyse: hidden size is 0");
    if (matrices.empty()) throw std::invalid_argument("analyse: no matrices to analyse");

    analysis_result result;
    result.dim = d;
    result.k = std::min<std::size_t>(options.k, d);
    result.universal_k = std::min<std::size_t>(std::max(options.universal_k, options.k), d);
    result.center = options.center;
    result.trace_weighting = options.trace_weighting;

    std::uint64_t total_bytes = 0;
    for (const auto& matrix : matrices) total_bytes += matrix.bytes.size();
    progress_meter meter(options, options.per_matrix ? 2 * total_bytes : total_bytes);

    detail::spill_file spill(d);
    std::vector<std::size_t> slots;
    std::vector<arma::mat> type_bases;  // top-k eigenvectors per type, for the per-matrix pass
    gram_accumulator type_gram(d, options.center);
    gram_accumulator matrix_gram(d, options.center);  // allocates on first use: per-matrix mode only
    arma::fmat float_block;
    arma::mat double_block;

    for (std::size_t first = 0; first < matrices.size();) {
        const weight_type type = matrices[first].kind.type;
        std::size_t last = first;
        while (last < matrices.size() && matrices[last].kind.type == type) ++last;

        type_spectrum spectrum;
        spectrum.type = type;
        spectrum.matrices = last - first;
        type_gram.reset();
        for (std::size_t m = first; m < last; ++m) {
            const weight_matrix& matrix = matrices[m];
            spectrum.vectors += matrix.vector_count();
            spectrum.parameters += matrix.rows * matrix.cols;
            if (!options.per_matrix) {
                stream_matrix(matrix, options.block_vectors, float_block, double_block, meter,
                              [&](const auto* block, std::size_t count) { type_gram.add(block, count); });
                continue;
            }
            // A matrix with fewer vectors than dimensions, all in one block, is
            // decomposed through its small XᵀX (N×N): the d×d Gram's nonzero
            // eigenvalues at (N/d)³ the cost.
            const bool short_side = matrix.vector_count() < d && matrix.vector_count() <= options.block_vectors;
            arma::vec own;  // the matrix's own Gram eigenvalues
            matrix_gram.reset();
            stream_matrix(matrix, options.block_vectors, float_block, double_block, meter,
                          [&](const auto* block, std::size_t count) {
                              matrix_gram.add(block, count);
                              if (short_side) own = eigenvalues_descending(vector_products(block, d, count));
                          });
            type_gram += matrix_gram;
            if (!short_side) own = eigenvalues_descending(matrix_gram.take(false));
            result.matrices.push_back({matrix.name, matrix.kind, matrix.rows, matrix.cols, std::move(own), 0.0, 0.0});
        }
        const std::size_t slot = spill.write(type_gram.take(options.center));
        slots.push_back(slot);
        spectrum.eigenvalues = eigenvalues_descending(spill.read(slot));
        if (options.per_matrix)
            type_bases.push_back(top_eigenpairs(spill.read(slot), result.k).vectors);
        result.types.push_back(std::move(spectrum));
        first = last;
    }

    // Universal basis: C_u = Σ_t w_t C_t, rebuilt chunk by chunk from the spill.
    {
        arma::mat universal(d, d, arma::fill::zeros);
        arma::mat chunk(d, spill_chunk_columns);
        for (std::size_t t = 0; t < slots.size(); ++t) {
            const double energy = arma::accu(result.types[t].eigenvalues);
            const double weight = options.trace_weighting ? (energy > 0 ? 1.0 / energy : 0.0) : 1.0;
            for (std::size_t col = 0; col < d; col += spill_chunk_columns) {
                const std::size_t count = std::min<std::size_t>(spill_chunk_columns, d - col);
                spill.read_columns(slots[t], col, count, chunk.memptr());
                universal.cols(col, col + count - 1) += weight * chunk.head_cols(count);
            }
        }
        eigenpairs top = top_eigenpairs(std::move(universal), result.universal_k);
        result.universal_eigenvalues = top.values;
        for (std::size_t t = 0; t < slots.size(); ++t) {
            const arma::vec captured = captured_energy(spill, slots[t], top.vectors);
            const double trace = arma::accu(result.types[t].eigenvalues);
            result.types[t].universal_capture = captured / trace;  // NaN for an all-zero type
        }

        if (options.per_matrix) {
            // Second pass: energy of each matrix inside the type's and the universal top-k bases.
            const arma::mat universal_basis = top.vectors.head_cols(result.k);
            std::size_t type_index = 0;
            for (std::size_t m = 0; m < matrices.size(); ++m) {
                if (m > 0 && matrices[m].kind.type != matrices[m - 1].kind.type) ++type_index;
                projected_energy energy(type_bases[type_index], universal_basis);
                stream_matrix(matrices[m], options.block_vectors, float_block, double_block, meter,
                              [&](const auto* block, std::size_t count) { energy.add(block, d, count); });
                result.matrices[m].r2_type = energy.type_fraction();
                result.matrices[m].r2_universal = energy.universal_fraction();
            }
        }
    }
    return result;
}

}  // namespace adaptk
