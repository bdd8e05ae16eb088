#include "detail/linalg.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

// The reference BLAS/LAPACK Fortran interface, which every implementation
// (OpenBLAS, BLIS, ArmPL, netlib) exports, rather than one vendor's CBLAS header.
extern "C" {
// gfortran passes CHARACTER lengths as trailing hidden size_t arguments.
void ssyrk_(const char* uplo, const char* trans, const int* n, const int* k, const float* alpha, const float* a,
            const int* lda, const float* beta, float* c, const int* ldc, std::size_t, std::size_t);
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc, std::size_t, std::size_t);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc, std::size_t, std::size_t);
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc, std::size_t, std::size_t);
#define ADAPTK_SYEVD(name, Real)                                                                                      \
    void name(const char* jobz, const char* uplo, const int* n, Real* a, const int* lda, Real* w, Real* work,       \
              const int* lwork, int* iwork, const int* liwork, int* info, std::size_t, std::size_t);
#define ADAPTK_SYEVR(name, Real)                                                                                      \
    void name(const char* jobz, const char* range, const char* uplo, const int* n, Real* a, const int* lda,         \
              const Real* vl, const Real* vu, const int* il, const int* iu, const Real* abstol, int* m, Real* w,    \
              Real* z, const int* ldz, int* isuppz, Real* work, const int* lwork, int* iwork, const int* liwork,    \
              int* info, std::size_t, std::size_t, std::size_t);
ADAPTK_SYEVD(dsyevd_, double)
ADAPTK_SYEVD(ssyevd_, float)
ADAPTK_SYEVD(dsyevd_2stage_, double)
ADAPTK_SYEVD(ssyevd_2stage_, float)
ADAPTK_SYEVR(dsyevr_, double)
ADAPTK_SYEVR(ssyevr_, float)
#undef ADAPTK_SYEVD
#undef ADAPTK_SYEVR
void dsytrd_(const char* uplo, const int* n, double* a, const int* lda, double* d, double* e, double* tau,
             double* work, const int* lwork, int* info, std::size_t);
void dsterf_(const int* n, double* d, double* e, int* info);
void dstebz_(const char* range, const char* order, const int* n, const double* vl, const double* vu, const int* il,
             const int* iu, const double* abstol, const double* d, const double* e, int* m, int* nsplit, double* w,
             int* iblock, int* isplit, double* work, int* iwork, int* info, std::size_t, std::size_t);
void dstein_(const int* n, const double* d, const double* e, const int* m, const double* w, const int* iblock,
             const int* isplit, double* z, const int* ldz, double* work, int* iwork, int* ifail, int* info);
void dormtr_(const char* side, const char* uplo, const char* trans, const int* m, const int* n, const double* a,
             const int* lda, const double* tau, double* c, const int* ldc, double* work, const int* lwork, int* info,
             std::size_t, std::size_t, std::size_t);
#if defined(ADAPTK_OPENBLAS_THREADS)
// OpenBLAS's thread control; src/meson.build defines ADAPTK_OPENBLAS_THREADS
// when the BLAS found at configure time exports it.
void openblas_set_num_threads(int threads);
int openblas_get_num_threads(void);
#endif
}

