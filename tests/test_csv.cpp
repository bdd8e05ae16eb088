#define BOOST_TEST_MODULE csv
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <system_error>
#include <thread>

#include "adaptk/csv.hpp"
#include "adaptk/table_writer.hpp"
#include "cli_support.hpp"

using namespace adaptk;
using adaptk::test::parse_csv;
using adaptk::test::temp_dir;
namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;

namespace {

std::string csv_text(const table& t) {
    std::ostringstream out;
    write_csv(out, t);
    return out.str();
}

/// One column, one row per value.
table column_of(const std::vector<cell>& values) {
    table t{"numbers", {"value"}, {}};
    for (const auto& v : values) t.rows.push_back({v});
    return t;
}

std::vector<std::string> directory_listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

/// A field and the exact text the writer must produce for it.
struct quoting_case {
    std::string field;
    std::string written;
};

std::ostream& operator<<(std::ostream& out, const quoting_case& c) {
    out << "field of " << c.field.size() << " bytes -> ";
    for (const char ch : c.written) {
        if (ch == '\n') out << "\\n";
        else if (ch == '\r') out << "\\r";
        else out << ch;
    }
    return out;
}

const std::vector<quoting_case> quoting_cases{
    {"plain", "plain"},
    {"", ""},
    {"with space", "with space"},
    {" padded ", " padded "},
    {"semi;colon\ttab", "semi;colon\ttab"},
    {"it's", "it's"},
    {"a,b", "\"a,b\""},
    {",", "\",\""},
    {"\"", "\"\"\"\""},
    {"say \"hi\"", "\"say \"\"hi\"\"\""},
    {"\"\"", "\"\"\"\"\"\""},
    {"line\nbreak", "\"line\nbreak\""},
    {"carriage\rreturn", "\"carriage\rreturn\""},
    {"crlf\r\nend", "\"crlf\r\nend\""},
    {"all , \" \r \n", "\"all , \"\" \r \n\""},
};

bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

}  // namespace

BOOST_AUTO_TEST_SUITE(csv)

// The reader the other cases trust: strict where the writer must be.
BOOST_AUTO_TEST_CASE(reference_reader_is_strict) {
    using records = std::vector<std::vector<std::string>>;
    BOOST_TEST((parse_csv("a,\"b,\"\"c\"\"\"\n,\n") == records{{"a", "b,\"c\""}, {"", ""}}));
    BOOST_TEST(parse_csv("").empty());
    BOOST_CHECK_THROW(parse_csv("a,b\r\n"), std::runtime_error);   // CRLF
    BOOST_CHECK_THROW(parse_csv("a,b"), std::runtime_error);         // no final LF
    BOOST_CHECK_THROW(parse_csv("a,\"b\n"), std::runtime_error);     // unterminated quote
    BOOST_CHECK_THROW(parse_csv("a,b\"c\n"), std::runtime_error);    // quote inside a bare field
    BOOST_CHECK_THROW(parse_csv("\"a\"b\n"), std::runtime_error);    // text after a closing quote
    BOOST_CHECK_THROW(parse_csv("a,"), std::runtime_error);          // ends with a separator
}

BOOST_DATA_TEST_CASE(quotes_only_comma_quote_cr_lf_and_doubles_quotes, bdata::make(quoting_cases), c) {
    const table t{"t", {"x"}, {{c.field}}};
    BOOST_TEST(cell_text(cell{c.field}) == c.field);
    BOOST_TEST(csv_text(t) == "x\n" + c.written + "\n");
    const auto records = parse_csv(csv_text(t));
    BOOST_TEST_REQUIRE(records.size() == 2u);
    BOOST_TEST_REQUIRE(records[1].size() == 1u);
    BOOST_TEST(records[1][0] == c.field);
}

BOOST_AUTO_TEST_CASE(header_fields_are_quoted_like_data) {
    const table t{"t", {"plain", "a,b", "q\"uote"}, {}};
    BOOST_TEST(csv_text(t) == "plain,\"a,b\",\"q\"\"uote\"\n");
}

