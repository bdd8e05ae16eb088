#include "detail/spill.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

namespace adaptk::detail {
namespace {

[[noreturn]] void fail(const char* what) {
    throw std::system_error(errno ? errno : EIO, std::generic_category(),
                            std::string("temporary spill file: ") + what);
}

}  // namespace

std::uint64_t spill_file::byte_offset(std::size_t n, std::size_t slot, std::size_t first) noexcept {
    const std::uint64_t columns = std::uint64_t{n} * slot + first;
    return columns * n * sizeof(double);
}

std::filesystem::path spill_file::where(const std::filesystem::path& directory) {
    if (!directory.empty()) return directory;
    const char* tmpdir = std::getenv("TMPDIR");
    return tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
}

// mkstemp then unlink, rather than std::tmpfile(): glibc's tmpfile opens the
// fixed P_tmpdir with O_TMPFILE and ignores TMPDIR, and at d = 8192 a spill
// is gigabytes that the user must be able to place.
spill_file::spill_file(std::size_t n, const std::filesystem::path& directory) : n_(n) {
    const std::filesystem::path dir = where(directory);
    std::string name = (dir / "adaptk-spill-XXXXXX").string();
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0)
        throw std::system_error(errno, std::generic_category(),
                                dir.string() + ": cannot create the temporary spill file (--spill-dir or TMPDIR)");
    ::unlink(name.c_str());
}

spill_file::~spill_file() {
    if (fd_ >= 0) ::close(fd_);
}

void spill_file::write_columns(std::size_t slot, std::size_t first, std::size_t count, const double* in) {
    const int fd = fd_;
    const std::size_t bytes = n_ * count * sizeof(double);
    const std::uint64_t offset = byte_offset(n_, slot, first);
    const auto* data = reinterpret_cast<const char*>(in);
    for (std::size_t done = 0; done < bytes;) {
        const ssize_t wrote = ::pwrite(fd, data + done, bytes - done, static_cast<off_t>(offset + done));
        if (wrote <= 0) fail("write failed (disk full?)");
        done += static_cast<std::size_t>(wrote);
    }
}

std::size_t spill_file::write(const arma::mat& m) {
    write_columns(slots_, 0, n_, m.memptr());
    return slots_++;
}

void spill_file::overwrite(std::size_t slot, const arma::mat& m) { write_columns(slot, 0, n_, m.memptr()); }

void spill_file::add(std::size_t slot, const arma::mat& m) {
    arma::mat chunk(n_, std::min(chunk_columns, n_));
    for (std::size_t first = 0; first < n_; first += chunk_columns) {
        const std::size_t count = std::min(chunk_columns, n_ - first);
        read_columns(slot, first, count, chunk.memptr());
        chunk.head_cols(count) += m.cols(first, first + count - 1);
        write_columns(slot, first, count, chunk.memptr());
    }
}

void spill_file::read_columns(std::size_t slot, std::size_t first, std::size_t count, double* out) const {
    const int fd = fd_;
    const std::size_t bytes = n_ * count * sizeof(double);
    const std::uint64_t offset = byte_offset(n_, slot, first);
    auto* data = reinterpret_cast<char*>(out);
    for (std::size_t done = 0; done < bytes;) {
        const ssize_t got = ::pread(fd, data + done, bytes - done, static_cast<off_t>(offset + done));
        if (got <= 0) fail("read failed");
        done += static_cast<std::size_t>(got);
    }
}

void spill_file::read(std::size_t slot, double* out) const { read_columns(slot, 0, n_, out); }

void spill_file::read_float(std::size_t slot, float* out) const {
    std::vector<double> chunk(n_ * std::min(float_chunk_columns, n_));
    for (std::size_t first = 0; first < n_; first += float_chunk_columns) {
        const std::size_t count = std::min(float_chunk_columns, n_ - first);
        read_columns(slot, first, count, chunk.data());
        std::transform(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n_ * count), out + first * n_,
                       [](double value) { return static_cast<float>(value); });
    }
}

}  // namespace adaptk::detail
