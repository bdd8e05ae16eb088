// rank_group without MPI: one rank, and the analysis runs as it always did.
// Under mpirun the process becomes adaptk-stream-mpi (ranks.hpp), so the
// MPI libraries are loaded only by runs that use them.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include "adaptk/ranks.hpp"

namespace adaptk {
namespace {

std::filesystem::path mpi_program() {
    std::error_code error;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
    return error ? std::filesystem::path() : self.parent_path() / "adaptk-stream-mpi";
}

}  // namespace

rank_group::rank_group(int&, char**& argv) {
    if (!started_by_mpirun()) return;
    const std::filesystem::path program = mpi_program();
    if (!program.empty() && ::access(program.c_str(), X_OK) == 0) {
        ::execv(program.c_str(), argv);
        throw std::system_error(errno, std::generic_category(), "cannot start " + program.string());
    }
    const char* world = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (world != nullptr && std::strcmp(world, "1") != 0)
        throw std::runtime_error("started by mpirun, but this build has no MPI (adaptk-stream-mpi is not beside " +
                                 program.parent_path().string() +
                                 "): every rank would analyse the whole model; build with -Dmpi=enabled or start one process");
}

rank_group::~rank_group() = default;

std::uint64_t rank_group::transport_bytes() const noexcept { return 0; }

void rank_group::attach(const std::vector<weight_matrix>&, analysis_options&) {}

void rank_group::share(const std::vector<weight_matrix>&, analysis_options&) {}

void rank_group::sum(std::span<double>) {}

rank_outcome rank_group::agree(const rank_outcome& mine) { return mine; }

std::vector<rank_traffic> rank_group::traffic() { return {traffic_}; }

}  // namespace adaptk
