#include "detail/linalg.hpp"

#include <cblas.h>

#include <algorithm>
#include <vector>

extern "C" {
// gfortran passes CHARACTER lengths as trailing hidden size_t arguments.
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info, std::size_t, std::size_t);
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a, const int* lda,
             const double* vl, const double* vu, const int* il, const int* iu, const double* abstol, int* m,
             double* w, double* z, const int* ldz, int* isuppz, double* work, const int* lwork, int* iwork,
             const int* liwork, int* info, std::size_t, std::size_t, std::size_t);
}

namespace adaptk::detail {

void syrk_upper(const float* x, std::size_t n, std::size_t count, float* c, float beta) noexcept {
    const auto rows = static_cast<blasint>(n);
    cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, rows, static_cast<blasint>(count), 1.0f, x, rows, beta, c,
                rows);
}

void syrk_upper(const double* x, std::size_t n, std::size_t count, double* c, double beta) noexcept {
    const auto rows = static_cast<blasint>(n);
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, rows, static_cast<blasint>(count), 1.0, x, rows, beta, c,
                rows);
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
    std::vector<int> support(2 * std::max<std::size_t>(k, 1));
    int lwork = -1;
    int liwork = -1;
    double work_size = 0;
    int iwork_size = 0;
    dsyevr_("V", "I", "U", &order, a, &order, &unused, &unused, &first, &last, &abstol, &found, w, z, &order,
            support.data(), &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1, 1);
    if (info != 0) return info;
    lwork = static_cast<int>(work_size);
    liwork = iwork_size;
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    dsyevr_("V", "I", "U", &order, a, &order, &unused, &unused, &first, &last, &abstol, &found, w, z, &order,
            support.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1, 1);
    if (info == 0 && found != static_cast<int>(k)) return -1000 - found;
    return info;
}

void set_blas_threads(int threads) noexcept { openblas_set_num_threads(threads); }

int blas_threads() noexcept { return openblas_get_num_threads(); }

}  // namespace adaptk::detail
