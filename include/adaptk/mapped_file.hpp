#pragma once
// A read-only memory mapping of a whole file, in the spirit of mio's
// mmap_source: RAII, move-only, data()/size(). Streaming readers add hints so
// resident memory stays bounded: read ahead sequentially, and drop the pages
// they have consumed (MADV_DONTNEED on a private read-only file mapping just
// discards clean page-table entries; the data stays in the page cache).

#include <cstddef>
#include <filesystem>

namespace adaptk {

class mapped_file {
public:
    enum class access { normal, sequential, random, will_need };

    mapped_file() noexcept = default;
    /// Maps `path` read-only. An empty file gives size() == 0 and data() == nullptr.
    /// Throws std::system_error (with the path) when it cannot be opened or mapped,
    /// or when it is a directory.
    explicit mapped_file(const std::filesystem::path& path);
    ~mapped_file();

    mapped_file(mapped_file&& other) noexcept;
    mapped_file& operator=(mapped_file&& other) noexcept;
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;

    const std::byte* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool is_open() const noexcept { return data_ != nullptr || open_empty_; }
    const std::filesystem::path& path() const noexcept { return path_; }

    /// Advises the kernel about [offset, offset + length) (clamped to the file,
    /// widened to whole pages). Returns false if the kernel refused; callers only
    /// warn, a hint is never required for correctness.
    bool advise(access pattern, std::size_t offset = 0, std::size_t length = npos) const noexcept;

    /// Maps the pages of [offset, offset + length) in one call (MADV_POPULATE_READ,
    /// Linux 5.14+; MADV_WILLNEED read-ahead on older kernels) instead of one
    /// page fault per 64 KiB as the reader walks them. Returns false if refused.
    bool populate(std::size_t offset, std::size_t length) const noexcept;

    /// Drops every page that [offset, offset + length) touches from this
    /// process's resident set. Nothing is lost: the mapping is read-only and
    /// private, so a dropped page is read back from the page cache on its next
    /// access (a neighbour's bytes on a shared edge page cost one minor fault).
    /// Rounding outward matters: tensors rarely start on a page boundary, and
    /// keeping two edge pages per streamed block grows with the model.
    /// Returns false if the kernel refused.
    bool release(std::size_t offset, std::size_t length) const noexcept;

    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

private:
    void unmap() noexcept;
    bool advise_pages(std::size_t offset, std::size_t length, int advice) const noexcept;

    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    bool open_empty_ = false;
    std::filesystem::path path_;
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
