#define BOOST_TEST_MODULE table_writer
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>

#include "adaptk/csv.hpp"
#include "adaptk/table_writer.hpp"
#include "cli_support.hpp"

using namespace adaptk;
using adaptk::test::read_text;
using adaptk::test::temp_dir;
namespace bdata = boost::unit_test::data;

namespace {

std::string written(const table& t, table_format format) {
    std::ostringstream out;
    write_table(out, t, format);
    return out.str();
}

// A TSV reader written from the escaping rules in table_writer.hpp: split
// lines at LF, fields at TAB, then undo \\ \t \n \r; any other escape is an error.
std::vector<std::vector<std::string>> parse_tsv(const std::string& text) {
    std::vector<std::vector<std::string>> records;
    if (!text.empty() && text.back() != '\n') throw std::runtime_error("parse_tsv: no final LF");
    std::vector<std::string> fields{""};
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n') {
            records.push_back(std::move(fields));
            fields = {""};
        } else if (c == '\t') {
            fields.emplace_back();
        } else if (c == '\r') {
            throw std::runtime_error("parse_tsv: raw CR");
        } else if (c == '\\') {
            if (++i == text.size()) throw std::runtime_error("parse_tsv: dangling backslash");
            switch (text[i]) {
            case '\\': fields.back() += '\\'; break;
            case 't': fields.back() += '\t'; break;
            case 'n': fields.back() += '\n'; break;
            case 'r': fields.back() += '\r'; break;
            default: throw std::runtime_error("parse_tsv: unknown escape");
            }
        } else {
            fields.back() += c;
        }
    }
    return records;
}

bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

const std::vector<std::string> awkward_texts{"plain", "", "tab\there", "line\nbreak", "cr\rlf\n", "back\\slash",
                                             "\\t literally", "comma, \"quotes\"", "trailing\\"};

}  // namespace

namespace adaptk {
std::ostream& operator<<(std::ostream& out, table_format format) { return out << format_name(format); }
}  // namespace adaptk

BOOST_AUTO_TEST_SUITE(table_writer)

BOOST_AUTO_TEST_CASE(format_names_round_trip_and_unknown_names_are_refused) {
    for (const auto& [format, name] : table_formats) {
        BOOST_TEST(format_name(format) == name);
        BOOST_TEST((format_named(name) == format));
    }
    BOOST_TEST(!format_named("CSV").has_value());
    BOOST_TEST(!format_named("xml").has_value());
    BOOST_TEST(!format_named("").has_value());
}

BOOST_DATA_TEST_CASE(tsv_escapes_backslash_tab_lf_cr_and_reads_back, bdata::make(awkward_texts), text) {
    const table t{"t", {"a", "b"}, {{text, std::int64_t{7}}}};
    const std::string tsv = written(t, table_format::tsv);
    // One line per row whatever the field holds: no raw separators inside fields.
    BOOST_TEST(std::count(tsv.begin(), tsv.end(), '\n') == 2);
    BOOST_TEST(std::count(tsv.begin(), tsv.end(), '\t') == 2);
    BOOST_TEST(tsv.find('\r') == std::string::npos);
    const auto records = parse_tsv(tsv);
    BOOST_TEST_REQUIRE(records.size() == 2u);
    BOOST_TEST((records[0] == std::vector<std::string>{"a", "b"}));
    BOOST_TEST((records[1] == std::vector<std::string>{text, "7"}));
}

BOOST_AUTO_TEST_CASE(tsv_writes_empty_cells_and_nan_as_empty_fields) {
    const table t{"t", {"e", "n", "x"}, {{std::monostate{}, std::nan(""), 0.25}}};
    BOOST_TEST(written(t, table_format::tsv) == "e\tn\tx\n\t\t0.25\n");
}

BOOST_AUTO_TEST_CASE(tsv_and_csv_print_the_same_number_text) {
    std::mt19937_64 random(6);
    table t{"t", {"x"}, {}};
    for (int i = 0; i < 500; ++i) t.rows.push_back({std::ldexp(std::uniform_real_distribution<double>(-1, 1)(random), i % 60 - 30)});
    std::ostringstream csv;
    write_csv(csv, t);
    BOOST_TEST(written(t, table_format::tsv) == csv.str());  // one column: no separators, no quoting
}

