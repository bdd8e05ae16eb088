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
#include <string>

#include "adaptk/partition.hpp"
#include "adaptk/ranks.hpp"

namespace adaptk {
namespace {

// mpirun (Open MPI's, or a PMIx launcher) leaves these in every rank's environment.
bool started_by_mpirun() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (std::getenv(name) != nullptr) return true;
    return false;
}

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

void rank_group::share(const std::vector<weight_matrix>& matrices, analysis_options& options) {
    if (size_ == 1) return;
    // A rank that failed before its share (bad input, --max-memory) is in agree() already.
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    // Every rank must split the same list (mpirun's MPMD form can start ranks on different models).
    std::string names;
    for (const auto& m : matrices) names += m.name + ':' + std::to_string(m.rows) + 'x' + std::to_string(m.cols) + ';';
    const std::uint64_t mine = std::hash<std::string>{}(names);
    std::uint64_t lowest = 0, highest = 0;
    check(MPI_Allreduce(&mine, &lowest, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
    check(MPI_Allreduce(&mine, &highest, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    if (lowest != highest) throw std::runtime_error("the MPI ranks were given models with different weight matrices");
    options.reads = [part_of = split_by_bytes(matrices, static_cast<std::size_t>(size_)), this](std::size_t m) {
        return part_of[m] == static_cast<std::size_t>(rank_);
    };
    options.combine = [this](std::size_t type_index, gram_accumulator& gram) { combine(type_index, gram); };
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
    const std::uint64_t mine[2] = {traffic_.sent, traffic_.received};
    std::vector<std::uint64_t> all(rank_ == 0 ? 2 * static_cast<std::size_t>(size_) : 0);
    check(MPI_Gather(mine, 2, MPI_UINT64_T, all.data(), 2, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Gather");
    std::vector<rank_traffic> out;
    for (std::size_t i = 0; i + 1 < all.size(); i += 2) out.push_back({all[i], all[i + 1]});
    return out;
}

// Reduce to root = t mod N over a binomial tree (relative rank v receives
// from v + 2^j while bit j of v is 0, then sends to v − 2^j), then broadcast
// the total down the same tree.
void rank_group::combine(std::size_t type_index, gram_accumulator& gram) {
    if (const rank_outcome outcome = agree({}); outcome.status != 0) throw rank_failure(outcome);
    const int root = static_cast<int>(type_index % static_cast<std::size_t>(size_));
    const int relative = (rank_ - root + size_) % size_;
    auto absolute = [&](int v) { return (v + root) % size_; };
    const std::size_t values = packed_upper_size(gram.dim()) + (gram.tracks_sum() ? gram.dim() : 0) + trailer_values;

    auto send = [&](const std::vector<double>& buffer, int to) {
        for (std::size_t first = 0; first < buffer.size(); first += piece_values) {
            const int count = static_cast<int>(std::min(piece_values, buffer.size() - first));
            check(MPI_Send(buffer.data() + first, count, MPI_DOUBLE, to, state_tag, MPI_COMM_WORLD), "MPI_Send");
        }
        traffic_.sent += buffer.size() * sizeof(double);
    };
    auto receive = [&](int from) {
        std::vector<double> buffer(values);
        for (std::size_t first = 0; first < buffer.size(); first += piece_values) {
            const int count = static_cast<int>(std::min(piece_values, buffer.size() - first));
            check(MPI_Recv(buffer.data() + first, count, MPI_DOUBLE, from, state_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                  "MPI_Recv");
        }
        traffic_.received += buffer.size() * sizeof(double);
        return buffer;
    };

    int mask = 1;
    for (; mask < size_; mask <<= 1) {
        if (relative & mask) {
            send(pack(gram), absolute(relative - mask));
            break;
        }
        if (relative + mask < size_) gram += unpack(gram.dim(), gram.tracks_sum(), receive(absolute(relative + mask)));
    }
    // Broadcast: a non-root receives the total from the parent it sent to,
    // then every rank passes it to its children below that bit.
    if (relative != 0) gram = unpack(gram.dim(), gram.tracks_sum(), receive(absolute(relative - mask)));
    std::vector<double> total;
    for (mask >>= 1; mask > 0; mask >>= 1)
        if (relative + mask < size_) {
            if (total.empty()) total = pack(gram);
            send(total, absolute(relative + mask));
        }
}

}  // namespace adaptk
