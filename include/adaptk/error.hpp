#pragma once
// The exceptions the library throws. `main` catches them once and maps them to
// exit codes: usage_error -> 2, everything else -> 1. OS failures are
// std::system_error carrying errno and the path.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace adaptk {

/// A file whose contents break its format. what() is the one line a user sees:
/// "<file>: tensor '<name>': <defect>" (the tensor part only when there is one).
class format_error : public std::runtime_error {
public:
    format_error(std::string file, std::string tensor, std::string defect,
                 std::optional<std::uint64_t> byte_offset = std::nullopt);

    const std::string& file() const noexcept { return file_; }
    /// Empty when the defect is not tied to one tensor.
    const std::string& tensor() const noexcept { return tensor_; }
    const std::string& defect() const noexcept { return defect_; }
    /// Byte offset in the file where the defect sits, when it has one.
    std::optional<std::uint64_t> byte_offset() const noexcept { return byte_offset_; }

private:
    std::string file_;
    std::string tensor_;
    std::string defect_;
    std::optional<std::uint64_t> byte_offset_;
};

/// A bad command line or option value; the CLI exits with status 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A LAPACK routine reported failure (info != 0) or produced non-finite output.
class numerical_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace adaptk
