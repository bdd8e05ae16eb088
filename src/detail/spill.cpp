#include "detail/spill.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace adaptk::detail {
namespace {

[[noreturn]] void fail(const char* what) {
    throw std::system_error(errno ? errno : EIO, std::generic_category(),
                            std::string("temporary spill file: ") + what);
}

}  // namespace

spill_file::spill_file(std::size_t n) : n_(n), file_(std::tmpfile()) {
    if (!file_) fail("cannot create (is TMPDIR writable?)");
}

std::size_t spill_file::write(const arma::mat& m) {
    const int fd = fileno(file_.get());
    const std::size_t bytes = n_ * n_ * sizeof(double);
    const auto* data = reinterpret_cast<const char*>(m.memptr());
    for (std::size_t done = 0; done < bytes;) {
        const ssize_t wrote = ::pwrite(fd, data + done, bytes - done, static_cast<off_t>(slots_ * bytes + done));
        if (wrote <= 0) fail("write failed (disk full?)");
        done += static_cast<std::size_t>(wrote);
    }
    return slots_++;
}

void spill_file::read_columns(std::size_t slot, std::size_t first, std::size_t count, double* out) const {
    const int fd = fileno(file_.get());
    const std::size_t bytes = n_ * count * sizeof(double);
    const std::size_t offset = (slot * n_ * n_ + first * n_) * sizeof(double);
    auto* data = reinterpret_cast<char*>(out);
    for (std::size_t done = 0; done < bytes;) {
        const ssize_t got = ::pread(fd, data + done, bytes - done, static_cast<off_t>(offset + done));
        if (got <= 0) fail("read failed");
        done += static_cast<std::size_t>(got);
    }
}

arma::mat spill_file::read(std::size_t slot) const {
    arma::mat m(n_, n_);
    read_columns(slot, 0, n_, m.memptr());
    return m;
}

}  // namespace adaptk::detail
