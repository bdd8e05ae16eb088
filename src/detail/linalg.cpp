#include "detail/linalg.hpp"

#include <algorithm>
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
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc, std::size_t, std::size_t);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info, std::size_t, std::size_t);
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a, const int* lda,
             const double* vl, const double* vu, const int* il, const int* iu, const double* abstol, int* m,
             double* w, double* z, const int* ldz, int* isuppz, double* work, const int* lwork, int* iwork,
             const int* liwork, int* info, std::size_t, std::size_t, std::size_t);
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

void syrk_upper(const double* x, std::size_t n, std::size_t count, double* c, double beta) noexcept {
    const int rows = static_cast<int>(n);
    const int vectors = static_cast<int>(count);
    const double one = 1.0;
    dsyrk_("U", "N", &rows, &vectors, &one, x, &rows, &beta, c, &rows, 1, 1);
}

int eigenvalues_symmetric(double* a, std::size_t n, double* w) {
    const int order = static_cast<int>(n);
    int info = 0;
    int lwork = -1;
    int liwork = -1;
    double work_size = 0;
    int iwork_size = 0;
    dsyevd_("N", "U", &order, a, &order, w, &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1);
    if (info != 0) return info;
    lwork = static_cast<int>(work_size);
    liwork = std::max(iwork_size, 1);
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    dsyevd_("N", "U", &order, a, &order, w, work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
    return info;
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
    int lwork = -1;
    int liwork = -1;
    double work_size = 0;
    int iwork_size = 0;
    dsyevr_("V", "I", "U", &order, a, &order, &unused, &unused, &first, &last, &abstol, &found, values.data(), z, &order,
            support.data(), &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1, 1);
    if (info != 0) return info;
    lwork = static_cast<int>(work_size);
    liwork = iwork_size;
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    dsyevr_("V", "I", "U", &order, a, &order, &unused, &unused, &first, &last, &abstol, &found, values.data(), z, &order,
            support.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1, 1);
    if (info == 0 && found != static_cast<int>(k)) return -1000 - found;
    std::copy_n(values.begin(), k, w);
    return info;
}

#if defined(ADAPTK_OPENBLAS_THREADS)
void set_blas_threads(int threads) noexcept { openblas_set_num_threads(threads); }

int blas_threads() noexcept { return openblas_get_num_threads(); }
#else
void set_blas_threads(int) noexcept {}

int blas_threads() noexcept { return 1; }
#endif

}  // namespace adaptk::detail
