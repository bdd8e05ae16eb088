#pragma once
// The processes of one run. Started by mpirun (and built with -Dmpi), every
// rank streams the matrices split_by_bytes gives it and the type Grams are
// combined with gram_accumulator::operator+=, MPI being only the transport: a
// reduce-scatter by type, type t reduced over a binomial tree onto its owner,
// rank t mod N (each rank sends its state once per type; payload
// d(d+1)/2 + d + 3 doubles, gram_state). The owner decomposes it while the
// others stream on, so the eigensolvers run on different ranks at once. The
// owners' shares of C_u meet on rank 0 (a binomial-tree reduction of d²
// doubles), which finds the universal eigenpairs and broadcasts them (d·k);
// each owner computes its types' capture and sends its spectra to rank 0,
// which alone holds the whole result and writes. With per-matrix statistics
// (layers) each matrix is decomposed and projected on the rank that read it:
// the owners broadcast their types' top-k bases (d·k each) and the rows are
// gathered onto rank 0 (d + 2 doubles a matrix). The randomized method sums
// each pass's sketches over the ranks (combine_sketch: a binomial-tree
// reduction onto rank 0, then a broadcast, so every rank has the same bits),
// and every rank then grows the same Krylov bases for its next pass.
// Started any other way (or built without MPI) the group has one rank and
// changes nothing.
//
// Two programs: adaptk-stream links the group of one (ranks_single.cpp) and
// never loads MPI's libraries (1.5 MiB of resident pages, which the smallest
// --max-memory plans cannot spare); adaptk-stream-mpi, built when MPI is
// found, links ranks_mpi.cpp. Started by mpirun, adaptk-stream replaces
// itself with adaptk-stream-mpi from its own directory (execv, before
// MPI_Init, so mpirun never sees the difference).
//
// Failures: a rank that fails (bad input, refused --max-memory, I/O) calls
// agree(); the others learn of it at their next agreement (before the split,
// before each type's reduction, and at the end): every collective step starts
// with one, so no rank waits forever in a collective the failed rank never
// joins. Every rank then exits with the failing rank's status, and only
// rank 0 prints its message.

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "adaptk/analysis.hpp"
#include "adaptk/weight_matrix.hpp"

namespace adaptk {

/// What the ranks agreed on: 0 and no message when every rank succeeded,
/// else the status and message of the lowest failing rank.
struct rank_outcome {
    int status = 0;
    std::string message;
};

/// Thrown on the ranks that learn, inside a collective step, that another failed.
class rank_failure : public std::runtime_error {
public:
    explicit rank_failure(rank_outcome outcome) : std::runtime_error(outcome.message), outcome_(std::move(outcome)) {}
    const rank_outcome& outcome() const noexcept { return outcome_; }

private:
    rank_outcome outcome_;
};

/// Bytes one rank sent and received (message payloads, exact), and the type
/// Grams it decomposed.
struct rank_traffic {
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::uint64_t types = 0;
};

/// True in a process mpirun (Open MPI's, or a PMIx launcher) started.
bool started_by_mpirun();

class rank_group {
public:
    /// Joins the run: MPI_Init when started by mpirun (adaptk-stream-mpi);
    /// without MPI, under mpirun, execv of adaptk-stream-mpi beside the
    /// running program, or a refusal when there are several ranks and no
    /// such program.
    rank_group(int& argc, char**& argv);
    ~rank_group();
    rank_group(const rank_group&) = delete;
    rank_group& operator=(const rank_group&) = delete;

    int rank() const noexcept { return rank_; }
    int size() const noexcept { return size_; }

    /// Resident memory the transport adds to the run (its libraries' pages,
    /// and MPI_Init's runtime once joined), for analysis_options::transport_bytes.
    std::uint64_t transport_bytes() const noexcept;

    /// Points options.reads at this rank's share of `matrices`, and by
    /// options.how options.combine and options.owners (exact) or
    /// options.combine_sketches (rsvd) at the collective steps above (nothing
    /// for one rank). Not collective: a memory plan of either method takes
    /// it before the method is chosen. The group must outlive the analysis.
    void attach(const std::vector<weight_matrix>& matrices, analysis_options& options);

    /// Collective: checks that every rank was given the same matrices and
    /// analysis options (throws if not), then attach().
    void share(const std::vector<weight_matrix>& matrices, analysis_options& options);

    /// Collective: `values` replaced by their elementwise sum over the ranks,
    /// the same bits on every rank (nothing for one rank).
    void sum(std::span<double> values);

    /// Collective: every rank passes its outcome (status 0: fine); all get
    /// the same one.
    rank_outcome agree(const rank_outcome& mine);

    /// Collective, after a successful agree(): every rank's traffic, on rank 0
    /// (empty elsewhere).
    std::vector<rank_traffic> traffic();

private:
    int owner(std::size_t type_index) const noexcept { return static_cast<int>(type_index % static_cast<std::size_t>(size_)); }
    void combine(std::size_t type_index, gram_accumulator& gram);
    bool meet(arma::mat& universal);
    void share_basis(eigenpairs& top);
    void gather(std::vector<type_spectrum>& types);
    void share_type_basis(std::size_t type_index, arma::mat& basis);
    void gather_matrices(std::vector<matrix_spectrum>& matrices);
    void combine_sketch(std::span<double> values, combine_op op);
    /// From `root` to every rank, counted like sends to each.
    void broadcast(std::span<double> values, int root = 0);
    /// Its shape, then its values, from `root` to every rank.
    void broadcast(arma::mat& matrix, int root);
    /// Point-to-point doubles, counted in traffic_ (sizes above INT_MAX go in pieces).
    void send(std::span<const double> values, int to);
    void receive(std::span<double> values, int from);

    int rank_ = 0;
    int size_ = 1;
    bool joined_ = false;  ///< MPI_Init was called
    std::vector<std::size_t> part_of_;  ///< the rank that reads each matrix
    rank_traffic traffic_;
};

}  // namespace adaptk
