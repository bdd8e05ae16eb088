#define BOOST_TEST_MODULE mapped_file
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "adaptk/mapped_file.hpp"
#include "test_support.hpp"

namespace bdata = boost::unit_test::data;
using adaptk::mapped_file;
using adaptk::read_only_file;
using adaptk::test::temp_dir;

namespace {

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// A byte pattern with no period that divides a page, so a dropped or shifted
// page cannot read back equal.
std::vector<std::byte> pattern(std::size_t size) {
    std::vector<std::byte> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>((i * 131 + i / 251) & 0xff);
    return bytes;
}

bool same_bytes(const mapped_file& file, const std::vector<std::byte>& expected) {
    if (file.size() != expected.size()) return false;
    for (std::size_t i = 0; i < expected.size(); ++i)
        if (file.data()[i] != expected[i]) return false;
    return true;
}

// Four pages and a partial fifth.
struct paged_file {
    temp_dir dir;
    std::filesystem::path path = dir / "pages.bin";
    std::vector<std::byte> bytes = pattern(4 * page_size() + 123);
    paged_file() { adaptk::test::write_bytes(path, bytes); }
};

// What a forked child writes to stderr and how it ends, while `action` runs
// in it; the child never returns into the test framework.
struct child_outcome {
    std::string stderr_text;
    int status = 0;
};
template <class Action>
child_outcome run_in_child(Action action) {
    int pipe_ends[2];
    BOOST_TEST_REQUIRE(::pipe(pipe_ends) == 0);
    const pid_t pid = ::fork();
    BOOST_TEST_REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(pipe_ends[1], STDERR_FILENO);
        ::close(pipe_ends[0]);
        action();
        ::_exit(99);
    }
    ::close(pipe_ends[1]);
    child_outcome outcome;
    char buffer[512];
    for (ssize_t got; (got = ::read(pipe_ends[0], buffer, sizeof buffer)) > 0;)
        outcome.stderr_text.append(buffer, static_cast<std::size_t>(got));
    ::close(pipe_ends[0]);
    BOOST_TEST_REQUIRE(::waitpid(pid, &outcome.status, 0) == pid);
    return outcome;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mapped_file_test)

