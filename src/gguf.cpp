#include "adaptk/gguf.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <set>
#include <string_view>

#include "adaptk/error.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

constexpr std::string_view magic = "GGUF";

// Key-value value types, numbered as in the GGUF specification.
enum class value_type : std::uint32_t {
    u8, i8, u16, i16, u32, i32, f32, boolean, string, array, u64, i64, f64,
};
constexpr std::uint32_t value_type_count = 13;
constexpr std::array<std::string_view, value_type_count> value_type_names{
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
// Bytes of a scalar value; 0 for string and array.
constexpr std::array<std::uint64_t, value_type_count> value_type_bytes{1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

// Arrays of arrays are legal; real files never nest more than once.
constexpr int max_array_depth = 8;

// Smallest encodings, to refuse counts the rest of the file cannot hold
// before looping over them.
constexpr std::uint64_t min_key_value_bytes = 8 + 4 + 1;       // empty key, type, one-byte value
constexpr std::uint64_t min_tensor_info_bytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, one dim, type, offset
constexpr std::uint64_t min_string_bytes = 8;
constexpr std::uint64_t min_array_bytes = 4 + 8;

struct ggml_type_row {
    std::uint32_t id;
    dtype type;
};

// ggml type ids (ggml.h); the gaps are ids ggml has retired.
constexpr std::array<ggml_type_row, 32> ggml_types{{
    {0, dtype::f32},      {1, dtype::f16},      {2, dtype::q4_0},    {3, dtype::q4_1},    {6, dtype::q5_0},
    {7, dtype::q5_1},     {8, dtype::q8_0},     {9, dtype::q8_1},    {10, dtype::q2_k},   {11, dtype::q3_k},
    {12, dtype::q4_k},    {13, dtype::q5_k},    {14, dtype::q6_k},   {15, dtype::q8_k},   {16, dtype::iq2_xxs},
    {17, dtype::iq2_xs},  {18, dtype::iq3_xxs}, {19, dtype::iq1_s},  {20, dtype::iq4_nl}, {21, dtype::iq3_s},
    {22, dtype::iq2_s},   {23, dtype::iq4_xs},  {24, dtype::i8},     {25, dtype::i16},    {26, dtype::i32},
    {27, dtype::i64},     {28, dtype::f64},     {29, dtype::iq1_m},  {30, dtype::bf16},   {34, dtype::tq1_0},
    {35, dtype::tq2_0},   {39, dtype::mxfp4},
}};

std::optional<dtype> ggml_type(std::uint32_t id) noexcept {
    for (const auto& row : ggml_types)
        if (row.id == id) return row.type;
    return std::nullopt;
}

// A bounds-checked little-endian reader over the header. Every read names
// what it reads, so a truncated file says where it ends.
class cursor {
public:
    cursor(std::span<const std::byte> head, std::uint64_t file_size, const std::string& file_name)
        : file_(head), file_size_(file_size), file_name_(file_name) {}

    std::uint64_t position() const noexcept { return position_; }
    std::uint64_t remaining() const noexcept { return file_size_ - position_; }

    format_error error(const std::string& defect, std::optional<std::uint64_t> at = std::nullopt) const {
        return {file_name_, tensor_, defect, at ? at : position_};
    }
    /// The tensor later messages are about ("" for none).
    void about(std::string tensor) { tensor_ = std::move(tensor); }

    void skip(std::uint64_t bytes, const std::string& what) {
        if (bytes > remaining())
            throw error("header truncated: " + what + " needs " + std::to_string(bytes) + " bytes at byte " +
                        std::to_string(position_) + " but the file is " + std::to_string(file_size_) + " bytes");
        require_mapped(bytes, what);
        position_ += bytes;
    }
    template <class T>
    T scalar(const std::string& what) {
        const std::uint64_t at = position_;
        skip(sizeof(T), what);
        T value;
        std::memcpy(&value, file_.data() + at, sizeof value);
        return value;
    }
    std::uint32_t u32(const std::string& what) { return scalar<std::uint32_t>(what); }
    std::uint64_t u64(const std::string& what) { return scalar<std::uint64_t>(what); }
    std::string string(const std::string& what) {
        const std::uint64_t length = u64(what + " length");
        const std::uint64_t at = position_;
        if (length > remaining())
            throw error(what + " length " + std::to_string(length) + " runs past the end of the " +
                            std::to_string(file_size_) + "-byte file",
                        at - 8);
        require_mapped(length, what);
        position_ += length;
        return {reinterpret_cast<const char*>(file_.data() + at), static_cast<std::size_t>(length)};
    }
    // The header is read from the file's first head.size() bytes only.
    void require_mapped(std::uint64_t bytes, const std::string& what) const {
        if (bytes > file_.size() - position_)
            throw error("header too large: " + what + " at byte " + std::to_string(position_) +
                        " lies past the first " + std::to_string(file_.size()) + " bytes, the most read as header");
    }
    // Refuses `count` items of at least `min_bytes` each when the rest of the file cannot hold them.
    void require_room(std::uint64_t count, std::uint64_t min_bytes, const std::string& what, std::uint64_t at) const {
        const auto needed = detail::checked_mul(count, min_bytes);
        if (!needed || *needed > remaining())
            throw error(what + " " + std::to_string(count) + " is absurd: they need " +
                            (needed ? "at least " + std::to_string(*needed) : std::string("more than 2^64")) +
                            " bytes but " + std::to_string(remaining()) + " remain in the file",
                        at);
    }

private:
    std::span<const std::byte> file_;  ///< the header's bytes: the file's first ones
    std::uint64_t file_size_;
    const std::string& file_name_;
    std::string tensor_;
    std::uint64_t position_ = 0;
};

// What a key-value holds, kept for the keys the tool may use.
struct kept_value {
    value_type type;
    std::uint64_t at;                      ///< file offset of the key
    std::optional<std::uint64_t> integer;  ///< scalar integers >= 0
    std::string text;                      ///< strings
};

value_type read_value_type(cursor& in, const std::string& what) {
    const std::uint64_t at = in.position();
    const std::uint32_t type = in.u32(what + " type");
    if (type >= value_type_count) throw in.error(what + " has unknown value type " + std::to_string(type), at);
    return static_cast<value_type>(type);
}

template <class Signed>
std::optional<std::uint64_t> non_negative(Signed value) {
    if (value < 0) return std::nullopt;
    return static_cast<std::uint64_t>(value);
}

bool is_integer(value_type type) {
    return type != value_type::f32 && type != value_type::f64 && type != value_type::boolean &&
           type != value_type::string && type != value_type::array;
}

// Reads an integer value (is_integer(type)); nullopt for a negative one.
std::optional<std::uint64_t> read_integer(cursor& in, value_type type, const std::string& what) {
    switch (type) {
    case value_type::u8: return in.scalar<std::uint8_t>(what);
    case value_type::u16: return in.scalar<std::uint16_t>(what);
    case value_type::u32: return in.u32(what);
    case value_type::u64: return in.u64(what);
    case value_type::i8: return non_negative(in.scalar<std::int8_t>(what));
    case value_type::i16: return non_negative(in.scalar<std::int16_t>(what));
    case value_type::i32: return non_negative(in.scalar<std::int32_t>(what));
    case value_type::i64: return non_negative(in.scalar<std::int64_t>(what));
    default: return std::nullopt;
    }
}

void skip_value(cursor& in, value_type type, const std::string& what, int depth);

void skip_array(cursor& in, const std::string& what, int depth) {
    if (depth >= max_array_depth)
        throw in.error(what + " nests arrays deeper than " + std::to_string(max_array_depth) + " levels");
    const value_type element = read_value_type(in, what + " element");
    const std::uint64_t at = in.position();
    const std::uint64_t count = in.u64(what + " element count");
    const std::uint64_t size = value_type_bytes[static_cast<std::size_t>(element)];
    if (size > 0) {
        const auto bytes = detail::checked_mul(count, size);
        if (!bytes || *bytes > in.remaining())
            throw in.error(what + " of " + std::to_string(count) + " " +
                               std::string(value_type_names[static_cast<std::size_t>(element)]) +
                               " values runs past the end of the file",
                           at);
        in.skip(*bytes, what);
        return;
    }
    in.require_room(count, element == value_type::string ? min_string_bytes : min_array_bytes,
                    what + " element count", at);
    for (std::uint64_t i = 0; i < count; ++i) skip_value(in, element, what + "[" + std::to_string(i) + "]", depth + 1);
}

void skip_value(cursor& in, value_type type, const std::string& what, int depth) {
    if (type == value_type::string)
        in.string(what);
    else if (type == value_type::array)
        skip_array(in, what, depth);
    else
        in.skip(value_type_bytes[static_cast<std::size_t>(type)], what);
}

std::map<std::string, kept_value> read_key_values(cursor& in, std::uint64_t count) {
    std::map<std::string, kept_value> kept;
    std::set<std::string> seen;
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t at = in.position();
        const std::string key = in.string("key " + std::to_string(i));
        if (!seen.insert(key).second) throw in.error("duplicate key '" + key + "'", at);
        const std::string what = "key '" + key + "'";
        const value_type type = read_value_type(in, what + " value");
        kept_value value{type, at, std::nullopt, {}};
        if (type == value_type::string)
            value.text = in.string(what + " value");
        else if (is_integer(type))
            value.integer = read_integer(in, type, what + " value");
        else
            skip_value(in, type, what + " value", 0);
        kept.emplace(key, std::move(value));
    }
    return kept;
}

// The positive integer at `key`, when present as a scalar; per-layer arrays
// (some architectures list head counts per layer) are left unread.
std::optional<std::uint64_t> positive_field(const cursor& in, const std::map<std::string, kept_value>& kept,
                                            const std::string& key) {
    const auto found = kept.find(key);
    if (found == kept.end() || found->second.type == value_type::array) return std::nullopt;
    if (!found->second.integer || *found->second.integer == 0)
        throw in.error("key '" + key + "' is not a positive integer", found->second.at);
    return found->second.integer;
}

gguf_model read_model(const cursor& in, const std::map<std::string, kept_value>& kept) {
    gguf_model model;
    if (const auto found = kept.find("general.architecture"); found != kept.end()) {
        if (found->second.type != value_type::string)
            throw in.error("key 'general.architecture' is not a string", found->second.at);
        model.architecture = found->second.text;
    }
    if (model.architecture.empty()) return model;
    const std::string prefix = model.architecture + ".";
    model.embedding_length = positive_field(in, kept, prefix + "embedding_length");
    model.block_count = positive_field(in, kept, prefix + "block_count");
    model.feed_forward_length = positive_field(in, kept, prefix + "feed_forward_length");
    model.head_count = positive_field(in, kept, prefix + "attention.head_count");
    model.head_count_kv = positive_field(in, kept, prefix + "attention.head_count_kv");
    return model;
}

// The integer >= 0 at `key`, when present.
std::optional<std::uint64_t> integer_field(const cursor& in, const std::map<std::string, kept_value>& kept,
                                           const std::string& key) {
    const auto found = kept.find(key);
    if (found == kept.end()) return std::nullopt;
    if (!found->second.integer) throw in.error("key '" + key + "' is not a non-negative integer", found->second.at);
    return found->second.integer;
}

std::uint64_t read_alignment(const cursor& in, const std::map<std::string, kept_value>& kept) {
    const auto alignment = integer_field(in, kept, "general.alignment");
    if (!alignment) return gguf_default_alignment;
    const std::uint64_t at = kept.at("general.alignment").at;
    if (*alignment == 0) throw in.error("general.alignment is 0", at);
    if ((*alignment & (*alignment - 1)) != 0)
        throw in.error("general.alignment " + std::to_string(*alignment) + " is not a power of two", at);
    if (*alignment > gguf_max_alignment)
        throw in.error("general.alignment " + std::to_string(*alignment) + " exceeds the " +
                           std::to_string(gguf_max_alignment) + "-byte limit",
                       at);
    return *alignment;
}

// gguf-split's keys (llama.cpp writes them as u16, u16 and i32). split.count
// makes a file a part; then the other two must be there and fit it.
std::optional<gguf_split> read_split(const cursor& in, const std::map<std::string, kept_value>& kept,
                                     std::uint64_t tensor_count) {
    const auto count = positive_field(in, kept, "split.count");
    const auto number = integer_field(in, kept, "split.no");
    const auto tensors = integer_field(in, kept, "split.tensors.count");
    if (!count) {
        for (const char* key : {"split.no", "split.tensors.count"})
            if (kept.contains(key))
                throw in.error("key '" + std::string(key) + "' without 'split.count'", kept.at(key).at);
        return std::nullopt;
    }
    const std::uint64_t count_at = kept.at("split.count").at;
    if (!number) throw in.error("key 'split.count' without 'split.no'", count_at);
    if (!tensors) throw in.error("key 'split.count' without 'split.tensors.count'", count_at);
    if (*number >= *count)
        throw in.error("split.no " + std::to_string(*number) + " is not below split.count " + std::to_string(*count),
                       kept.at("split.no").at);
    if (tensor_count > *tensors)
        throw in.error("the file holds " + std::to_string(tensor_count) + " tensors, more than split.tensors.count " +
                           std::to_string(*tensors) + " of all the parts together",
                       kept.at("split.tensors.count").at);
    return gguf_split{*number, *count, *tensors};
}

tensor_info read_tensor_info(cursor& in, std::uint64_t index) {
    in.about("");
    tensor_info tensor;
    tensor.name = in.string("tensor info " + std::to_string(index) + " name");
    in.about(tensor.name);
    const std::uint64_t dims_at = in.position();
    const std::uint32_t n_dims = in.u32("n_dims");
    if (n_dims == 0 || n_dims > gguf_max_dims)
        throw in.error("n_dims is " + std::to_string(n_dims) + "; GGUF tensors have 1 to " +
                           std::to_string(gguf_max_dims) + " dimensions",
                       dims_at);
    std::vector<std::uint64_t> dims(n_dims);  // innermost first
    for (auto& extent : dims) extent = in.u64("dimension");
    const std::uint64_t type_at = in.position();
    const std::uint32_t type_id = in.u32("ggml type");
    const std::uint64_t offset = in.u64("data offset");

    // ggml stores dims as int64: anything above that is corrupt, not big.
    for (const std::uint64_t extent : dims)
        if (extent > static_cast<std::uint64_t>(INT64_MAX))
            throw in.error("dimension " + std::to_string(extent) + " in dims " + dims_list(dims) +
                               " exceeds 2^63 - 1",
                           dims_at);
    tensor.elements = 1;
    for (const std::uint64_t extent : dims) {
        const auto product = detail::checked_mul(tensor.elements, extent);
        if (!product) throw in.error("element count of dims " + dims_list(dims) + " overflows 64 bits", dims_at);
        tensor.elements = *product;
    }
    const auto type = ggml_type(type_id);
    if (!type) throw in.error("unknown ggml type " + std::to_string(type_id), type_at);
    tensor.type = *type;
    const std::size_t block = dtype_block_elements(tensor.type);
    if (dims[0] % block != 0)
        throw in.error("innermost dimension " + std::to_string(dims[0]) + " is not a multiple of " +
                           std::string(dtype_name(tensor.type)) + "'s " + std::to_string(block) + "-element block",
                       dims_at);
    const auto bytes = storage_bytes(tensor.type, tensor.elements);
    if (!bytes)
        throw in.error("byte count of dims " + dims_list(dims) + " of " + std::string(dtype_name(tensor.type)) +
                           " overflows 64 bits",
                       dims_at);
    const auto end = detail::checked_add(offset, *bytes);
    if (!end)
        throw in.error("data offset " + std::to_string(offset) + " plus " + std::to_string(*bytes) +
                           " bytes overflows 64 bits",
                       type_at + 4);
    tensor.shape.assign(dims.rbegin(), dims.rend());
    tensor.begin = offset;
    tensor.end = *end;
    return tensor;
}

// Every tensor starts on the alignment, lies inside the data section and
// overlaps no other (unlike safetensors, padding between tensors is normal).
void check_placement(const std::string& file, const gguf_header& header) {
    std::vector<const tensor_info*> order;
    for (const auto& tensor : header.tensors) {
        const std::uint64_t at = header.data_offset + tensor.begin;
        if (tensor.begin % header.alignment != 0)
            throw format_error(file, tensor.name,
                               "data offset " + std::to_string(tensor.begin) + " is not a multiple of the alignment " +
                                   std::to_string(header.alignment),
                               at);
        if (tensor.end > header.data_bytes)
            throw format_error(file, tensor.name,
                               "data [" + std::to_string(tensor.begin) + ", " + std::to_string(tensor.end) +
                                   ") runs past the end of the " + std::to_string(header.data_bytes) +
                                   "-byte data section",
                               at);
        if (tensor.bytes() > 0) order.push_back(&tensor);
    }
    std::sort(order.begin(), order.end(),
              [](const tensor_info* a, const tensor_info* b) { return a->begin < b->begin; });
    for (std::size_t i = 1; i < order.size(); ++i) {
        const tensor_info& previous = *order[i - 1];
        const tensor_info& tensor = *order[i];
        if (tensor.begin < previous.end)
            throw format_error(file, tensor.name,
                               "data [" + std::to_string(tensor.begin) + ", " + std::to_string(tensor.end) +
                                   ") overlaps tensor '" + previous.name + "' at [" + std::to_string(previous.begin) +
                                   ", " + std::to_string(previous.end) + ")",
                               header.data_offset + tensor.begin);
    }
}

}  // namespace

