#include "adaptk/atomic_file.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace adaptk {

atomic_file::atomic_file(std::filesystem::path path)
    : path_(std::move(path)), temp_path_(path_.string() + "." + std::to_string(::getpid()) + ".tmp") {
    out_.open(temp_path_, std::ios::binary | std::ios::trunc);
    if (!out_) throw std::system_error(errno, std::generic_category(), temp_path_.string() + ": cannot create");
}

atomic_file::~atomic_file() {
    if (committed_) return;
    out_.close();
    std::error_code ignored;
    std::filesystem::remove(temp_path_, ignored);
}

namespace {

// fsync through a descriptor of its own: std::ofstream exposes none.
void sync_path(const std::filesystem::path& path, bool directory) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
    if (fd < 0 || ::fsync(fd) != 0) {
        const int error = errno;
        if (fd >= 0) ::close(fd);
        throw std::system_error(error, std::generic_category(), path.string() + ": cannot sync to disk");
    }
    ::close(fd);
}

std::filesystem::path parent_of(const std::filesystem::path& path) {
    const auto parent = path.parent_path();
    return parent.empty() ? "." : parent;
}

}  // namespace

void atomic_file::commit() {
    out_.flush();
    out_.close();
    if (!out_) throw std::system_error(errno ? errno : EIO, std::generic_category(), temp_path_.string() + ": write failed");
    sync_path(temp_path_, false);  // the data on disk before the name points at it
    std::error_code error;
    std::filesystem::rename(temp_path_, path_, error);
    if (error) throw std::system_error(error, temp_path_.string() + ": cannot rename to " + path_.string());
    committed_ = true;
}

atomic_directory::atomic_directory(std::filesystem::path path) : path_(std::move(path)) {
    namespace fs = std::filesystem;
    std::error_code error;
    if (fs::exists(path_, error) && !fs::is_directory(path_, error))
        throw std::system_error(std::make_error_code(std::errc::not_a_directory), path_.string() + ": cannot write a report into it");
    const fs::path parent = parent_of(path_.lexically_normal());
    fs::create_directories(parent, error);
    const fs::path name = path_.lexically_normal().filename();
    staging_ = parent / ("." + name.string() + "." + std::to_string(::getpid()) + ".tmp");
    fs::remove_all(staging_, error);  // a stale one of a crashed run with our pid
    if (!fs::create_directory(staging_, error) || error)
        throw std::system_error(error ? error : std::make_error_code(std::errc::io_error),
                                staging_.string() + ": cannot create the output directory");
}

atomic_directory::~atomic_directory() {
    if (committed_) return;
    std::error_code ignored;
    std::filesystem::remove_all(staging_, ignored);
}

void atomic_directory::commit() {
    namespace fs = std::filesystem;
    sync_path(staging_, true);
    std::error_code error;
    if (fs::exists(path_, error)) {
        // Exchange the two names in one step; the old content then sits in
        // the staging name and is removed.
        if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE) != 0) {
            if (errno != EINVAL && errno != ENOSYS)
                throw std::system_error(errno, std::generic_category(), path_.string() + ": cannot replace it");
            const fs::path old = staging_.string() + ".old";
            fs::rename(path_, old, error);
            if (error) throw std::system_error(error, path_.string() + ": cannot move the earlier content aside");
            fs::rename(staging_, path_, error);
            if (error) {
                std::error_code ignored;
                fs::rename(old, path_, ignored);
                throw std::system_error(error, path_.string() + ": cannot replace it");
            }
            fs::rename(old, staging_, error);
        }
    } else {
        fs::rename(staging_, path_, error);
        if (error) throw std::system_error(error, path_.string() + ": cannot create it");
    }
    committed_ = true;
    sync_path(parent_of(path_), true);
    fs::remove_all(staging_, error);  // the earlier content, if any
}

}  // namespace adaptk
