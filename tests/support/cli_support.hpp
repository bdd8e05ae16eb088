#pragma once
// Helpers for the end-to-end tests: run the adaptk-stream binary with an argv
// vector (posix_spawn, no shell, so paths need no quoting) and capture stdout,
// stderr and the exit status separately; and a small RFC 4180 reader, written
// apart from src/csv.cpp so the writer is checked against an independent parser.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "test_support.hpp"

extern char** environ;

namespace adaptk::test {

/// What one run of the binary left behind.
struct run_result {
    /// The exit status; -N when the process died of signal N.
    int status = -1;
    std::string out;
    std::string err;

    /// stderr split at '\n' (a missing final '\n' still ends the last line).
    std::vector<std::string> err_lines() const {
        std::vector<std::string> lines;
        std::size_t start = 0;
        while (start < err.size()) {
            const std::size_t end = err.find('\n', start);
            lines.push_back(err.substr(start, end == std::string::npos ? std::string::npos : end - start));
            if (end == std::string::npos) break;
            start = end + 1;
        }
        return lines;
    }
};

/// The binary under test, from ADAPTK_STREAM (set by tests/meson.build).
inline fs::path stream_binary() {
    const char* path = std::getenv("ADAPTK_STREAM");
    if (path == nullptr || *path == '\0')
        throw std::runtime_error("ADAPTK_STREAM is not set; run the tests with 'meson test'");
    return path;
}

inline std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("read_text: cannot open " + path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs `binary args...` with stdin from /dev/null and stdout, stderr each
/// redirected to its own file in a private temp dir; waits for it. A non-empty
/// `stdout_to` (e.g. /dev/full) receives stdout instead, and `out` stays empty.
inline run_result run_program(const fs::path& binary, const std::vector<std::string>& args,
                              const fs::path& stdout_to = {}) {
    const temp_dir capture;
    const fs::path out_path = stdout_to.empty() ? capture / "stdout" : stdout_to;
    const fs::path err_path = capture / "stderr";

    posix_spawn_file_actions_t actions;
    if (const int e = posix_spawn_file_actions_init(&actions))
        throw std::system_error(e, std::generic_category(), "posix_spawn_file_actions_init");
    struct actions_guard {
        posix_spawn_file_actions_t* a;
        ~actions_guard() { posix_spawn_file_actions_destroy(a); }
    } guard{&actions};
    const std::string out_name = out_path.string(), err_name = err_path.string();
    int e = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!e) e = posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!e) e = posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (e) throw std::system_error(e, std::generic_category(), "posix_spawn_file_actions_addopen");

    const std::string program = binary.string();
    std::vector<std::string> storage;
    storage.reserve(args.size() + 1);
    storage.push_back(program);
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_t pid = 0;
    if (const int spawn_error = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ))
        throw std::system_error(spawn_error, std::generic_category(), "posix_spawn " + program);
    int wait_status = 0;
    while (::waitpid(pid, &wait_status, 0) < 0)
        if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");

    run_result result;
    result.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status)
                    : WIFSIGNALED(wait_status) ? -WTERMSIG(wait_status)
                                               : -1000;
    if (stdout_to.empty()) result.out = read_text(out_path);
    result.err = read_text(err_path);
    return result;
}

/// Runs the binary under test.
inline run_result run_stream(const std::vector<std::string>& args, const fs::path& stdout_to = {}) {
    return run_program(stream_binary(), args, stdout_to);
}

/// RFC 4180 records: fields separated by ',', records ended by '\n' (the last
/// one too); a field that holds ',', '"', CR or LF is enclosed in quotes with
/// inner quotes doubled. Stricter than the RFC on purpose: a bare CR, a quote
/// inside an unquoted field, text after a closing quote, an unterminated quote
/// or a missing final '\n' throw std::runtime_error with the byte offset.
inline std::vector<std::vector<std::string>> parse_csv(std::string_view text) {
    std::vector<std::vector<std::string>> records;
    std::vector<std::string> record;
    std::string field;
    auto fail = [](std::size_t at, const std::string& what) {
        throw std::runtime_error("parse_csv: byte " + std::to_string(at) + ": " + what);
    };
    std::size_t i = 0;
    while (i < text.size()) {
        // At the start of a field.
        field.clear();
        if (text[i] == '"') {
            ++i;
            while (true) {
                if (i >= text.size()) fail(i, "unterminated quoted field");
                if (text[i] == '"') {
                    if (i + 1 < text.size() && text[i + 1] == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                field += text[i++];
            }
            if (i < text.size() && text[i] != ',' && text[i] != '\n') fail(i, "text after a closing quote");
        } else {
            while (i < text.size() && text[i] != ',' && text[i] != '\n') {
                if (text[i] == '"') fail(i, "quote inside an unquoted field");
                if (text[i] == '\r') fail(i, "bare CR (CRLF line end or unquoted CR)");
                field += text[i++];
            }
        }
        record.push_back(field);
        if (i >= text.size()) fail(i, "last record does not end with '\\n'");
        if (text[i] == '\n') {
            records.push_back(std::move(record));
            record.clear();
        }
        ++i;  // past ',' or '\n'
    }
    if (!record.empty()) fail(i, "last record ends with ','");
    return records;
}

}  // namespace adaptk::test