bool has_gguf_magic(std::span<const std::byte> file) noexcept {
    return file.size() >= magic.size() && std::memcmp(file.data(), magic.data(), magic.size()) == 0;
}

gguf_header parse_gguf(std::span<const std::byte> file, const std::string& file_name) {
    return parse_gguf(file, file.size(), file_name);
}

gguf_header parse_gguf(std::span<const std::byte> head, std::uint64_t file_size, const std::string& file_name) {
    cursor in(head, file_size, file_name);
    if (!has_gguf_magic(head)) {
        if (file_size < magic.size())
            throw in.error("file is " + std::to_string(file_size) + " bytes, too short for the GGUF magic", 0);
        throw in.error("bad magic: does not start with \"GGUF\"", 0);
    }
    in.skip(magic.size(), "magic");
    gguf_header header;
    header.version = in.u32("version");
    if (header.version != 2 && header.version != 3) {
        const bool swapped = header.version == 0x02000000u || header.version == 0x03000000u;
        throw in.error("GGUF version " + std::to_string(header.version) + " is not supported (only 2 and 3" +
                           (swapped ? "; this looks like a big-endian file)" : ")"),
                       4);
    }
    const std::uint64_t tensor_count_at = in.position();
    const std::uint64_t tensor_count = in.u64("tensor count");
    const std::uint64_t key_value_count_at = in.position();
    header.key_value_count = in.u64("key-value count");
    in.require_room(header.key_value_count, min_key_value_bytes, "key-value count", key_value_count_at);
    const auto kept = read_key_values(in, header.key_value_count);
    header.alignment = read_alignment(in, kept);
    header.model = read_model(in, kept);
    header.model.split = read_split(in, kept, tensor_count);

    in.require_room(tensor_count, min_tensor_info_bytes, "tensor count", tensor_count_at);
    std::set<std::string> names;
    header.tensors.reserve(tensor_count);
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
        const std::uint64_t at = in.position();
        header.tensors.push_back(read_tensor_info(in, i));
        if (!names.insert(header.tensors.back().name).second)
            throw in.error("tensor name appears twice in the tensor infos", at);
    }
    in.about("");

    const std::uint64_t header_end = in.position();
    // header_end is at most the file size and the alignment at most 2^20: no overflow.
    header.data_offset = (header_end + header.alignment - 1) / header.alignment * header.alignment;
    header.data_bytes = file_size > header.data_offset ? file_size - header.data_offset : 0;
    check_placement(file_name, header);
    return header;
}

}  // namespace adaptk
