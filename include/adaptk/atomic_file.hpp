#pragma once
// An output file that appears complete or not at all: written as
// "<path>.<pid>.tmp" beside the target (the pid keeps two concurrent writers
// of one target apart), renamed over it by commit(). Dropped
// without commit (an exception, a failed write), the temporary is removed.

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

}  // namespace adaptk
