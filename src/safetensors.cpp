#include "adaptk/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string_view>

#include "adaptk/error.hpp"
#include "detail/checked.hpp"

namespace adaptk {
namespace {

// A std::map object, not ordered_json: ordered_json finds a key by a linear
// scan on every insert, so a 100 MB header of 1.7 million tensors took hours
// to parse. header_reader records the order of the keys instead.
using json = nlohmann::json;

// Real headers nest three levels ({name: {shape: [..]}}); anything deeper is
// hostile and would only cost stack and time.
constexpr int max_json_depth = 8;

constexpr std::string_view lfs_signature = "version https://git-lfs";

// The header's keys in file order: the tensors' (and __metadata__) and __metadata__'s own.
struct key_order {
    std::vector<std::string> entries;
    std::vector<std::string> metadata;
};

// Builds the DOM like nlohmann's own parser while it rejects duplicate keys
// (nlohmann would silently keep the last) and deep nesting, and records the
// key order. Not a parse callback: nlohmann's callback parser scans the
// parent object at every object's end, quadratic in the number of tensors.
// Depth counts open containers: 1 inside the root object, 2 inside an entry.
class header_reader : public nlohmann::detail::json_sax_dom_parser<json> {
public:
    header_reader(json& root, const std::string& file, key_order& order)
        : json_sax_dom_parser(root), file_(file), order_(order) {}

    bool start_object(std::size_t length) {
        open(true);
        return json_sax_dom_parser::start_object(length);
    }
    bool start_array(std::size_t length) {
        open(false);
        return json_sax_dom_parser::start_array(length);
    }
    bool end_object() {
        keys_.pop_back();
        --depth_;
        return json_sax_dom_parser::end_object();
    }
    bool end_array() {
        --depth_;
        return json_sax_dom_parser::end_array();
    }
    bool key(std::string& name) {
        if (!keys_.back().insert(name).second)
            throw format_error(file_, "", "header has duplicate key '" + name + "'");
        if (depth_ == 1)
            order_.entries.push_back(name);
        else if (depth_ == 2 && !order_.entries.empty() && order_.entries.back() == "__metadata__")
            order_.metadata.push_back(name);
        return json_sax_dom_parser::key(name);
    }

private:
    void open(bool object) {
        if (depth_ >= max_json_depth)
            throw format_error(file_, "", "header JSON nests deeper than " + std::to_string(max_json_depth) + " levels");
        ++depth_;
        if (object) keys_.emplace_back();
    }

    const std::string& file_;
    key_order& order_;
    int depth_ = 0;
    std::vector<std::set<std::string>> keys_;
};

std::uint64_t read_u64_le(const std::byte* p) {
    std::uint64_t value;
    std::memcpy(&value, p, sizeof value);
    return value;
}

bool is_non_negative_integer(const json& value) {
    return value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0);
}

tensor_info parse_entry(const std::string& file, const std::string& name, const json& entry) {
    auto fail = [&](const std::string& defect) -> format_error { return {file, name, defect}; };
    if (!entry.is_object()) throw fail("header entry is not a JSON object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!entry.contains(key)) throw fail(std::string("header entry has no '") + key + "'");

    tensor_info tensor;
    tensor.name = name;
    const json& type = entry["dtype"];
    if (!type.is_string()) throw fail("'dtype' is not a string");
    const auto parsed_type = parse_dtype(type.get<std::string>());
    if (!parsed_type) throw fail("unknown dtype '" + type.get<std::string>() + "'");
    tensor.type = *parsed_type;

    const json& shape = entry["shape"];
    if (!shape.is_array() || !std::all_of(shape.begin(), shape.end(), is_non_negative_integer))
        throw fail("'shape' is not a list of non-negative integers");
    for (const json& extent : shape) tensor.shape.push_back(extent.get<std::uint64_t>());
    tensor.elements = 1;
    for (const std::uint64_t extent : tensor.shape) {
        const auto product = detail::checked_mul(tensor.elements, extent);
        if (!product) throw fail("element count of shape " + dims_list(tensor.shape) + " overflows 64 bits");
        tensor.elements = *product;
    }

    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !is_non_negative_integer(offsets[0]) ||
        !is_non_negative_integer(offsets[1]))
        throw fail("'data_offsets' is not a pair of non-negative integers");
    tensor.begin = offsets[0].get<std::uint64_t>();
    tensor.end = offsets[1].get<std::uint64_t>();
    if (tensor.begin > tensor.end)
        throw fail("data_offsets begin " + std::to_string(tensor.begin) + " is past end " +
                   std::to_string(tensor.end));
    const auto needed = detail::checked_mul(tensor.elements, dtype_bytes(tensor.type));
    if (!needed || *needed != tensor.bytes())
        throw fail("data_offsets span " + std::to_string(tensor.bytes()) + " bytes but shape " +
                   dims_list(tensor.shape) + " of " + std::string(dtype_name(tensor.type)) + " needs " +
                   (needed ? std::to_string(*needed) : std::string("more than 2^64")));
    return tensor;
}

// Tensors must tile the data section exactly: no overlap, no gap, no tail.
// Zero-byte tensors occupy nothing and only need to lie inside it.
void check_tiling(const std::string& file, const safetensors_header& header) {
    std::vector<const tensor_info*> order;
    for (const auto& tensor : header.tensors) {
        if (tensor.end > header.data_bytes)
            throw format_error(file, tensor.name,
                               "data end " + std::to_string(tensor.end) + " exceeds the " +
                                   std::to_string(header.data_bytes) + "-byte data section",
                               header.data_offset + tensor.begin);
        if (tensor.bytes() > 0) order.push_back(&tensor);
    }
    std::sort(order.begin(), order.end(),
              [](const tensor_info* a, const tensor_info* b) { return a->begin < b->begin; });
    std::uint64_t covered = 0;
    const tensor_info* previous = nullptr;
    for (const tensor_info* tensor : order) {
        if (tensor->begin < covered)
            throw format_error(file, tensor->name,
                               "bytes [" + std::to_string(tensor->begin) + ", " + std::to_string(tensor->end) +
                                   ") overlap tensor '" + previous->name + "' at [" +
                                   std::to_string(previous->begin) + ", " + std::to_string(previous->end) + ")",
                               header.data_offset + tensor->begin);
        if (tensor->begin > covered)
            throw format_error(file, "",
                               "data section bytes [" + std::to_string(covered) + ", " +
                                   std::to_string(tensor->begin) + ") belong to no tensor",
                               header.data_offset + covered);
        covered = tensor->end;
        previous = tensor;
    }
    if (covered != header.data_bytes)
        throw format_error(file, "",
                           "data section is " + std::to_string(header.data_bytes) + " bytes but tensors end at " +
                               std::to_string(covered) + ": " + std::to_string(header.data_bytes - covered) +
                               " trailing bytes belong to no tensor",
                           header.data_offset + covered);
}

}  // namespace

