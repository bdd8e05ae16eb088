#pragma once
// A type's spectrum as the analysis would leave it, from hand-chosen
// eigenvalues and universal captures, for the tests of the tables built on it.

#include <armadillo>
#include <cstdint>

#include "adaptk/analysis.hpp"

namespace adaptk::test {

/// `vectors` vectors of length d: parameters vectors·d, energy Σλ.
inline type_spectrum hand_spectrum(weight_type type, std::uint64_t vectors, std::uint64_t d, arma::vec lambda,
                                   arma::vec capture) {
    type_spectrum t;
    t.type = type;
    t.matrices = 2;
    t.vectors = vectors;
    t.parameters = vectors * d;
    t.energy = arma::accu(lambda);
    t.eigenvalues = std::move(lambda);
    t.universal_capture = std::move(capture);
    return t;
}

}  // namespace adaptk::test
