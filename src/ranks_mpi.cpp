// rank_group over MPI (compiled only with -Dmpi). Point-to-point messages on
// binomial trees rather than MPI_Allreduce: the sums go through
// gram_accumulator::operator+= in an order fixed by the rank count (every
// rank gets the same bits), and each rank's traffic is known exactly.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <string>

#include "adaptk/partition.hpp"
#include "adaptk/ranks.hpp"

namespace adaptk {
namespace {

void check(int code, const char* what) {
    if (code != MPI_SUCCESS) throw std::runtime_error(std::string("MPI: ") + what + " failed");
}

constexpr int state_tag = 11;
// MPI counts are ints: larger states go in pieces of at most this many doubles.
constexpr std::size_t piece_values = std::size_t{1} << 28;

// Values after the packed upper triangle and Σx: the count and the rounding
// inputs, longest float run and flushes (each exact below 2⁵³).
constexpr std::size_t trailer_values = 3;

// A gram_state as one buffer: the packed upper triangle, Σx (when tracked), the trailer.
std::vector<double> pack(const gram_accumulator& gram) {
    gram_state state = gram.state();
    std::vector<double> buffer = std::move(state.upper);
    buffer.insert(buffer.end(), state.sum.begin(), state.sum.end());
    for (const std::uint64_t value : {state.count, state.longest_float_run, state.flushes})
        buffer.push_back(static_cast<double>(value));
    return buffer;
}

gram_accumulator unpack(std::size_t dim, bool track_sum, std::vector<double> buffer) {
    gram_state state;
    const double* trailer = buffer.data() + buffer.size() - trailer_values;
    state.count = static_cast<std::uint64_t>(trailer[0]);
    state.longest_float_run = static_cast<std::uint64_t>(trailer[1]);
    state.flushes = static_cast<std::uint64_t>(trailer[2]);
    const std::size_t packed = packed_upper_size(dim);
    if (track_sum) state.sum = arma::vec(buffer.data() + packed, dim);
    buffer.resize(packed);
    state.upper = std::move(buffer);
    return gram_accumulator::from_state(dim, std::move(state));
}

// Collective: whether every rank passed the same text (compared by hash).
bool same_everywhere(const std::string& text) {
    const std::uint64_t mine = std::hash<std::string>{}(text);
    std::uint64_t lowest = 0, highest = 0;
    check(MPI_Allreduce(&mine, &lowest, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
    check(MPI_Allreduce(&mine, &highest, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return lowest == highest;
}

}  // namespace

rank_group::rank_group(int& argc, char**& argv) {
    if (!started_by_mpirun()) return;
    check(MPI_Init(&argc, &argv), "MPI_Init");
    joined_ = true;
    // Failures are agreed on and reported by the ranks themselves (agree()).
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

rank_group::~rank_group() {
    if (joined_) MPI_Finalize();
}

// Measured: `--version` peaks at 8.7 MiB linked with OpenMPI, 7.3 without;
// `mpirun -np 1` peaked 6.4 (exact) and 6.6 MiB (rsvd) above one process on
// the 1.1B profile.
std::uint64_t rank_group::transport_bytes() const noexcept { return (3ull << 19) + (joined_ ? 7ull << 20 : 0); }

void rank_group::share(const std::vector<weight_matrix>& matrices, analysis_options& options) {
    if (size_ == 1) return;
    // A rank that failed before its share (bad input, --max-memory) is in agree() already.
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    // Every rank must split the same list and run the same analysis (mpirun's
    // MPMD form can start ranks on different models or options; rsvd's
    // sketches must start from the same random matrix everywhere).
    std::string names;
    for (const auto& m : matrices) names += m.name + ':' + std::to_string(m.rows) + 'x' + std::to_string(m.cols) + ';';
    if (!same_everywhere(names)) throw std::runtime_error("the MPI ranks were given models with different weight matrices");
    const rsvd_options& r = options.randomized;
    std::string settings;
    for (const std::uint64_t value : {std::uint64_t{options.how == method::rsvd}, std::uint64_t{options.k},
                                      std::uint64_t{options.universal_k}, std::uint64_t{options.center},
                                      std::uint64_t{options.trace_weighting}, std::uint64_t{options.block_vectors},
                                      std::uint64_t{r.oversample}, std::uint64_t{r.power_iterations},
                                      std::uint64_t{r.error_probes}, r.seed})
        settings += std::to_string(value) + ';';
    if (!same_everywhere(settings))
        throw std::runtime_error("the MPI ranks were given different analysis options (method, K, --center, weighting, "
                                 "block size or rsvd settings)");
    attach(matrices, options);
}

void rank_group::attach(const std::vector<weight_matrix>& matrices, analysis_options& options) {
    if (size_ == 1) return;
    part_of_ = split_by_bytes(matrices, static_cast<std::size_t>(size_));
    options.reads = [this](std::size_t m) { return part_of_[m] == static_cast<std::size_t>(rank_); };
    if (options.how == method::rsvd) {
        options.combine_sketches = [this](std::span<double> values, combine_op op) { combine_sketch(values, op); };
        return;
    }
    options.combine = [this](std::size_t type_index, gram_accumulator& gram) { combine(type_index, gram); };
    options.owners.owns = [this](std::size_t type_index) { return owner(type_index) == rank_; };
    options.owners.meet = [this](arma::mat& universal) { return meet(universal); };
    options.owners.share_basis = [this](eigenpairs& top) { share_basis(top); };
    options.owners.gather = [this](std::vector<type_spectrum>& types) { gather(types); };
    options.owners.share_type_basis = [this](std::size_t type_index, arma::mat& basis) { share_type_basis(type_index, basis); };
    options.owners.gather_matrices = [this](std::vector<matrix_spectrum>& rows) { gather_matrices(rows); };
}

void rank_group::sum(std::span<double> values) {
    if (size_ > 1) combine_sketch(values, combine_op::sum);
}

rank_outcome rank_group::agree(const rank_outcome& mine) {
    if (size_ == 1) return mine;
    // The lowest failing rank speaks for all.
    const int failing = mine.status != 0 ? rank_ : size_;
    int first = size_;
    check(MPI_Allreduce(&failing, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
    if (first == size_) return {};
    constexpr int message_bytes = 4096;
    struct {
        int status;
        char text[message_bytes];
    } report{};
    if (rank_ == first) {
        report.status = mine.status;
        std::memcpy(report.text, mine.message.data(), std::min<std::size_t>(mine.message.size(), message_bytes - 1));
    }
    check(MPI_Bcast(&report, sizeof report, MPI_BYTE, first, MPI_COMM_WORLD), "MPI_Bcast");
    return {report.status, report.text};
}

std::vector<rank_traffic> rank_group::traffic() {
    if (size_ == 1) return {traffic_};
    const std::uint64_t mine[3] = {traffic_.sent, traffic_.received, traffic_.types};
    std::vector<std::uint64_t> all(rank_ == 0 ? 3 * static_cast<std::size_t>(size_) : 0);
    check(MPI_Gather(mine, 3, MPI_UINT64_T, all.data(), 3, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Gather");
    std::vector<rank_traffic> out;
    for (std::size_t i = 0; i + 2 < all.size(); i += 3) out.push_back({all[i], all[i + 1], all[i + 2]});
    return out;
}

void rank_group::send(std::span<const double> values, int to) {
    for (std::size_t first = 0; first < values.size(); first += piece_values) {
        const int count = static_cast<int>(std::min(piece_values, values.size() - first));
        check(MPI_Send(values.data() + first, count, MPI_DOUBLE, to, state_tag, MPI_COMM_WORLD), "MPI_Send");
    }
    traffic_.sent += values.size() * sizeof(double);
}

void rank_group::receive(std::span<double> values, int from) {
    for (std::size_t first = 0; first < values.size(); first += piece_values) {
        const int count = static_cast<int>(std::min(piece_values, values.size() - first));
        check(MPI_Recv(values.data() + first, count, MPI_DOUBLE, from, state_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
              "MPI_Recv");
    }
    traffic_.received += values.size() * sizeof(double);
}

// Binomial-tree reduction onto `root`: relative rank v receives from v + 2^j
// while bit j of v is 0, then sends to v − 2^j. `add(from)` receives one
// child's part and adds it; `send_up(to)` sends this rank's sum.
template <class Add, class SendUp>
void reduce_onto(int root, int rank, int size, Add add, SendUp send_up) {
    const int relative = (rank - root + size) % size;
    auto absolute = [&](int v) { return (v + root) % size; };
    for (int mask = 1; mask < size; mask <<= 1) {
        if (relative & mask) {
            send_up(absolute(relative - mask));
            return;
        }
        if (relative + mask < size) add(absolute(relative + mask));
    }
}

// Type t's parts, summed onto its owner (rank t mod N); the other ranks'
// accumulators are left as they were and go unused.
void rank_group::combine(std::size_t type_index, gram_accumulator& gram) {
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    const std::size_t values = packed_upper_size(gram.dim()) + (gram.tracks_sum() ? gram.dim() : 0) + trailer_values;
    reduce_onto(
        owner(type_index), rank_, size_,
        [&](int from) {
            std::vector<double> buffer(values);
            receive(buffer, from);
            gram += unpack(gram.dim(), gram.tracks_sum(), std::move(buffer));
        },
        [&](int to) { send(pack(gram), to); });
    if (rank_ == owner(type_index)) ++traffic_.types;
}

bool rank_group::meet(arma::mat& universal) {
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    arma::mat part;
    reduce_onto(
        0, rank_, size_,
        [&](int from) {
            part.set_size(universal.n_rows, universal.n_cols);
            receive({part.memptr(), part.n_elem}, from);
            universal += part;
        },
        [&](int to) { send({universal.memptr(), universal.n_elem}, to); });
    return rank_ == 0;
}

void rank_group::share_basis(eigenpairs& top) {
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    broadcast(top.vectors, 0);
    if (rank_ != 0) top.values.set_size(top.vectors.n_cols);
    broadcast({top.values.memptr(), top.values.n_elem});
}

void rank_group::broadcast(arma::mat& matrix, int root) {
    std::uint64_t shape[2] = {matrix.n_rows, matrix.n_cols};  // not counted in the traffic: the cost model leaves it out
    check(MPI_Bcast(shape, 2, MPI_UINT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
    if (rank_ != root) matrix.set_size(shape[0], shape[1]);
    broadcast({matrix.memptr(), matrix.n_elem}, root);
}

void rank_group::broadcast(std::span<double> values, int root) {
    // MPI counts are ints: large spans go in pieces, like the states.
    for (std::size_t first = 0; first < values.size(); first += piece_values) {
        const int count = static_cast<int>(std::min(piece_values, values.size() - first));
        check(MPI_Bcast(values.data() + first, count, MPI_DOUBLE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
    const std::uint64_t bytes = values.size() * sizeof(double);
    if (rank_ == root)
        traffic_.sent += bytes * static_cast<std::uint64_t>(size_ - 1);
    else
        traffic_.received += bytes;
}

// Type t's top-k eigenvectors, from its owner to every rank (each projects its own matrices on them).
void rank_group::share_type_basis(std::size_t type_index, arma::mat& basis) {
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    broadcast(basis, owner(type_index));
}

// A matrix's row as one message from its reader to rank 0: r2_type,
// r2_universal and its eigenvalues (d, or N for a short matrix).
void rank_group::gather_matrices(std::vector<matrix_spectrum>& matrices) {
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    for (std::size_t m = 0; m < matrices.size(); ++m) {
        const int from = static_cast<int>(part_of_[m]);
        if (from == 0 || (rank_ != 0 && rank_ != from)) continue;
        matrix_spectrum& row = matrices[m];
        std::uint64_t values = row.eigenvalues.n_elem;
        if (rank_ == from) {
            std::vector<double> message{row.r2_type, row.r2_universal};
            message.insert(message.end(), row.eigenvalues.begin(), row.eigenvalues.end());
            check(MPI_Send(&values, 1, MPI_UINT64_T, 0, state_tag, MPI_COMM_WORLD), "MPI_Send");
            traffic_.sent += sizeof values;
            send(message, 0);
            continue;
        }
        check(MPI_Recv(&values, 1, MPI_UINT64_T, from, state_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
        traffic_.received += sizeof values;
        std::vector<double> message(2 + values);
        receive(message, from);
        row.r2_type = message[0];
        row.r2_universal = message[1];
        row.eigenvalues = arma::vec(message.data() + 2, values);
    }
}

// One of a pass's partial sums (rsvd.hpp's pass_combiner): reduced onto rank
// 0 in the tree's fixed order, then broadcast, so every rank continues from
// the same bits.
void rank_group::combine_sketch(std::span<double> values, combine_op op) {
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    std::vector<double> part;
    reduce_onto(
        0, rank_, size_,
        [&](int from) {
            part.resize(values.size());
            receive(part, from);
            for (std::size_t i = 0; i < values.size(); ++i)
                values[i] = op == combine_op::sum ? values[i] + part[i] : std::max(values[i], part[i]);
        },
        [&](int to) { send(values, to); });
    broadcast(values);
}

// A type's spectrum as one message: energy, the two rounding figures, the d
// eigenvalues and the universal capture.
void rank_group::gather(std::vector<type_spectrum>& types) {
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    for (std::size_t t = 0; t < types.size(); ++t) {
        const int from = owner(t);
        if (from == 0 || (rank_ != 0 && rank_ != from)) continue;
        type_spectrum& spectrum = types[t];
        if (rank_ == from) {
            std::vector<double> message{spectrum.energy, spectrum.rounding_bound, spectrum.rounding_estimate};
            message.insert(message.end(), spectrum.eigenvalues.begin(), spectrum.eigenvalues.end());
            message.insert(message.end(), spectrum.universal_capture.begin(), spectrum.universal_capture.end());
            const std::uint64_t sizes[2] = {spectrum.eigenvalues.n_elem, spectrum.universal_capture.n_elem};
            check(MPI_Send(sizes, 2, MPI_UINT64_T, 0, state_tag, MPI_COMM_WORLD), "MPI_Send");
            send(message, 0);
            traffic_.sent += sizeof sizes;
            continue;
        }
        std::uint64_t sizes[2] = {};
        check(MPI_Recv(sizes, 2, MPI_UINT64_T, from, state_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
        traffic_.received += sizeof sizes;
        std::vector<double> message(3 + sizes[0] + sizes[1]);
        receive(message, from);
        spectrum.energy = message[0];
        spectrum.rounding_bound = message[1];
        spectrum.rounding_estimate = message[2];
        spectrum.eigenvalues = arma::vec(message.data() + 3, sizes[0]);
        spectrum.universal_capture = arma::vec(message.data() + 3 + sizes[0], sizes[1]);
    }
}

}  // namespace adaptk
