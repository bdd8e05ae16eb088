#include "adaptk/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
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

// --- SIGBUS on a shrunk mapping. Everything below runs in a signal handler:
// only async-signal-safe calls (open, read, write, _exit), no allocation.

const char* sigbus_program = "";

void write_all(const char* text, std::size_t length) noexcept {
    while (length > 0) {
        const ssize_t wrote = ::write(STDERR_FILENO, text, length);
        if (wrote <= 0) return;
        text += wrote;
        length -= static_cast<std::size_t>(wrote);
    }
}
void write_text(const char* text) noexcept { write_all(text, std::strlen(text)); }

// Hex digits at `text`, advancing past them.
std::uintptr_t parse_hex(const char*& text) noexcept {
    std::uintptr_t value = 0;
    for (;; ++text) {
        const char c = *text;
        if (c >= '0' && c <= '9') value = value * 16 + static_cast<std::uintptr_t>(c - '0');
        else if (c >= 'a' && c <= 'f') value = value * 16 + static_cast<std::uintptr_t>(c - 'a' + 10);
        else return value;
    }
}

// Copies the path of the file mapped at `address` into `path` from
// /proc/self/maps ("begin-end perms offset dev inode /path"): the kernel's
// record, so no bookkeeping in mapped_file is needed.
bool mapped_path_of(std::uintptr_t address, char* path, std::size_t capacity) noexcept {
    const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char line[4096 + 256];
    std::size_t used = 0;
    bool found = false;
    for (;;) {
        const ssize_t got = ::read(fd, line + used, sizeof line - 1 - used);
        if (got <= 0) break;
        used += static_cast<std::size_t>(got);
        char* end;
        while ((end = static_cast<char*>(std::memchr(line, '\n', used))) != nullptr) {
            *end = '\0';
            const char* text = line;
            const std::uintptr_t begin = parse_hex(text);
            ++text;  // '-'
            const std::uintptr_t stop = parse_hex(text);
            const char* file = std::strchr(text, '/');
            if (begin <= address && address < stop && file != nullptr) {
                const std::size_t length = std::min(std::strlen(file), capacity - 1);
                std::memcpy(path, file, length);
                path[length] = '\0';
                found = true;
                break;
            }
            used -= static_cast<std::size_t>(end + 1 - line);
            std::memmove(line, end + 1, used);
        }
        if (found || used == sizeof line - 1) break;  // found, or a line longer than any path
    }
    ::close(fd);
    return found;
}

void on_sigbus(int signal, siginfo_t* info, void*) {
    static char path[4096];
    if (!mapped_path_of(reinterpret_cast<std::uintptr_t>(info->si_addr), path, sizeof path)) {
        std::signal(signal, SIG_DFL);
        std::raise(signal);
        return;
    }
    write_text(sigbus_program);
    write_text(": ");
    write_text(path);
    write_text(": the file shrank while it was being read (truncated or rewritten by another process)\n");
    ::_exit(1);
}

}  // namespace

void exit_on_shrunk_mapping(const char* program) {
    sigbus_program = program;
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, nullptr);
}

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
