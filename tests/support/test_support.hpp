#pragma once
// Fixture helpers shared by the unit tests: a temporary directory that cleans
// up after itself, a scoped environment variable, raw file writers, a byte-image builder for hand-made
// safetensors files, the path of the real test data, and preconditions on
// the platform the tests run on.

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "adaptk/dtype.hpp"
#include "adaptk/tensor_file.hpp"

namespace adaptk::test {

namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed (recursively) on destruction.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<unsigned> counter{0};
        const fs::path base = fs::temp_directory_path();
        for (int attempt = 0; attempt < 100; ++attempt) {
            fs::path candidate = base / ("adaptk-test-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(counter++));
            if (fs::create_directory(candidate)) {
                path_ = std::move(candidate);
                return;
            }
        }
        throw std::runtime_error("temp_dir: cannot create a fresh directory under " + base.string());
    }
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const fs::path& path() const noexcept { return path_; }
    fs::path operator/(const fs::path& name) const { return path_ / name; }

private:
    fs::path path_;
};

/// Writes `bytes` to `path`, replacing it.
/// Sets an environment variable (for this process and the programs it starts)
/// until destruction, then restores what was there.
class scoped_env {
public:
    scoped_env(const char* name, const std::string& value) : name_(name) {
        if (const char* before = std::getenv(name)) before_ = before;
        ::setenv(name, value.c_str(), 1);
    }
    ~scoped_env() {
        if (before_) ::setenv(name_, before_->c_str(), 1);
        else ::unsetenv(name_);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    const char* name_;
    std::optional<std::string> before_;
};

inline void write_bytes(const fs::path& path, std::span<const std::byte> bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("write_bytes: cannot write " + path.string());
}

inline void write_text(const fs::path& path, std::string_view text) {
    write_bytes(path, std::as_bytes(std::span(text.data(), text.size())));
}

inline std::vector<std::byte> read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("read_bytes: cannot open " + path.string());
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> bytes(chars.size());
    if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
    return bytes;
}

inline std::vector<std::byte> to_bytes(std::string_view text) {
    std::vector<std::byte> bytes(text.size());
    if (!text.empty()) std::memcpy(bytes.data(), text.data(), text.size());
    return bytes;
}

/// A safetensors image: 8-byte little-endian length of `header`, `header`, then `data`.
inline std::vector<std::byte> safetensors_image(std::string_view header, std::span<const std::byte> data = {}) {
    std::vector<std::byte> image(8);
    const std::uint64_t length = header.size();
    std::memcpy(image.data(), &length, sizeof length);
    const auto text = to_bytes(header);
    image.insert(image.end(), text.begin(), text.end());
    image.insert(image.end(), data.begin(), data.end());
    return image;
}

/// Same, with `data_bytes` zero bytes of data.
inline std::vector<std::byte> safetensors_image(std::string_view header, std::size_t data_bytes) {
    const std::vector<std::byte> zeros(data_bytes);
    return safetensors_image(header, zeros);
}

/// tests/data, from ADAPTK_TEST_DATA (set by tests/meson.build).
inline fs::path data_dir() {
    const char* dir = std::getenv("ADAPTK_TEST_DATA");
    if (dir == nullptr || *dir == '\0')
        throw std::runtime_error("ADAPTK_TEST_DATA is not set; run the tests with 'meson test'");
    return dir;
}

/// IEEE binary16 by its definition, in double with ldexp: independent of the
/// bit tricks in dtype.cpp.
inline double half_reference(std::uint16_t bits) {
    const int exponent = (bits >> 10) & 0x1f;
    const int mantissa = bits & 0x3ff;
    double magnitude;
    if (exponent == 0)
        magnitude = std::ldexp(static_cast<double>(mantissa), -24);
    else if (exponent == 31)
        magnitude = mantissa == 0 ? HUGE_VAL : std::nan("");
    else
        magnitude = std::ldexp(static_cast<double>(1024 + mantissa), exponent - 25);
    return (bits & 0x8000u) != 0 ? -magnitude : magnitude;
}

/// One element of a floating dtype at `p` (any alignment), decoded without
/// adaptk::decode: the reference the streaming readers are compared against.
inline double reference_value(adaptk::dtype type, const std::byte* p) {
    switch (type) {
    case adaptk::dtype::f64: {
        double value;
        std::memcpy(&value, p, 8);
        return value;
    }
    case adaptk::dtype::f32: {
        float value;
        std::memcpy(&value, p, 4);
        return value;
    }
    case adaptk::dtype::f16: {
        std::uint16_t bits;
        std::memcpy(&bits, p, 2);
        return half_reference(bits);
    }
    case adaptk::dtype::bf16: {  // the upper two bytes of a float32
        unsigned char bytes[4] = {0, 0, 0, 0};
        std::memcpy(bytes + 2, p, 2);
        float value;
        std::memcpy(&value, bytes, 4);
        return value;
    }
    default:
        throw std::invalid_argument("reference_value: not a floating dtype");
    }
}

/// A tensor's stored bytes, read from its file.
inline std::vector<std::byte> stored_bytes(const adaptk::tensor_file& file, const adaptk::tensor_info& tensor) {
    std::vector<std::byte> bytes(tensor.bytes());
    file.source().read(file.file_offset(tensor), bytes.size(), bytes.data());
    return bytes;
}

/// Precondition: whether mmap reaches file offsets past 4 GiB here. Debian
/// 12's qemu-user (7.2) cuts a 32-bit guest's mmap offset to 32 bits and maps
/// the wrong page (pread is right); a real armhf kernel maps the right one.
/// Checked on a sparse file: the byte written past 4 GiB must be the one mapped.
inline boost::test_tools::assertion_result mmap_reaches_past_4_gib(boost::unit_test::test_unit_id) {
    const temp_dir dir;
    const fs::path path = dir / "past-4-gib.bin";
    const off_t at = (off_t{1} << 32) + 4 * ::sysconf(_SC_PAGESIZE);
    bool right_page = false;
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        const char mark = 'M';
        if (::pwrite(fd, &mark, 1, at) == 1) {
            void* page = ::mmap(nullptr, 1, PROT_READ, MAP_PRIVATE, fd, at);
            right_page = page != MAP_FAILED && *static_cast<const char*>(page) == mark;
            if (page != MAP_FAILED) ::munmap(page, 1);
        }
        ::close(fd);
    }
    boost::test_tools::assertion_result reaches = right_page;
    reaches.message() << "mmap at an offset past 4 GiB returned another page (qemu-user before 8.1 truncates "
                         "a 32-bit guest's mmap offsets; pread reads right)";
    return reaches;
}

}  // namespace adaptk::test
