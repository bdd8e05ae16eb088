#pragma once
// Read-only access to a file without ever mapping all of it, so a checkpoint
// larger than the address space (a 32-bit system has 3 GiB of it, and a
// 32-bit size_t) still reads: read_only_file holds the descriptor, its 64-bit
// size and positioned reads; mapped_file maps one window of it, in the spirit
// of mio's mmap_source(handle, offset, length): RAII, move-only, any offset
// (the mapping starts at the page below it, data() points at the offset).
// Streaming readers map the block in flight and unmap it when done, so the
// resident set holds one block of file pages, never a whole tensor.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace adaptk {

class read_only_file {
public:
    read_only_file() noexcept = default;
    /// Opens `path` for reading. Throws std::system_error (with the path) when it
    /// cannot be opened, or is a directory or not a regular file.
    explicit read_only_file(const std::filesystem::path& path);
    ~read_only_file();

    read_only_file(read_only_file&& other) noexcept;
    read_only_file& operator=(read_only_file&& other) noexcept;
    read_only_file(const read_only_file&) = delete;
    read_only_file& operator=(const read_only_file&) = delete;

    bool is_open() const noexcept { return descriptor_ >= 0; }
    int descriptor() const noexcept { return descriptor_; }
    std::uint64_t size() const noexcept { return size_; }
    const std::filesystem::path& path() const noexcept { return path_; }

    /// Reads exactly `length` bytes at `offset` into `out` (pread: no mapping,
    /// the page cache serves it). Throws std::system_error naming the file on
    /// an I/O error or when the range runs past the end.
    void read(std::uint64_t offset, std::size_t length, std::byte* out) const;

private:
    int descriptor_ = -1;
    std::uint64_t size_ = 0;
    std::filesystem::path path_;
};

class mapped_file {
public:
    mapped_file() noexcept = default;
    /// Maps bytes [offset, offset + length) of `file` read-only; `npos` maps to
    /// the end. The range is clamped to the file; an empty range gives size() == 0
    /// and data() == nullptr. Throws std::system_error naming the file when the
    /// window does not fit this system's address space or mmap fails.
    mapped_file(const read_only_file& file, std::uint64_t offset, std::size_t length = npos);
    /// Maps the whole file at `path` (small files; the pipeline maps windows).
    explicit mapped_file(const std::filesystem::path& path);
    ~mapped_file();

    mapped_file(mapped_file&& other) noexcept;
    mapped_file& operator=(mapped_file&& other) noexcept;
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;

    /// The first byte of the window (file offset offset()).
    const std::byte* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::uint64_t offset() const noexcept { return offset_; }
    bool is_open() const noexcept { return data_ != nullptr || open_empty_; }
    /// Drops the window's resident pages from this process (madvise
    /// MADV_DONTNEED); a later read maps them again from the file. For a
    /// mapping read piece by piece, so its pages do not add up in RSS.
    void release_pages() const noexcept;
    /// The same for `range`, a part of the window (from the start of its first page).
    void release_pages(std::span<const std::byte> range) const noexcept;

    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

private:
    void unmap() noexcept;

    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    std::uint64_t offset_ = 0;
    std::size_t lead_ = 0;  ///< bytes from the page boundary the mapping starts at to data_
    bool open_empty_ = false;
};

/// Makes a read of a mapped file that has shrunk since it was mapped (another
/// process truncated or rewrote it; the kernel sends SIGBUS) end the process
/// with one line on stderr, "<program>: <path>: the file shrank while it was
/// being read (truncated or rewritten by another process)", and exit status 1,
/// instead of dying by the signal. Replaces the process's SIGBUS action; a
/// SIGBUS at an address no file backs gets the default action. For programs,
/// not libraries: nothing unwinds, so only a process that writes its results
/// after reading its input (like adaptk-stream) leaves nothing half-written.
void exit_on_shrunk_mapping(const char* program);

}  // namespace adaptk