BOOST_AUTO_TEST_CASE(header_row_is_written_for_a_table_without_rows) {
    const table t{"empty", {"type", "index", "eigenvalue"}, {}};
    BOOST_TEST(csv_text(t) == "type,index,eigenvalue\n");
    const auto records = parse_csv(csv_text(t));
    BOOST_TEST_REQUIRE(records.size() == 1u);
    BOOST_TEST(records[0] == (std::vector<std::string>{"type", "index", "eigenvalue"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(lines_end_with_lf_only) {
    table t{"t", {"name", "n", "x"}, {}};
    for (int i = 0; i < 10; ++i) t.rows.push_back({"row" + std::to_string(i), std::int64_t{i}, i * 0.25});
    const std::string text = csv_text(t);
    BOOST_TEST(text.find('\r') == std::string::npos);
    BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 11);
    BOOST_TEST(text.back() == '\n');
    BOOST_TEST(text.starts_with("name,n,x\nrow0,0,0\nrow1,1,0.25\n"));
}

BOOST_AUTO_TEST_CASE(mixed_rows_read_back_field_by_field) {
    const table t{"t",
                  {"text", "int", "real", "empty", "quoted"},
                  {{"q", std::int64_t{5}, 0.5, std::monostate{}, "x,y"},
                   {"", std::int64_t{-7}, -2.0, std::monostate{}, "\"z\""},
                   {std::monostate{}, std::monostate{}, std::numeric_limits<double>::quiet_NaN(), "", "l\nm"}}};
    const auto records = parse_csv(csv_text(t));
    BOOST_TEST_REQUIRE(records.size() == 4u);
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
        BOOST_TEST_REQUIRE(records[r + 1].size() == t.columns.size());
        for (std::size_t c = 0; c < t.columns.size(); ++c) BOOST_TEST(records[r + 1][c] == cell_text(t.rows[r][c]));
    }
    BOOST_TEST(records[1] == (std::vector<std::string>{"q", "5", "0.5", "", "x,y"}), boost::test_tools::per_element());
    BOOST_TEST(records[3] == (std::vector<std::string>{"", "", "", "", "l\nm"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(doubles_round_trip_exactly_through_from_chars) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    std::vector<double> values{0.0,
                               -0.0,
                               1.0,
                               -1.0,
                               0.1,
                               1.0 / 3.0,
                               2.0 / 3.0,
                               1e-300,
                               -1e-300,
                               1e300,
                               -1e300,
                               1e22,
                               1e23,
                               5e-324,
                               -5e-324,
                               2.5e-310,
                               std::numeric_limits<double>::denorm_min(),
                               std::numeric_limits<double>::min(),
                               std::nextafter(std::numeric_limits<double>::min(), 0.0),
                               std::numeric_limits<double>::max(),
                               std::numeric_limits<double>::lowest(),
                               std::numeric_limits<double>::epsilon(),
                               9007199254740993.0,
                               0.30000000000000004};
    std::mt19937_64 random(20240611);
    // Every finite bit pattern is equally likely: covers all exponents, subnormals included.
    while (values.size() < 3000) {
        const double x = std::bit_cast<double>(random());
        if (std::isfinite(x)) values.push_back(x);
    }
    // And numbers of everyday size, where shortest-text bugs show.
    std::uniform_real_distribution<double> uniform(-1e3, 1e3);
    for (int i = 0; i < 2000; ++i) values.push_back(uniform(random));
    BOOST_TEST_REQUIRE(std::count_if(values.begin(), values.end(), [](double x) {
                           return std::fpclassify(x) == FP_SUBNORMAL;
                       }) >= 3);

    std::vector<cell> cells(values.begin(), values.end());
    const auto records = parse_csv(csv_text(column_of(cells)));
    BOOST_TEST_REQUIRE(records.size() == values.size() + 1);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
        const std::string& text = records[i + 1].at(0);
        double back = inf;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), back);
        if (error != std::errc{} || end != text.data() + text.size() || !same_bits(back, values[i])) {
            if (++mismatches <= 5) BOOST_ERROR("value " << i << " written as '" << text << "' does not read back");
        }
    }
    BOOST_TEST(mismatches == 0u);
}

BOOST_AUTO_TEST_CASE(doubles_use_the_shortest_locale_free_text) {
    BOOST_TEST(cell_text(cell{0.1}) == "0.1");
    BOOST_TEST(cell_text(cell{-0.0}) == "-0");
    BOOST_TEST(cell_text(cell{0.5}) == "0.5");
    BOOST_TEST(cell_text(cell{1e300}) == "1e+300");
    BOOST_TEST(cell_text(cell{1e-300}) == "1e-300");
    BOOST_TEST(cell_text(cell{1234.5}) == "1234.5");  // no thousands separator, '.' as the point
    BOOST_TEST(cell_text(cell{5e-324}) == "5e-324");
}

BOOST_AUTO_TEST_CASE(nan_is_an_empty_field) {
    const double quiet = std::numeric_limits<double>::quiet_NaN();
    const std::vector<cell> values{quiet, -quiet, std::numeric_limits<double>::signaling_NaN(), 1.0};
    BOOST_TEST(cell_text(values[0]).empty());
    BOOST_TEST(cell_text(values[1]).empty());
    BOOST_TEST(csv_text(column_of(values)) == "value\n\n\n\n1\n");
    const table t{"t", {"a", "b", "c"}, {{std::int64_t{1}, quiet, std::int64_t{3}}}};
    BOOST_TEST(csv_text(t) == "a,b,c\n1,,3\n");
}

BOOST_AUTO_TEST_CASE(empty_cell_is_an_empty_field) {
    BOOST_TEST(cell_text(cell{}).empty());
    const table t{"t", {"a", "b"}, {{std::monostate{}, std::monostate{}}}};
    BOOST_TEST(csv_text(t) == "a,b\n,\n");
}

BOOST_AUTO_TEST_CASE(integers_are_written_exactly) {
    const std::vector<std::int64_t> values{0,
                                           1,
                                           -1,
                                           42,
                                           1171200,
                                           9007199254740993,  // 2^53 + 1: would not survive a double
                                           std::numeric_limits<std::int64_t>::max(),
                                           std::numeric_limits<std::int64_t>::min()};
    std::vector<cell> cells(values.begin(), values.end());
    const auto records = parse_csv(csv_text(column_of(cells)));
    BOOST_TEST_REQUIRE(records.size() == values.size() + 1);
    for (std::size_t i = 0; i < values.size(); ++i) {
        const std::string& text = records[i + 1].at(0);
        BOOST_TEST(text == std::to_string(values[i]));
        std::int64_t back = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), back);
        BOOST_TEST((error == std::errc{} && end == text.data() + text.size()));
        BOOST_TEST(back == values[i]);
    }
    BOOST_TEST(cell_text(cell{std::int64_t{-9223372036854775807 - 1}}) == "-9223372036854775808");
}

