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
#include <limits>
#include <system_error>
#include <utility>

namespace adaptk {

// Offsets past 4 GiB reach mmap and pread only with a 64-bit off_t (Meson
// builds with _FILE_OFFSET_BITS=64; 32-bit glibc defaults to 32 bits).
static_assert(sizeof(off_t) == 8, "build with -D_FILE_OFFSET_BITS=64");

namespace {

std::uint64_t page_size() noexcept {
    static const auto size = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

[[noreturn]] void throw_errno(int error, const std::filesystem::path& path, const std::string& what) {
    throw std::system_error(error, std::generic_category(), path.string() + ": " + what);
}

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

read_only_file::read_only_file(const std::filesystem::path& path)
    : descriptor_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), path_(path) {
    if (descriptor_ < 0) throw_errno(errno, path, "cannot open");
    read_only_file guard = std::move(*this);  // closes the descriptor if a check below throws
    struct stat info {};
    if (::fstat(guard.descriptor_, &info) != 0) throw_errno(errno, path, "cannot stat");
    if (S_ISDIR(info.st_mode)) throw_errno(EISDIR, path, "cannot map");
    if (!S_ISREG(info.st_mode)) throw_errno(EINVAL, path, "not a regular file");
    guard.size_ = static_cast<std::uint64_t>(info.st_size);  // off_t is 64-bit: no cut above 4 GiB
    *this = std::move(guard);
}

read_only_file::~read_only_file() {
    if (descriptor_ >= 0) ::close(descriptor_);
}

read_only_file::read_only_file(read_only_file&& other) noexcept
    : descriptor_(std::exchange(other.descriptor_, -1)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

read_only_file& read_only_file::operator=(read_only_file&& other) noexcept {
    if (this != &other) {
        if (descriptor_ >= 0) ::close(descriptor_);
        descriptor_ = std::exchange(other.descriptor_, -1);
        size_ = std::exchange(other.size_, 0);
        path_ = std::move(other.path_);
    }
    return *this;
}

void read_only_file::read(std::uint64_t offset, std::size_t length, std::byte* out) const {
    if (offset > size_ || length > size_ - offset)
        throw_errno(EIO, path_, "read of " + std::to_string(length) + " bytes at byte " + std::to_string(offset) +
                                    " runs past the end of the " + std::to_string(size_) + "-byte file");
    for (std::size_t done = 0; done < length;) {
        const ssize_t got = ::pread(descriptor_, out + done, length - done, static_cast<off_t>(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw_errno(errno, path_, "read failed at byte " + std::to_string(offset + done));
        if (got == 0)  // the same words as the SIGBUS handler's for a mapped read
            throw_errno(EIO, path_,
                        "the file shrank while it was being read (truncated or rewritten by another process): "
                        "nothing at byte " + std::to_string(offset + done));
        done += static_cast<std::size_t>(got);
    }
}

mapped_file::mapped_file(const read_only_file& file, std::uint64_t offset, std::size_t length) : offset_(offset) {
    if (offset >= file.size() || length == 0) {
        open_empty_ = true;
        return;
    }
    const std::uint64_t available = file.size() - offset;
    const std::uint64_t wanted = length == npos ? available : std::min<std::uint64_t>(length, available);
    const std::uint64_t start = offset / page_size() * page_size();
    const std::uint64_t span = offset - start + wanted;
    // A window beyond size_t (a 32-bit system, a file over 4 GiB) cannot be mapped at all.
    if (span > std::numeric_limits<std::size_t>::max())
        throw_errno(EFBIG, file.path(),
                    "cannot map " + std::to_string(wanted) + " bytes at byte " + std::to_string(offset) +
                        ": more than this system's address space");
    void* address = ::mmap(nullptr, static_cast<std::size_t>(span), PROT_READ, MAP_PRIVATE, file.descriptor(),
                           static_cast<off_t>(start));
    if (address == MAP_FAILED)
        throw_errno(errno, file.path(),
                    "cannot map " + std::to_string(wanted) + " bytes at byte " + std::to_string(offset));
    lead_ = static_cast<std::size_t>(offset - start);
    data_ = static_cast<const std::byte*>(address) + lead_;
    size_ = static_cast<std::size_t>(wanted);
}

mapped_file::mapped_file(const std::filesystem::path& path) : mapped_file(read_only_file(path), 0) {}

mapped_file::~mapped_file() { unmap(); }

mapped_file::mapped_file(mapped_file&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      offset_(std::exchange(other.offset_, 0)),
      lead_(std::exchange(other.lead_, 0)),
      open_empty_(std::exchange(other.open_empty_, false)) {}

mapped_file& mapped_file::operator=(mapped_file&& other) noexcept {
    if (this != &other) {
        unmap();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        offset_ = std::exchange(other.offset_, 0);
        lead_ = std::exchange(other.lead_, 0);
        open_empty_ = std::exchange(other.open_empty_, false);
    }
    return *this;
}

void mapped_file::release_pages() const noexcept { release_pages({data_, size_}); }

void mapped_file::release_pages(std::span<const std::byte> range) const noexcept {
    if (data_ == nullptr || range.empty()) return;
    const auto first = reinterpret_cast<std::uintptr_t>(range.data()) / page_size() * page_size();
    const auto end = reinterpret_cast<std::uintptr_t>(range.data() + range.size());
    // Only advice: a failure leaves the pages resident, nothing else.
    ::madvise(reinterpret_cast<void*>(first), end - first, MADV_DONTNEED);
}

void mapped_file::unmap() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_ - lead_), lead_ + size_);
    data_ = nullptr;
    size_ = 0;
    offset_ = 0;
    lead_ = 0;
    open_empty_ = false;
}


}  // namespace adaptk