BOOST_AUTO_TEST_CASE(maps_a_file_and_reads_back_its_bytes) {
    temp_dir dir;
    const auto bytes = pattern(10'000);
    adaptk::test::write_bytes(dir / "a.bin", bytes);
    const mapped_file file(dir / "a.bin");
    BOOST_TEST(file.is_open());
    BOOST_TEST(file.size() == bytes.size());
    BOOST_TEST(file.offset() == 0u);
    BOOST_TEST(same_bytes(file, bytes));
}

// A window off a page boundary: its pages dropped, the bytes read back from the file.
BOOST_AUTO_TEST_CASE(released_pages_read_back_the_same_bytes) {
    temp_dir dir;
    const auto bytes = pattern(3 * page_size() + 500);
    adaptk::test::write_bytes(dir / "a.bin", bytes);
    const mapped_file file(read_only_file(dir / "a.bin"), 100);
    const std::vector<std::byte> tail(bytes.begin() + 100, bytes.end());
    BOOST_TEST_REQUIRE(same_bytes(file, tail));
    file.release_pages();
    BOOST_TEST(same_bytes(file, tail));
    file.release_pages({file.data() + page_size() + 7, page_size()});  // a range from inside a page
    BOOST_TEST(same_bytes(file, tail));
}

BOOST_AUTO_TEST_CASE(default_constructed_is_closed) {
    const mapped_file file;
    BOOST_TEST(!file.is_open());
    BOOST_TEST(file.data() == nullptr);
    BOOST_TEST(file.size() == 0u);
}

BOOST_AUTO_TEST_CASE(is_move_only) {
    static_assert(!std::is_copy_constructible_v<mapped_file>);
    static_assert(!std::is_copy_assignable_v<mapped_file>);
    static_assert(std::is_nothrow_move_constructible_v<mapped_file>);
    static_assert(std::is_nothrow_move_assignable_v<mapped_file>);
    BOOST_TEST(true);  // the properties above are compile-time
}

BOOST_AUTO_TEST_CASE(move_construction_leaves_the_source_closed) {
    temp_dir dir;
    const auto bytes = pattern(5000);
    adaptk::test::write_bytes(dir / "a.bin", bytes);
    mapped_file first(dir / "a.bin");
    const std::byte* address = first.data();
    mapped_file second(std::move(first));
    BOOST_TEST(!first.is_open());  // NOLINT(bugprone-use-after-move): the moved-from state is the property
    BOOST_TEST(first.data() == nullptr);
    BOOST_TEST(first.size() == 0u);
    BOOST_TEST(second.is_open());
    BOOST_TEST(second.data() == address);  // the mapping itself moved, not a copy
    BOOST_TEST(same_bytes(second, bytes));
}

BOOST_AUTO_TEST_CASE(move_assignment_replaces_the_target_and_closes_the_source) {
    temp_dir dir;
    const auto a = pattern(3000);
    auto b = pattern(7000);
    b[0] = std::byte{0xab};
    adaptk::test::write_bytes(dir / "a.bin", a);
    adaptk::test::write_bytes(dir / "b.bin", b);
    mapped_file target(dir / "a.bin");
    mapped_file source(dir / "b.bin");
    target = std::move(source);
    BOOST_TEST(!source.is_open());  // NOLINT(bugprone-use-after-move)
    BOOST_TEST(same_bytes(target, b));
}

BOOST_AUTO_TEST_CASE(moving_an_empty_file_mapping_keeps_it_open) {
    temp_dir dir;
    adaptk::test::write_bytes(dir / "empty", {});
    mapped_file first(dir / "empty");
    const mapped_file second(std::move(first));
    BOOST_TEST(second.is_open());
    BOOST_TEST(!first.is_open());  // NOLINT(bugprone-use-after-move)
}

BOOST_AUTO_TEST_CASE(empty_file_is_open_with_size_zero_and_no_data) {
    temp_dir dir;
    adaptk::test::write_bytes(dir / "empty", {});
    const mapped_file file(dir / "empty");
    BOOST_TEST(file.is_open());
    BOOST_TEST(file.size() == 0u);
    BOOST_TEST(file.data() == nullptr);
}

BOOST_AUTO_TEST_CASE(missing_path_throws_system_error_naming_it) {
    temp_dir dir;
    const auto missing = dir / "no-such-file.safetensors";
    BOOST_CHECK_EXCEPTION(mapped_file{missing}, std::system_error, [&](const std::system_error& e) {
        return std::string(e.what()).find(missing.string()) != std::string::npos && e.code().value() == ENOENT;
    });
}

BOOST_AUTO_TEST_CASE(directory_throws_system_error_naming_it) {
    temp_dir dir;
    BOOST_CHECK_EXCEPTION(mapped_file{dir.path()}, std::system_error, [&](const std::system_error& e) {
        return std::string(e.what()).find(dir.path().string()) != std::string::npos && e.code().value() == EISDIR;
    });
}

// Offsets and lengths on, just before and just after page boundaries: the
// window starts at the page below its offset, data() points at the offset.
BOOST_DATA_TEST_CASE(a_window_at_any_offset_holds_the_files_bytes_from_there,
                     bdata::make({0, 1, 2, 3, 4}) * bdata::make({-1, 0, 1}) * bdata::make({1, 4095, 4096, 4097, 9000}),
                     first_page, shift, length) {
    const paged_file fixture;
    const read_only_file source(fixture.path);
    BOOST_TEST_REQUIRE(source.size() == fixture.bytes.size());
    const auto offset = static_cast<std::size_t>(std::max(static_cast<long>(first_page * page_size()) + shift, 0L));
    const mapped_file window(source, offset, static_cast<std::size_t>(length));
    const std::size_t expected = std::min<std::size_t>(static_cast<std::size_t>(length), fixture.bytes.size() - offset);
    BOOST_TEST_REQUIRE(window.size() == expected);
    BOOST_TEST(window.offset() == offset);
    const std::vector<std::byte> slice(fixture.bytes.begin() + static_cast<long>(offset),
                                       fixture.bytes.begin() + static_cast<long>(offset + expected));
    BOOST_TEST(same_bytes(window, slice));
}

BOOST_AUTO_TEST_CASE(a_window_to_npos_runs_to_the_end_and_one_past_it_is_empty) {
    const paged_file fixture;
    const read_only_file source(fixture.path);
    const mapped_file tail(source, page_size() + 5);
    BOOST_TEST(tail.size() == fixture.bytes.size() - page_size() - 5);
    BOOST_TEST((tail.data()[0] == fixture.bytes[page_size() + 5]));
    const mapped_file past(source, fixture.bytes.size(), 10);
    BOOST_TEST(past.is_open());
    BOOST_TEST(past.size() == 0u);
    BOOST_TEST(past.data() == nullptr);
}

BOOST_AUTO_TEST_CASE(moving_a_window_keeps_its_offset_and_bytes) {
    const paged_file fixture;
    const read_only_file source(fixture.path);
    mapped_file first(source, 3 * page_size() + 1, 100);
    const mapped_file second(std::move(first));
    BOOST_TEST(!first.is_open());  // NOLINT(bugprone-use-after-move)
    BOOST_TEST(second.offset() == 3 * page_size() + 1);
    BOOST_TEST((second.data()[99] == fixture.bytes[3 * page_size() + 100]));
}

BOOST_DATA_TEST_CASE(read_copies_any_range_straddling_pages, bdata::make({0, 1, 4095, 4096, 4097, 12289}), offset) {
    const paged_file fixture;
    const read_only_file source(fixture.path);
    std::vector<std::byte> out(page_size() + 7);
    source.read(static_cast<std::uint64_t>(offset), out.size(), out.data());
    BOOST_TEST(std::equal(out.begin(), out.end(), fixture.bytes.begin() + offset));
}

BOOST_AUTO_TEST_CASE(read_past_the_end_throws_system_error_naming_the_file) {
    const paged_file fixture;
    const read_only_file source(fixture.path);
    std::vector<std::byte> out(10);
    BOOST_CHECK_EXCEPTION(source.read(fixture.bytes.size() - 5, out.size(), out.data()), std::system_error,
                          [&](const std::system_error& e) {
                              const std::string what = e.what();
                              return what.find(fixture.path.string()) != std::string::npos &&
                                     what.find("runs past the end of the " + std::to_string(fixture.bytes.size()) +
                                               "-byte file") != std::string::npos;
                          });
}

// A positioned read of bytes that were there at open but are gone now: an
// exception naming the file, not a short buffer.
BOOST_AUTO_TEST_CASE(reading_a_file_that_shrank_since_open_throws_naming_it) {
    const paged_file fixture;
    const read_only_file source(fixture.path);
    BOOST_TEST_REQUIRE(::truncate(fixture.path.c_str(), static_cast<off_t>(page_size())) == 0);
    std::vector<std::byte> out(10);
    BOOST_CHECK_EXCEPTION(source.read(page_size() - 4, out.size(), out.data()), std::system_error,
                          [&](const std::system_error& e) {
                              return std::string(e.what()).starts_with(
                                  fixture.path.string() +
                                  ": the file shrank while it was being read (truncated or rewritten by another "
                                  "process): nothing at byte " + std::to_string(page_size()));
                          });
}

// Past 4 GiB: a sparse file (a hole, no disk blocks) whose last bytes sit
// beyond every 32-bit offset; the size, a window and a read reach them.
BOOST_AUTO_TEST_CASE(offsets_past_4_gib_reach_the_end_of_a_sparse_file,
                     *boost::unit_test::precondition(adaptk::test::mmap_reaches_past_4_gib)) {
    temp_dir dir;
    const auto path = dir / "sparse.bin";
    const std::uint64_t tail_at = (std::uint64_t{1} << 32) + 3 * page_size() + 17;
    const auto tail = pattern(page_size() + 50);
    {
        adaptk::test::write_bytes(path, {});
        std::filesystem::resize_file(path, tail_at);
        std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
        out.seekp(static_cast<std::streamoff>(tail_at));
        out.write(reinterpret_cast<const char*>(tail.data()), static_cast<std::streamsize>(tail.size()));
        BOOST_TEST_REQUIRE(out.good());
    }
    const read_only_file source(path);
    BOOST_TEST(source.size() == tail_at + tail.size());
    const mapped_file window(source, tail_at + 1, mapped_file::npos);
    BOOST_TEST(window.size() == tail.size() - 1);
    BOOST_TEST(std::equal(tail.begin() + 1, tail.end(), window.data()));
    std::vector<std::byte> out(tail.size());
    source.read(tail_at, out.size(), out.data());
    BOOST_TEST((out == tail));
    const mapped_file hole(source, tail_at - 10, 10);  // the hole reads as zeros
    BOOST_TEST(std::all_of(hole.data(), hole.data() + hole.size(), [](std::byte b) { return b == std::byte{0}; }));
}

// The kernel answers a read past the new end of a shrunk file with SIGBUS;
// exit_on_shrunk_mapping turns that into one line naming the file and status 1.
BOOST_AUTO_TEST_CASE(reading_a_file_that_shrank_while_mapped_exits_naming_it) {
    const paged_file fixture;
    const mapped_file file(fixture.path);
    BOOST_TEST_REQUIRE(::truncate(fixture.path.c_str(), static_cast<off_t>(page_size())) == 0);
    const auto outcome = run_in_child([&] {
        adaptk::exit_on_shrunk_mapping("adaptk-stream");
        const volatile std::byte* past_end = file.data() + 2 * page_size();
        static_cast<void>(*past_end);
    });
    BOOST_TEST(WIFEXITED(outcome.status));
    BOOST_TEST(WEXITSTATUS(outcome.status) == 1);
    BOOST_TEST(outcome.stderr_text == "adaptk-stream: " + std::filesystem::canonical(fixture.path).string() +
                                          ": the file shrank while it was being read (truncated or rewritten by "
                                          "another process)\n");
    // Bytes before the new end still read as they were.
    BOOST_TEST(std::memcmp(file.data(), fixture.bytes.data(), page_size()) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
