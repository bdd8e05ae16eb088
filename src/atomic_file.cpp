#include "adaptk/atomic_file.hpp"

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

void atomic_file::commit() {
    out_.flush();
    out_.close();
    if (!out_) throw std::system_error(errno ? errno : EIO, std::generic_category(), temp_path_.string() + ": write failed");
    std::error_code error;
    std::filesystem::rename(temp_path_, path_, error);
    if (error) throw std::system_error(error, temp_path_.string() + ": cannot rename to " + path_.string());
    committed_ = true;
}

}  // namespace adaptk
