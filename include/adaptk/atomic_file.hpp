#pragma once
// Output that appears complete or not at all.
// atomic_file: written as "<path>.<pid>.tmp" beside the target (the pid keeps
// two concurrent writers of one target apart), fsynced and renamed over it
// by commit(). Dropped without commit (an exception, a failed write), the
// temporary is removed.
// atomic_directory: the same for a directory of files (a report): they are
// written into ".<name>.<pid>.tmp" beside it, and commit() swaps that in
// whole, so no file of an earlier content survives beside the new ones.

#include <filesystem>
#include <fstream>

namespace adaptk {

class atomic_file {
public:
    /// Creates "<path>.<pid>.tmp". Throws std::system_error naming it on failure.
    explicit atomic_file(std::filesystem::path path);
    ~atomic_file();
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;

    std::ostream& stream() noexcept { return out_; }
    /// Flushes, checks every write succeeded, renames into place.
    /// Throws std::system_error naming the file on failure.
    void commit();

private:
    std::filesystem::path path_;
    std::filesystem::path temp_path_;
    std::ofstream out_;
    bool committed_ = false;
};

class atomic_directory {
public:
    /// Creates the staging directory beside `path` (and `path`'s parent if
    /// missing). Throws std::system_error naming the path when `path` exists
    /// and is not a directory, or the staging directory cannot be made.
    explicit atomic_directory(std::filesystem::path path);
    ~atomic_directory();
    atomic_directory(const atomic_directory&) = delete;
    atomic_directory& operator=(const atomic_directory&) = delete;

    /// Where the files go until commit().
    const std::filesystem::path& staging() const noexcept { return staging_; }
    /// fsyncs the staging directory and swaps it in for `path` (one
    /// renameat2 RENAME_EXCHANGE when `path` exists; two renames where the
    /// file system cannot exchange), then removes the old content. Throws
    /// std::system_error naming the path on failure; `path` is then unchanged.
    void commit();

private:
    std::filesystem::path path_;
    std::filesystem::path staging_;
    bool committed_ = false;
};

}  // namespace adaptk
