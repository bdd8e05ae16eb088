#pragma once
// Square float64 matrices parked in an anonymous temporary file, so only one
// d×d accumulator needs to live in RAM while every type's Gram stays
// available for the universal-basis step (9 types × 32 MiB at d = 2048).

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include <armadillo>

namespace adaptk::detail {

class spill_file {
public:
    /// An unlinked temporary file for n×n matrices in `directory`; empty:
    /// $TMPDIR, else /tmp. Throws std::system_error naming the directory.
    spill_file(std::size_t n, const std::filesystem::path& directory);
    ~spill_file();
    spill_file(const spill_file&) = delete;
    spill_file& operator=(const spill_file&) = delete;

    /// Where a spill file goes for `directory` as the constructor takes it.
    static std::filesystem::path where(const std::filesystem::path& directory);

    /// Appends `m` (n×n) and returns its slot.
    std::size_t write(const arma::mat& m);
    /// Replaces the matrix in `slot` by `m`.
    void overwrite(std::size_t slot, const arma::mat& m);
    /// Adds `m` to the matrix in `slot`, a column chunk at a time.
    void add(std::size_t slot, const arma::mat& m);
    /// Reads columns [first, first + count) of slot into `out` (n×count, column-major).
    void read_columns(std::size_t slot, std::size_t first, std::size_t count, double* out) const;
    /// The whole matrix in slot into `out` (n×n, column-major).
    void read(std::size_t slot, double* out) const;
    /// The whole matrix in slot rounded to float32 into `out` (n×n,
    /// column-major), read float_chunk_columns at a time: no float64 copy beside it.
    void read_float(std::size_t slot, float* out) const;

    /// File offset of column `first` of `slot` for n×n matrices, in 64 bits:
    /// the slots of 9 types at n = 8192 span 4.5 GiB, past any 32-bit size_t.
    static std::uint64_t byte_offset(std::size_t n, std::size_t slot, std::size_t first) noexcept;

    /// Columns moved per chunk by add() and by callers reading in chunks:
    /// n×128 doubles (2 MiB at n = 2048).
    static constexpr std::size_t chunk_columns = 128;
    /// Columns per float64 read in read_float(): n×32 doubles (512 KiB at n = 2048).
    static constexpr std::size_t float_chunk_columns = 32;

private:
    void write_columns(std::size_t slot, std::size_t first, std::size_t count, const double* in);

    std::size_t n_;
    std::size_t slots_ = 0;
    int fd_ = -1;
};

}  // namespace adaptk::detail
