#pragma once
// Llama-named checkpoints built in memory for the numerical tests, and the
// spectral constructions whose answers are known in closed form.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <armadillo>

#include "adaptk/dtype.hpp"
#include "adaptk/safetensors_writer.hpp"

namespace adaptk::test {

struct named_matrix {
    std::string name;
    arma::mat w;  ///< [rows, cols] as the file stores it (row-major on disk)
};

/// Writes `matrices` as a safetensors checkpoint in `dir`, split over `shards`
/// files with an index when shards > 1. config.json is `config_json` when
/// given, else {"hidden_size": d}.
inline void write_model(const std::filesystem::path& dir, std::uint64_t d, const std::vector<named_matrix>& matrices,
                        dtype type, std::size_t shards = 1, const std::string& config_json = "") {
    std::filesystem::create_directories(dir);
    if (config_json.empty())
        std::ofstream(dir / "config.json") << "{\"hidden_size\": " << d << "}";
    else
        std::ofstream(dir / "config.json") << config_json;
    std::string weight_map;
    const std::size_t per_shard = (matrices.size() + shards - 1) / shards;
    for (std::size_t s = 0; s < shards; ++s) {
        const std::string file =
            shards == 1 ? "model.safetensors" : "model-" + std::to_string(s + 1) + "-of-" + std::to_string(shards) + ".safetensors";
        safetensors_writer writer(dir / file);
        const std::size_t first = s * per_shard;
        const std::size_t last = std::min(matrices.size(), first + per_shard);
        for (std::size_t i = first; i < last; ++i) {
            writer.declare(matrices[i].name, type, {matrices[i].w.n_rows, matrices[i].w.n_cols});
            weight_map += (weight_map.empty() ? "" : ",") + ("\"" + matrices[i].name + "\": \"" + file + "\"");
        }
        for (std::size_t i = first; i < last; ++i) {
            const arma::mat row_major = matrices[i].w.t();
            writer.write_values(std::span<const double>(row_major.memptr(), row_major.n_elem));
        }
        writer.finish();
    }
    if (shards > 1) std::ofstream(dir / "model.safetensors.index.json") << "{\"weight_map\": {" << weight_map << "}}";
}

/// A random n×r matrix with orthonormal columns (seeded by the caller's arma RNG).
inline arma::mat random_orthonormal(std::size_t n, std::size_t r) {
    arma::mat q, unused;
    arma::qr_econ(q, unused, arma::mat(n, r, arma::fill::randn));
    return q;
}

}  // namespace adaptk::test