namespace adaptk::detail {

void syrk_panel(const float* x, std::size_t n, std::size_t count, std::size_t first, std::size_t rows,
                float* c) noexcept {
    const int height = static_cast<int>(rows);
    const int right = static_cast<int>(n - first - rows);
    const int vectors = static_cast<int>(count);
    const int stride = static_cast<int>(n);
    const float one = 1.0f, zero = 0.0f;
    ssyrk_("U", "N", &height, &vectors, &one, x + first, &stride, &zero, c, &height, 1, 1);
    if (right > 0)
        sgemm_("N", "T", &height, &right, &vectors, &one, x + first, &stride, x + first + rows, &stride, &zero,
               c + rows * rows, &height, 1, 1);
}

namespace {

template <class Real, class Gemm>
void gemm_with(Gemm gemm_routine, bool transpose_a, std::size_t m, std::size_t n, std::size_t k, const Real* a,
               std::size_t lda, const Real* b, std::size_t ldb, Real beta, Real* c, std::size_t ldc) noexcept {
    const int rows = static_cast<int>(m), cols = static_cast<int>(n), inner = static_cast<int>(k);
    const int stride_a = static_cast<int>(lda), stride_b = static_cast<int>(ldb), stride_c = static_cast<int>(ldc);
    const Real one = 1;
    gemm_routine(transpose_a ? "T" : "N", "N", &rows, &cols, &inner, &one, a, &stride_a, b, &stride_b, &beta, c,
                 &stride_c, 1, 1);
}

}  // namespace

void gemm(bool transpose_a, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
          const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) noexcept {
    gemm_with(sgemm_, transpose_a, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool transpose_a, std::size_t m, std::size_t n, std::size_t k, const double* a, std::size_t lda,
          const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) noexcept {
    gemm_with(dgemm_, transpose_a, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void syrk_upper(const double* x, std::size_t n, std::size_t count, double* c, double beta) noexcept {
    const int rows = static_cast<int>(n);
    const int vectors = static_cast<int>(count);
    const double one = 1.0;
    dsyrk_("U", "N", &rows, &vectors, &one, x, &rows, &beta, c, &rows, 1, 1);
}

namespace {

// A LAPACK call with the workspace query first: `call(work, lwork, iwork,
// liwork)` once with lwork = liwork = −1, then with the sizes it asked for.
template <class Real, class Call>
int with_workspace(Call call) {
    int lwork = -1;
    int liwork = -1;
    Real work_size = 0;
    int iwork_size = 0;
    const int info = call(&work_size, &lwork, &iwork_size, &liwork);
    if (info != 0) return info;
    lwork = static_cast<int>(work_size);
    liwork = std::max(iwork_size, 1);
    std::vector<Real> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    return call(work.data(), &lwork, iwork.data(), &liwork);
}

template <class Real, class Syevd, class Syevd2, class Syevr>
int eigenvalues_with(Syevd syevd, Syevd2 syevd_2stage, Syevr syevr, Real* a, std::size_t n, Real* w,
                     eigen_driver driver) {
    const int order = static_cast<int>(n);
    int info = 0;
    if (driver == eigen_driver::mrrr) {
        const Real unused = 0;
        const int none = 0;
        int found = 0;
        std::vector<int> support(2 * std::max<std::size_t>(n, 1));
        return with_workspace<Real>([&](Real* work, int* lwork, int* iwork, int* liwork) {
            syevr("N", "A", "U", &order, a, &order, &unused, &unused, &none, &none, &unused, &found, w, nullptr, &order,
                  support.data(), work, lwork, iwork, liwork, &info, 1, 1, 1);
            return info;
        });
    }
    const auto solver = driver == eigen_driver::two_stage ? syevd_2stage : syevd;
    return with_workspace<Real>([&](Real* work, int* lwork, int* iwork, int* liwork) {
        solver("N", "U", &order, a, &order, w, work, lwork, iwork, liwork, &info, 1, 1);
        return info;
    });
}

}  // namespace

std::string_view driver_name(eigen_driver driver, bool single) noexcept {
    switch (driver) {
    case eigen_driver::mrrr: return single ? "ssyevr" : "dsyevr";
    case eigen_driver::two_stage: return single ? "ssyevd_2stage" : "dsyevd_2stage";
    case eigen_driver::divide_conquer: break;
    }
    return single ? "ssyevd" : "dsyevd";
}

int eigenvalues_symmetric(double* a, std::size_t n, double* w, eigen_driver driver) {
    return eigenvalues_with(dsyevd_, dsyevd_2stage_, dsyevr_, a, n, w, driver);
}

int eigenvalues_symmetric(float* a, std::size_t n, float* w, eigen_driver driver) {
    return eigenvalues_with(ssyevd_, ssyevd_2stage_, ssyevr_, a, n, w, driver);
}

int top_eigenpairs_symmetric(double* a, std::size_t n, std::size_t k, double* w, double* z) {
    const int order = static_cast<int>(n);
    const int first = order - static_cast<int>(k) + 1;  // 1-based indices of the k largest
    const int last = order;
    const double unused = 0.0;
    const double abstol = 0.0;  // LAPACK picks its own safe tolerance
    int found = 0;
    int info = 0;
    // LAPACK's W is dimension N even when only k eigenvalues are wanted
    // (dstebz writes past k: valgrind, d = 37, k = 32); `w` holds k.
    std::vector<double> values(n);
    std::vector<int> support(2 * std::max<std::size_t>(k, 1));
    info = with_workspace<double>([&](double* work, int* lwork, int* iwork, int* liwork) {
        dsyevr_("V", "I", "U", &order, a, &order, &unused, &unused, &first, &last, &abstol, &found, values.data(), z,
                &order, support.data(), work, lwork, iwork, liwork, &info, 1, 1, 1);
        return info;
    });
    if (info == 0 && found != static_cast<int>(k)) return -1000 - found;
    std::copy_n(values.begin(), k, w);
    return info;
}

int spectrum_and_top_vectors(double* a, std::size_t n, std::size_t k, double* all, double* top, double* z) {
    const int order = static_cast<int>(n);
    int info = 0;
    // dsyevr's scaling: a matrix whose largest entry lies outside
    // [rmin, rmax] is scaled into it, so the reduction neither over- nor underflows.
    const double safe_min = std::numeric_limits<double>::min();
    const double precision = std::numeric_limits<double>::epsilon() / 2 * std::numeric_limits<double>::radix;
    const double rmin = std::sqrt(safe_min / precision);
    const double rmax = std::min(std::sqrt(1 / (safe_min / precision)), 1 / std::sqrt(std::sqrt(safe_min)));
    double largest = 0;
    for (std::size_t j = 0; j < n; ++j)
        for (std::size_t i = 0; i <= j; ++i) largest = std::max(largest, std::abs(a[i + j * n]));
    const double scale = largest > 0 && largest < rmin ? rmin / largest : largest > rmax ? rmax / largest : 1.0;
    if (scale != 1.0)
        for (std::size_t j = 0; j < n; ++j)
            for (std::size_t i = 0; i <= j; ++i) a[i + j * n] *= scale;
    // One reduction to tridiagonal form T = Qᵀ·A·Q (Householder reflectors left in `a`).
    std::vector<double> diagonal(n), off_diagonal(std::max<std::size_t>(n, 1)), reflectors(std::max<std::size_t>(n, 1));
    auto reduce = [&](double* work, const int* lwork) {
        dsytrd_("U", &order, a, &order, diagonal.data(), off_diagonal.data(), reflectors.data(), work, lwork, &info, 1);
        return info;
    };
    if ((info = with_workspace<double>([&](double* work, int* lwork, int*, int*) { return reduce(work, lwork); })) != 0)
        return info;
    // Every eigenvalue (what dsyevd without vectors does after the same reduction).
    std::copy(diagonal.begin(), diagonal.end(), all);
    std::vector<double> off_copy(off_diagonal);
    dsterf_(&order, all, off_copy.data(), &info);
    if (info != 0) return info;
    // The k largest by bisection and their vectors by inverse iteration, as
    // dsyevr does for an index range, then rotated back by Q.
    const int first = order - static_cast<int>(k) + 1, last = order;
    const double unused = 0.0, abstol = 0.0;
    int found = 0, blocks = 0;
    std::vector<double> values(n), work(5 * n);
    std::vector<int> block_of(n), block_ends(n), iwork(3 * n), failed(std::max<std::size_t>(k, 1));
    dstebz_("I", "B", &order, &unused, &unused, &first, &last, &abstol, diagonal.data(), off_diagonal.data(), &found,
            &blocks, values.data(), block_of.data(), block_ends.data(), work.data(), iwork.data(), &info, 1, 1);
    if (info != 0) return info;
    if (found != static_cast<int>(k)) return -1000 - found;
    dstein_(&order, diagonal.data(), off_diagonal.data(), &found, values.data(), block_of.data(), block_ends.data(), z,
            &order, work.data(), iwork.data(), failed.data(), &info);
    if (info != 0) return info;
    // dstebz orders by split block: sort ascending, vectors with their values.
    for (std::size_t j = 0; j + 1 < k; ++j) {
        const std::size_t smallest =
            static_cast<std::size_t>(std::min_element(values.begin() + j, values.begin() + k) - values.begin());
        if (smallest == j) continue;
        std::swap(values[j], values[smallest]);
        std::swap_ranges(z + j * n, z + (j + 1) * n, z + smallest * n);
    }
    const int columns = static_cast<int>(k);
    auto rotate = [&](double* rotate_work, const int* lwork) {
        dormtr_("L", "U", "N", &order, &columns, a, &order, reflectors.data(), z, &order, rotate_work, lwork, &info, 1,
                1, 1);
        return info;
    };
    if ((info = with_workspace<double>([&](double* rotate_work, int* lwork, int*, int*) { return rotate(rotate_work, lwork); })) != 0)
        return info;
    for (std::size_t i = 0; i < n; ++i) all[i] /= scale;
    for (std::size_t j = 0; j < k; ++j) top[j] = values[j] / scale;
    return 0;
}

#if defined(ADAPTK_OPENBLAS_THREADS)
void set_blas_threads(int threads) noexcept { openblas_set_num_threads(threads); }

int blas_threads() noexcept { return openblas_get_num_threads(); }
#else
void set_blas_threads(int) noexcept {}

int blas_threads() noexcept { return 1; }
#endif

}  // namespace adaptk::detail