safetensors_header parse_safetensors(std::span<const std::byte> file, const std::string& file_name) {
    return parse_safetensors(file, file.size(), file_name);
}

safetensors_header parse_safetensors(std::span<const std::byte> head, std::uint64_t file_size,
                                     const std::string& file_name) {
    const std::string_view text(reinterpret_cast<const char*>(head.data()), head.size());
    if (text.starts_with(lfs_signature))
        throw format_error(file_name, "", "is a Git LFS pointer, not the weights (run 'git lfs pull')");
    if (file_size == 0) throw format_error(file_name, "", "empty file: no 8-byte header length");
    if (file_size < 8)
        throw format_error(file_name, "",
                           "file is " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");

    safetensors_header header;
    header.header_bytes = read_u64_le(head.data());
    if (header.header_bytes == 0) throw format_error(file_name, "", "header length is 0", 0);
    if (header.header_bytes > max_header_bytes)
        throw format_error(file_name, "",
                           "header length " + std::to_string(header.header_bytes) + " exceeds the " +
                               std::to_string(max_header_bytes) + "-byte limit",
                           0);
    if (header.header_bytes > file_size - 8)
        throw format_error(file_name, "",
                           "header length " + std::to_string(header.header_bytes) + " runs past the end of the " +
                               std::to_string(file_size) + "-byte file",
                           0);
    header.data_offset = 8 + header.header_bytes;
    header.data_bytes = file_size - header.data_offset;
    if (header.data_offset > head.size())
        throw std::invalid_argument("parse_safetensors: " + file_name + ": given " + std::to_string(head.size()) +
                                    " bytes, not the whole header");

    json root;
    key_order order;
    try {
        const std::string_view body = text.substr(8, header.header_bytes);
        header_reader reader(root, file_name, order);
        json::sax_parse(body.begin(), body.end(), &reader);
    } catch (const json::parse_error& e) {
        const std::string message = e.what();
        const bool encoding = message.find("UTF-8") != std::string::npos;
        // e.byte is 1-based (the last character read); file offsets are 0-based.
        const std::uint64_t at = 8 + (e.byte > 0 ? e.byte - 1 : 0);
        throw format_error(file_name, "",
                           std::string(encoding ? "header is not valid UTF-8" : "header is not valid JSON") +
                               " near byte " + std::to_string(at),
                           at);
    } catch (const json::exception&) {  // out_of_range.406: a number beyond double, e.g. 1e999
        throw format_error(file_name, "", "header is not valid JSON: a number is out of range");
    }
    if (!root.is_object()) throw format_error(file_name, "", "header is not a JSON object", 8);

    for (const std::string& name : order.entries) {
        const json& entry = root.find(name).value();
        if (name == "__metadata__") {
            if (entry.is_null()) continue;
            if (!entry.is_object()) throw format_error(file_name, "", "'__metadata__' is not an object");
            for (const std::string& key : order.metadata) {
                const json& value = entry.find(key).value();
                header.metadata.emplace_back(key, value.is_string() ? value.get<std::string>() : value.dump());
            }
            continue;
        }
        header.tensors.push_back(parse_entry(file_name, name, entry));
    }
    check_tiling(file_name, header);
    return header;
}

}  // namespace adaptk
