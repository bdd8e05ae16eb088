// rank_group without MPI (built with -Dmpi=disabled or no MPI found): one
// rank, and the analysis runs as it always did.
#include "adaptk/ranks.hpp"

namespace adaptk {

rank_group::rank_group(int&, char**&) {}
rank_group::~rank_group() = default;

void rank_group::share(const std::vector<weight_matrix>&, analysis_options&) {}

void rank_group::sum(std::span<double>) {}

rank_outcome rank_group::agree(const rank_outcome& mine) { return mine; }

std::vector<rank_traffic> rank_group::traffic() { return {traffic_}; }

}  // namespace adaptk
