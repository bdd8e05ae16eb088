#include "adaptk/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace adaptk {
namespace {

std::size_t page_size() noexcept {
    static const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

[[noreturn]] void throw_errno(int error, const std::filesystem::path& path, const char* what) {
    throw std::system_error(error, std::generic_category(), path.string() + ": " + what);
}

// Closes the descriptor on every path out of the constructor; the mapping
// stays valid after close.
struct descriptor {
    int fd;
    ~descriptor() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

mapped_file::mapped_file(const std::filesystem::path& path) : path_(path) {
    descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file.fd < 0) throw_errno(errno, path, "cannot open");
    struct stat info {};
    if (::fstat(file.fd, &info) != 0) throw_errno(errno, path, "cannot stat");
    if (S_ISDIR(info.st_mode)) throw_errno(EISDIR, path, "cannot map");
    if (!S_ISREG(info.st_mode)) throw_errno(EINVAL, path, "not a regular file");
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ == 0) {
        open_empty_ = true;
        return;
    }
    void* address = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd, 0);
    if (address == MAP_FAILED) throw_errno(errno, path, "cannot map");
    data_ = static_cast<const std::byte*>(address);
}

mapped_file::~mapped_file() { unmap(); }

mapped_file::mapped_file(mapped_file&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      open_empty_(std::exchange(other.open_empty_, false)),
      path_(std::move(other.path_)) {}

mapped_file& mapped_file::operator=(mapped_file&& other) noexcept {
    if (this != &other) {
        unmap();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        open_empty_ = std::exchange(other.open_empty_, false);
        path_ = std::move(other.path_);
    }
    return *this;
}

void mapped_file::unmap() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
    open_empty_ = false;
}

// madvise(advice) on the pages [offset, offset + length) touches, clamped to
// the file: the start is rounded down to a page, the kernel rounds the end up.
// Nothing to do (empty file, range past the end) counts as success.
bool mapped_file::advise_pages(std::size_t offset, std::size_t length, int advice) const noexcept {
    if (data_ == nullptr || offset >= size_) return true;
    if (length > size_ - offset) length = size_ - offset;
    const std::size_t begin = offset / page_size() * page_size();
    return ::madvise(const_cast<std::byte*>(data_) + begin, offset + length - begin, advice) == 0;
}

bool mapped_file::advise(access pattern, std::size_t offset, std::size_t length) const noexcept {
    int advice = MADV_NORMAL;
    switch (pattern) {
    case access::normal: advice = MADV_NORMAL; break;
    case access::sequential: advice = MADV_SEQUENTIAL; break;
    case access::random: advice = MADV_RANDOM; break;
    case access::will_need: advice = MADV_WILLNEED; break;
    }
    return advise_pages(offset, length, advice);
}

bool mapped_file::populate(std::size_t offset, std::size_t length) const noexcept {
#ifdef MADV_POPULATE_READ
    if (advise_pages(offset, length, MADV_POPULATE_READ)) return true;
    if (errno != EINVAL) return false;  // EINVAL: a kernel older than 5.14
#endif
    return advise_pages(offset, length, MADV_WILLNEED);
}

bool mapped_file::release(std::size_t offset, std::size_t length) const noexcept {
    return advise_pages(offset, length, MADV_DONTNEED);
}

}  // namespace adaptk
