// The main of a fuzz harness built without libFuzzer: runs
// LLVMFuzzerTestOneInput once on every file named on the command line, or in
// a directory named there, in name order. Arguments starting with '-' are
// libFuzzer options and are skipped, so `harness -runs=0 corpus/` replays the
// same inputs in either build. A crash, abort or sanitizer report on one input
// fails the run; the input's name is on stderr just before it runs.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> inputs(int argc, char** argv) {
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        const std::string argument = argv[i];
        if (argument.starts_with('-')) continue;
        if (!fs::is_directory(argument)) {
            files.emplace_back(argument);
            continue;
        }
        std::vector<fs::path> listed;
        for (const auto& entry : fs::directory_iterator(argument))
            if (entry.is_regular_file()) listed.push_back(entry.path());
        std::sort(listed.begin(), listed.end());
        files.insert(files.end(), listed.begin(), listed.end());
    }
    return files;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<fs::path> files = inputs(argc, argv);
    if (files.empty()) {
        std::cerr << argv[0] << ": no input files (usage: " << argv[0] << " FILE|DIR...)\n";
        return 1;
    }
    for (const fs::path& file : files) {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            std::cerr << file.string() << ": cannot open\n";
            return 1;
        }
        const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        std::cerr << "replaying " << file.string() << " (" << bytes.size() << " bytes)\n";
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::cerr << files.size() << " inputs replayed\n";
    return 0;
}
