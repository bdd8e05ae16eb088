// libFuzzer: arbitrary bytes as model.safetensors.index.json, in a private
// temporary directory beside one tiny valid shard, opened as a checkpoint.
// Allowed answers: adaptk::format_error and std::system_error (a shard name
// the OS refuses); anything else is a crash.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "adaptk/checkpoint.hpp"
#include "adaptk/error.hpp"

namespace fs = std::filesystem;

namespace {

constexpr const char* shard_name = "model-00001-of-00001.safetensors";

void write_file(const fs::path& path, const void* data, std::size_t size) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) std::abort();
}

// Two Llama tensors of hidden size 2 and a norm, written by hand.
void write_shard(const fs::path& path) {
    const std::string header =
        R"({"model.layers.0.self_attn.q_proj.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
        R"("model.layers.0.mlp.down_proj.weight":{"dtype":"BF16","shape":[2,3],"data_offsets":[16,28]},)"
        R"("model.norm.weight":{"dtype":"F32","shape":[2],"data_offsets":[28,36]}})";
    const std::uint64_t length = header.size();
    std::vector<char> image(8 + header.size() + 36, 0);
    std::memcpy(image.data(), &length, 8);
    std::memcpy(image.data() + 8, header.data(), header.size());
    write_file(path, image.data(), image.size());
}

struct scratch_dir {
    fs::path path;
    scratch_dir() {
        std::string pattern = (fs::temp_directory_path() / "adaptk-fuzz-index-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) std::abort();
        path = pattern;
        write_shard(path / shard_name);
    }
    ~scratch_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

const scratch_dir& scratch() {
    static const scratch_dir dir;
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fs::path& dir = scratch().path;
    write_file(dir / "model.safetensors.index.json", data, size);
    try {
        const adaptk::checkpoint ck(dir);
        std::vector<std::string> notes;
        const std::uint64_t d = ck.hidden_size(std::nullopt, notes);
        const auto matrices = ck.matrices(d, notes);
        if (matrices.size() > ck.tensors().size()) std::abort();
    } catch (const adaptk::format_error&) {
    } catch (const std::system_error&) {
    }
    return 0;
}
