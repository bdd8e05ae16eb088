#pragma once
// Thin wrappers over the BLAS/LAPACK routines the engines call directly.
// Kept in their own translation unit so the Fortran/CBLAS prototypes never
// meet Armadillo's own declarations of the same symbols. Column-major, lda = n.

#include <cstddef>
#include <string_view>

namespace adaptk::detail {

/// C = alpha·X·Xᵀ + beta·C on the upper triangle; X is n×count (dsyrk).
void syrk_upper(const double* x, std::size_t n, std::size_t count, double* c, double beta) noexcept;
/// Rows [first, first + rows) of the upper triangle of X·Xᵀ (X n×count),
/// columns first .. n−1, into the column-major panel `c` whose column j starts
/// at c + (j − first)·rows: ssyrk on the diagonal square, sgemm right of it.
void syrk_panel(const float* x, std::size_t n, std::size_t count, std::size_t first, std::size_t rows,
                float* c) noexcept;

/// C = op(A)·B + beta·C for column-major blocks inside larger matrices
/// (leading dimensions lda, ldb, ldc): A is m×k, or k×m read transposed when
/// transpose_a; B is k×n; C is m×n (sgemm, dgemm). Armadillo would copy a
/// row range out before multiplying and the product back after.
void gemm(bool transpose_a, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
          const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) noexcept;
void gemm(bool transpose_a, std::size_t m, std::size_t n, std::size_t k, const double* a, std::size_t lda,
          const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) noexcept;

/// LAPACK's drivers for all eigenvalues: ?syevd (divide and conquer; QL/QR
/// when no vectors are wanted), ?syevr (MRRR) and ?syevd_2stage (band
/// reduction first). The analysis uses divide_conquer; tools/eigen_bench.cpp
/// measures the others against it.
enum class eigen_driver { divide_conquer, mrrr, two_stage };
std::string_view driver_name(eigen_driver driver, bool single) noexcept;  ///< "dsyevd", "ssyevr", ...

/// All eigenvalues of the symmetric n×n matrix `a` (upper triangle read,
/// destroyed), ascending into `w`, no vectors. Returns LAPACK's info.
int eigenvalues_symmetric(double* a, std::size_t n, double* w, eigen_driver driver = eigen_driver::divide_conquer);
/// The same in float32: half the memory traffic of the reduction.
int eigenvalues_symmetric(float* a, std::size_t n, float* w, eigen_driver driver = eigen_driver::divide_conquer);

/// The `k` largest eigenpairs of the symmetric n×n matrix `a` (upper triangle
/// read, destroyed): values ascending into `w` (k), vectors into `z` (n×k)
/// (dsyevr, RANGE='I'). Returns LAPACK's info.
int top_eigenpairs_symmetric(double* a, std::size_t n, std::size_t k, double* w, double* z);

/// Both at one reduction's cost: all eigenvalues of the symmetric n×n matrix
/// `a` (upper triangle read, destroyed) ascending into `all` (n), and the k
/// largest ascending into `top` (k) with their vectors in `z` (n×k). One
/// dsytrd, then what dsyevd (dsterf) and dsyevr for an index range (dstebz,
/// dstein, dormtr) each run after their own. Returns LAPACK's info.
int spectrum_and_top_vectors(double* a, std::size_t n, std::size_t k, double* all, double* top, double* z);

/// Sets the BLAS thread count when the BLAS offers a way (OpenBLAS does).
void set_blas_threads(int threads) noexcept;
/// The BLAS thread count (1 when the BLAS does not say).
int blas_threads() noexcept;

/// While alive: BLAS on one thread, for work split between threads of our
/// own that each call it; the count before is restored on every exit.
class single_threaded_blas {
public:
    single_threaded_blas() noexcept : before_(blas_threads()) { set_blas_threads(1); }
    ~single_threaded_blas() { set_blas_threads(before_); }
    single_threaded_blas(const single_threaded_blas&) = delete;
    single_threaded_blas& operator=(const single_threaded_blas&) = delete;
    /// The thread count it replaced (at least 1).
    int threads_before() const noexcept { return before_; }

private:
    int before_;
};

}  // namespace adaptk::detail
