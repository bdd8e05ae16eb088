// What both transports of ranks.hpp share.
#include <cstdlib>

#include "adaptk/ranks.hpp"

namespace adaptk {

// mpirun leaves these in every rank's environment.
bool started_by_mpirun() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (std::getenv(name) != nullptr) return true;
    return false;
}

}  // namespace adaptk
