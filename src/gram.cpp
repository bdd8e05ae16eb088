#include "adaptk/gram.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>

#include "adaptk/dtype.hpp"
#include "detail/bf16_gram.hpp"
#include "detail/linalg.hpp"
#include "detail/share_work.hpp"

namespace adaptk {
namespace {

// Column bounds first = b₀ < b₁ < … < b_n = dim (n ≤ parts) of ranges of about
// equal work in a panel of `rows` rows from row `first`: column j adds its
// min(rows, j − first + 1) values on or above the diagonal.
std::vector<std::size_t> equal_work_bounds(std::size_t first, std::size_t rows, std::size_t dim, std::size_t parts) {
    std::vector<std::size_t> bounds{first};
    const double per_part = static_cast<double>(rows) * static_cast<double>(dim - first) / static_cast<double>(parts);
    double work = 0;
    for (std::size_t j = first; j < dim && bounds.size() < parts; ++j)
        if ((work += static_cast<double>(std::min(rows, j - first + 1))) >= per_part * static_cast<double>(bounds.size()))
            bounds.push_back(j + 1);
    bounds.push_back(dim);
    return bounds;
}

}  // namespace

void center_gram(arma::mat& gram, const arma::vec& sum, std::uint64_t count) {
    if (count == 0) return;
    const double scale = 1.0 / static_cast<double>(count);
    for (std::size_t j = 0; j < gram.n_cols; ++j)
        for (std::size_t i = 0; i < gram.n_rows; ++i) gram(i, j) -= scale * sum[i] * sum[j];
}

void mirror_upper(arma::mat& m) {
    // In square tiles, so the tile's rows written with a stride of n stay
    // cached between its columns: element by element, each of the d²/2
    // writes touched a line of its own (≈ 40 ms at d = 2048, once per matrix).
    constexpr std::size_t tile = 64;
    const std::size_t n = m.n_rows;
    for (std::size_t j0 = 0; j0 < n; j0 += tile)
        for (std::size_t i0 = 0; i0 <= j0; i0 += tile)
            for (std::size_t j = j0; j < std::min(j0 + tile, n); ++j)
                for (std::size_t i = i0; i < std::min(i0 + tile, j); ++i) m(j, i) = m(i, j);
}

gram_accumulator::gram_accumulator(std::size_t dim, bool track_sum, std::size_t panel_rows)
    : dim_(dim), track_sum_(track_sum),
      panel_rows_(std::max<std::size_t>(1, (panel_rows + detail::bf16_panel_rows - 1) / detail::bf16_panel_rows) *
                  detail::bf16_panel_rows),
      upper_(), kernel_(active_gram_kernel()) {
    if (track_sum_) sum_.zeros(dim);
}

void gram_accumulator::materialize() const {
    if (lent_) throw std::logic_error("gram_accumulator: used after lend() without reset()");
    if (upper_.n_elem == 0) upper_.zeros(dim_, dim_);
}

float* gram_accumulator::panel() {
    materialize();
    panel_.resize(panel_rows_ * dim_);
    return panel_.data();
}

void gram_accumulator::add_panel(const float* panel, std::size_t first, std::size_t rows) {
    add_panel_columns(panel, first, rows, first, dim_);
}

void gram_accumulator::add_panel_columns(const float* panel, std::size_t first, std::size_t rows, std::size_t begin,
                                         std::size_t end) {
    for (std::size_t j = begin; j < end; ++j) {
        double* target = upper_.colptr(j) + first;
        const float* source = panel + (j - first) * rows;
        const std::size_t upper_rows = std::min(rows, j - first + 1);  // i ≤ j
        for (std::size_t i = 0; i < upper_rows; ++i) target[i] += source[i];
    }
}

void gram_accumulator::float_block_added(std::size_t count) {
    longest_float_run_ = std::max(longest_float_run_, count);
    ++flushes_;
    count_ += count;
}

template <class Element, class ToDouble>
void gram_accumulator::add_to_sum(const Element* vectors, std::size_t count, ToDouble to_double) {
    if (!track_sum_) return;
    for (std::size_t v = 0; v < count; ++v) {
        const Element* x = vectors + v * dim_;
        for (std::size_t i = 0; i < dim_; ++i) sum_[i] += to_double(x[i]);
    }
}

void gram_accumulator::add(const float* vectors, std::size_t count) {
    if (count == 0) return;
    float* sums = panel();
    const int threads = detail::blas_threads();
    for (std::size_t first = 0; first < dim_; first += panel_rows_) {
        const std::size_t rows = std::min(panel_rows_, dim_ - first);
        detail::syrk_panel(vectors, dim_, count, first, rows, sums);
        // Its float64 additions on the BLAS threads too, in column ranges of
        // about equal work (a column adds up to `rows` values): on one thread
        // they were 2.5 % of a fp32 `layers` run's CPU time, with the other
        // cores idle. Below 2^18 values (≈ 0.1 ms) a helper is not worth starting.
        const std::size_t parts = rows * (dim_ - first) < (1u << 18) ? 1 : static_cast<std::size_t>(threads);
        const std::vector<std::size_t> bounds = equal_work_bounds(first, rows, dim_, parts);
        std::atomic<std::size_t> next = 0;
        detail::share_work(threads, bounds.size() - 1, [&] {
            for (std::size_t p; (p = next++) + 1 < bounds.size();) add_panel_columns(sums, first, rows, bounds[p], bounds[p + 1]);
        });
    }
    add_to_sum(vectors, count, [](float x) { return static_cast<double>(x); });
    float_block_added(count);
}

void gram_accumulator::add(const std::uint16_t* bf16_vectors, std::size_t count) {
    if (count == 0) return;
    if (kernel_ == gram_kernel::fp32) {
        if (bf16_decoded_.size() < dim_ * count) bf16_decoded_.resize(dim_ * count);
        decode(dtype::bf16, reinterpret_cast<const std::byte*>(bf16_vectors), dim_ * count, bf16_decoded_.data());
        add(bf16_decoded_.data(), count);
        return;
    }
    // One 48-row slot of the panel per thread, so no more threads than slots.
    const int threads = std::min<int>(detail::blas_threads(), static_cast<int>(panel_rows_ / detail::bf16_panel_rows));
    detail::bf16_syrk_upper(
        kernel_, bf16_vectors, dim_, count, panel(),
        [this](const float* rows_of_c, std::size_t first, std::size_t rows) { add_panel(rows_of_c, first, rows); },
        bf16_pack_, threads);
    add_to_sum(bf16_vectors, count, [](std::uint16_t bits) { return static_cast<double>(bf16_to_float(bits)); });
    float_block_added(count);
}

gram_rounding gram_accumulator::rounding() const {
    // γ_n = n·u/(1 − n·u), Higham 2002, Lemma 3.1.
    auto gamma = [](double n, double unit) { return n * unit / (1 - n * unit); };
    constexpr double float_unit = 0x1.0p-24, double_unit = 0x1.0p-53;
    const double energy = trace();
    if (longest_float_run_ == 0) {  // float64 blocks only: dsyrk over all vectors
        const double n = static_cast<double>(count_);
        return {gamma(n, double_unit) * energy, std::sqrt(n) * double_unit * energy};
    }
    const double run = static_cast<double>(longest_float_run_);
    // The float32 sums themselves carry up to γ_n of their size, so the
    // accumulated trace may undercount Σ‖x‖² by that much.
    const double abs_energy = energy / (1 - gamma(run, float_unit));
    const double adds = gamma(static_cast<double>(flushes_ + count_), double_unit);  // and any float64 blocks
    return {(gamma(run, float_unit) + adds) * abs_energy, (std::sqrt(run) * float_unit + adds) * abs_energy};
}

void gram_accumulator::add(const double* vectors, std::size_t count) {
    if (count == 0) return;
    materialize();
    detail::syrk_upper(vectors, dim_, count, upper_.memptr(), 1.0);
    add_to_sum(vectors, count, [](double x) { return x; });
    count_ += count;
}

gram_accumulator& gram_accumulator::operator+=(const gram_accumulator& other) {
    if (other.dim_ != dim_ || other.track_sum_ != track_sum_)
        throw std::invalid_argument("gram_accumulator: merging accumulators of different shapes");
    materialize();
    other.materialize();
    upper_ += other.upper_;
    if (track_sum_) sum_ += other.sum_;
    count_ += other.count_;
    longest_float_run_ = std::max(longest_float_run_, other.longest_float_run_);
    flushes_ += other.flushes_;
    return *this;
}

gram_state gram_accumulator::state() const {
    gram_state out;
    out.upper.reserve(packed_upper_size(dim_));
    for (std::size_t j = 0; j < dim_; ++j)
        for (std::size_t i = 0; i <= j; ++i) out.upper.push_back(upper_.n_elem == 0 ? 0.0 : upper_(i, j));
    out.sum = sum_;
    out.count = count_;
    out.longest_float_run = longest_float_run_;
    out.flushes = flushes_;
    return out;
}

gram_accumulator gram_accumulator::from_state(std::size_t dim, gram_state state) {
    if (state.upper.size() != packed_upper_size(dim) || (state.sum.n_elem != 0 && state.sum.n_elem != dim))
        throw std::invalid_argument("gram_accumulator: a state of other sizes than dimension " + std::to_string(dim));
    gram_accumulator result(dim, state.sum.n_elem != 0);
    result.materialize();
    const double* packed = state.upper.data();
    for (std::size_t j = 0; j < dim; ++j)
        for (std::size_t i = 0; i <= j; ++i) result.upper_(i, j) = *packed++;
    if (result.track_sum_) result.sum_ = std::move(state.sum);
    result.count_ = state.count;
    result.longest_float_run_ = state.longest_float_run;
    result.flushes_ = state.flushes;
    return result;
}

arma::mat gram_accumulator::gram() const {
    materialize();
    return arma::symmatu(upper_);
}

arma::mat gram_accumulator::centered() const {
    if (!track_sum_) throw std::logic_error("gram_accumulator: centered() needs track_sum");
    arma::mat result = gram();
    center_gram(result, sum_, count_);
    return result;
}

const arma::mat& gram_accumulator::upper() const {
    materialize();
    return upper_;
}

arma::mat gram_accumulator::take(bool center) {
    if (center && !track_sum_) throw std::logic_error("gram_accumulator: take(center) needs track_sum");
    materialize();
    mirror_upper(upper_);
    if (center) center_gram(upper_, sum_, count_);
    return std::move(upper_);
}

std::span<std::byte> gram_accumulator::lend() {
    if (upper_.n_elem == 0) return {};
    lent_ = true;
    panel_ = std::vector<float>();
    return std::as_writable_bytes(std::span(upper_.memptr(), upper_.n_elem));
}

void gram_accumulator::reset() {
    if (lent_)
        upper_.zeros();  // the borrower wrote anywhere
    else  // adds leave the lower triangle at zero: half the writes (per-matrix mode resets 156 times on the 1.1B model)
        for (std::size_t j = 0; j < upper_.n_cols; ++j) std::fill_n(upper_.colptr(j), j + 1, 0.0);
    lent_ = false;
    if (track_sum_) sum_.zeros();
    count_ = 0;
    longest_float_run_ = 0;
    flushes_ = 0;
}

}  // namespace adaptk