BOOST_AUTO_TEST_CASE(json_is_an_array_of_row_objects_keyed_by_column_in_order) {
    const table t{"t", {"type", "count", "value", "missing", "nan", "inf"},
                  {{std::string("q"), std::int64_t{3}, 0.5, std::monostate{}, std::nan(""),
                    std::numeric_limits<double>::infinity()},
                   {std::string("k \"quoted\"\n"), std::int64_t{-9}, -1e-300, std::monostate{}, 2.0, -0.0}}};
    const std::string text = written(t, table_format::json);
    const auto parsed = nlohmann::ordered_json::parse(text);
    BOOST_TEST_REQUIRE(parsed.is_array());
    BOOST_TEST_REQUIRE(parsed.size() == 2u);
    for (const auto& row : parsed) {
        BOOST_TEST_REQUIRE(row.is_object());
        std::vector<std::string> keys;
        for (const auto& item : row.items()) keys.push_back(item.key());
        BOOST_TEST(keys == t.columns);
    }
    BOOST_TEST(parsed[0]["type"] == "q");
    BOOST_TEST(parsed[0]["count"].is_number_integer());
    BOOST_TEST(parsed[0]["count"].get<std::int64_t>() == 3);
    BOOST_TEST(parsed[0]["value"].get<double>() == 0.5);
    BOOST_TEST(parsed[0]["missing"].is_null());
    BOOST_TEST(parsed[0]["nan"].is_null());
    BOOST_TEST(parsed[0]["inf"].is_null());
    BOOST_TEST(parsed[1]["type"] == "k \"quoted\"\n");
    BOOST_TEST(parsed[1]["count"].get<std::int64_t>() == -9);
    BOOST_TEST(parsed[1]["value"].get<double>() == -1e-300);
    // One object per line: line-oriented tools can still split it.
    BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 4);
}

BOOST_AUTO_TEST_CASE(json_numbers_read_back_to_the_same_bits) {
    std::mt19937_64 random(61);
    table t{"t", {"x", "i"}, {}};
    const double specials[]{std::numeric_limits<double>::max(), std::numeric_limits<double>::min(),
                            std::numeric_limits<double>::denorm_min(), 0.1, 1.0 / 3, -0.0, 0.0};
    for (const double s : specials) t.rows.push_back({s, std::int64_t{0}});
    t.rows.push_back({1.0, std::numeric_limits<std::int64_t>::min()});
    t.rows.push_back({1.0, std::numeric_limits<std::int64_t>::max()});
    while (t.rows.size() < 2000) {
        const double x = std::bit_cast<double>(random());
        if (std::isfinite(x)) t.rows.push_back({x, static_cast<std::int64_t>(random())});
    }
    const auto parsed = nlohmann::json::parse(written(t, table_format::json));
    BOOST_TEST_REQUIRE(parsed.size() == t.rows.size());
    std::size_t mismatches = 0;
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
        const double expected = std::get<double>(t.rows[r][0]);
        if (!same_bits(parsed[r]["x"].get<double>(), expected) && !(expected == 0 && parsed[r]["x"].get<double>() == 0))
            ++mismatches;
        if (parsed[r]["i"].get<std::int64_t>() != std::get<std::int64_t>(t.rows[r][1])) ++mismatches;
    }
    BOOST_TEST(mismatches == 0u);
}

BOOST_AUTO_TEST_CASE(json_of_a_table_without_rows_is_an_empty_array) {
    const table t{"t", {"a"}, {}};
    BOOST_TEST(nlohmann::json::parse(written(t, table_format::json)) == nlohmann::json::array());
}

BOOST_AUTO_TEST_CASE(json_replaces_bytes_that_are_not_utf8_instead_of_failing) {
    const table t{"t", {"name"}, {{std::string("w\xff.weight")}}};
    const auto parsed = nlohmann::json::parse(written(t, table_format::json));
    BOOST_TEST(parsed[0]["name"].get<std::string>() == "w\xef\xbf\xbd.weight");
}

BOOST_DATA_TEST_CASE(write_table_file_holds_what_write_table_writes,
                     bdata::make({table_format::csv, table_format::tsv, table_format::json}), format) {
    const temp_dir dir;
    const table t{"t", {"a", "b"}, {{std::string("x\ty"), 1.5}, {std::monostate{}, std::int64_t{2}}}};
    const auto target = dir / "out";
    write_table_file(target, t, format);
    BOOST_TEST(read_text(target) == written(t, format));
    BOOST_TEST(std::distance(std::filesystem::directory_iterator(dir.path()), {}) == 1);  // no temporary left
}

BOOST_AUTO_TEST_SUITE_END()
