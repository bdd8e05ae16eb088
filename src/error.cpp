#include "adaptk/error.hpp"

namespace adaptk {
namespace {

// Names come from untrusted files: escape control characters so the message
// stays one line on a terminal.
std::string printable(const std::string& text) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string compose(const std::string& file, const std::string& tensor, const std::string& defect) {
    std::string line = printable(file) + ": ";
    if (!tensor.empty()) line += "tensor '" + printable(tensor) + "': ";
    return line + printable(defect);
}

}  // namespace

format_error::format_error(std::string file, std::string tensor, std::string defect,
                           std::optional<std::uint64_t> byte_offset)
    : std::runtime_error(compose(file, tensor, defect)),
      file_(std::move(file)),
      tensor_(std::move(tensor)),
      defect_(std::move(defect)),
      byte_offset_(byte_offset) {}

}  // namespace adaptk