BOOST_AUTO_TEST_CASE(write_csv_file_matches_write_csv_and_leaves_no_temporary) {
    const temp_dir dir;
    const table t{"profile", {"type", "pr", "note"}, {{"q", 5.25, "a,\"b\""}, {"k", std::int64_t{3}, std::monostate{}}}};
    const fs::path target = dir / "profile.csv";
    write_table_file(target, t, table_format::csv);
    BOOST_TEST(adaptk::test::read_text(target) == csv_text(t));
    BOOST_TEST(directory_listing(dir.path()) == std::vector<std::string>{"profile.csv"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(write_csv_file_replaces_an_existing_file) {
    const temp_dir dir;
    const fs::path target = dir / "t.csv";
    adaptk::test::write_text(target, "old contents that are longer than the new table\n");
    const table t{"t", {"x"}, {{std::int64_t{1}}}};
    write_table_file(target, t, table_format::csv);
    BOOST_TEST(adaptk::test::read_text(target) == "x\n1\n");
    BOOST_TEST(directory_listing(dir.path()) == std::vector<std::string>{"t.csv"}, boost::test_tools::per_element());
}

// A reader polling the target while it is rewritten over and over must only
// ever see one complete version or the other: the rename is the commit.
BOOST_AUTO_TEST_CASE(readers_never_see_a_partial_file) {
    const temp_dir dir;
    const fs::path target = dir / "big.csv";
    const table small{"t", {"x"}, {{std::int64_t{1}}}};
    table big{"t", {"name", "index", "value"}, {}};
    for (std::int64_t i = 0; i < 40000; ++i) big.rows.push_back({"row" + std::to_string(i), i, std::sqrt(double(i))});
    const std::string small_text = csv_text(small), big_text = csv_text(big);
    write_table_file(target, small, table_format::csv);

    std::atomic<bool> stop{false};
    std::atomic<int> reads{0}, partial{0}, missing{0};
    std::thread reader([&] {
        while (!stop.load()) {
            std::ifstream in(target, std::ios::binary);
            if (!in) {
                ++missing;
                continue;
            }
            const std::string seen{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
            if (seen != small_text && seen != big_text) ++partial;
            ++reads;
        }
    });
    for (int round = 0; round < 8; ++round) {
        write_table_file(target, big, table_format::csv);
        write_table_file(target, small, table_format::csv);
    }
    while (reads.load() < 20) std::this_thread::yield();  // make sure the reader ran at all
    stop = true;
    reader.join();
    BOOST_TEST(partial.load() == 0);
    BOOST_TEST(missing.load() == 0);
    BOOST_TEST(directory_listing(dir.path()) == std::vector<std::string>{"big.csv"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(missing_directory_throws_system_error_and_leaves_nothing) {
    const temp_dir dir;
    const fs::path target = dir / "no-such-dir" / "profile.csv";
    const table t{"profile", {"x"}, {{std::int64_t{1}}}};
    BOOST_CHECK_EXCEPTION(write_table_file(target, t, table_format::csv), std::system_error, [](const std::system_error& e) {
        return e.code().value() == ENOENT && std::string(e.what()).find("no-such-dir/profile.csv") != std::string::npos;
    });
    BOOST_TEST(!fs::exists(dir / "no-such-dir"));
    BOOST_TEST(directory_listing(dir.path()).empty());
}

BOOST_AUTO_TEST_CASE(failed_rename_throws_and_removes_the_temporary) {
    const temp_dir dir;
    const fs::path target = dir / "t.csv";
    fs::create_directory(target);
    adaptk::test::write_text(target / "keep", "x");  // rename over a non-empty directory must fail
    const table t{"t", {"x"}, {{std::int64_t{1}}}};
    BOOST_CHECK_EXCEPTION(write_table_file(target, t, table_format::csv), std::system_error, [](const std::system_error& e) {
        return std::string(e.what()).find("t.csv") != std::string::npos;
    });
    BOOST_TEST(fs::is_directory(target));
    BOOST_TEST(directory_listing(dir.path()) == std::vector<std::string>{"t.csv"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
