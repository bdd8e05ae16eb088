#define BOOST_TEST_MODULE svg
#include <boost/test/unit_test.hpp>

#include "adaptk/svg.hpp"
#include "xml_support.hpp"

using namespace adaptk;
using adaptk::test::parse_xml;

BOOST_AUTO_TEST_SUITE(svg)

BOOST_AUTO_TEST_CASE(reference_parser_refuses_what_is_not_well_formed) {
    BOOST_CHECK_NO_THROW(parse_xml("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; u</a>\n"));
    BOOST_CHECK_THROW(parse_xml("<a><b></a></b>"), std::runtime_error);
    BOOST_CHECK_THROW(parse_xml("<a>"), std::runtime_error);
    BOOST_CHECK_THROW(parse_xml("<a x=\"1\" x=\"2\"/>"), std::runtime_error);
    BOOST_CHECK_THROW(parse_xml("<a>x < y</a>"), std::runtime_error);
    BOOST_CHECK_THROW(parse_xml("<a>&nbsp;</a>"), std::runtime_error);
    BOOST_CHECK_THROW(parse_xml("<a/><b/>"), std::runtime_error);
    BOOST_CHECK_THROW(parse_xml("<a x=1/>"), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(numbers_have_at_most_two_decimals_and_no_trailing_zeros) {
    BOOST_TEST(svg_number(12.5) == "12.5");
    BOOST_TEST(svg_number(3) == "3");
    BOOST_TEST(svg_number(0.125) == "0.13");
    BOOST_TEST(svg_number(-0.001) == "0");
    BOOST_TEST(svg_number(-7.25) == "-7.25");
    BOOST_TEST(svg_number(1234567.891) == "1234567.89");
}

BOOST_AUTO_TEST_CASE(text_and_attribute_values_are_escaped) {
    BOOST_TEST(xml_escaped("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
    svg_writer svg(100, 50);
    svg.text(1, 2, "R² <&> \"x\"", {{"data-label", "a\"b<c"}});
    const auto elements = parse_xml(svg.finish());
    BOOST_TEST_REQUIRE(elements.size() == 3u);  // svg, background rect, text
    BOOST_TEST(elements[2].tag == "text");
    BOOST_TEST(elements[2].text == "R² <&> \"x\"");
    BOOST_TEST(elements[2].at("data-label") == "a\"b<c");
}

BOOST_AUTO_TEST_CASE(a_document_is_one_svg_root_with_size_and_white_background) {
    svg_writer svg(800, 500.5);
    svg.open_group({{"class", "outer"}});
    svg.open_group({{"class", "inner"}});
    svg.element("circle", {{"cx", "1"}, {"cy", "2"}, {"r", "3"}});
    svg.close_group();
    svg.polyline({{0, 0}, {1.006, 2.25}}, {{"stroke", "red"}});
    const std::string text = svg.finish();  // closes the outer group itself
    const auto elements = parse_xml(text);
    BOOST_TEST_REQUIRE(elements.size() == 6u);
    BOOST_TEST(elements[0].tag == "svg");
    BOOST_TEST(elements[0].at("xmlns") == "http://www.w3.org/2000/svg");
    BOOST_TEST(elements[0].at("viewBox") == "0 0 800 500.5");
    BOOST_TEST(elements[1].at("fill") == "white");
    BOOST_TEST(elements[4].parent == "g");
    BOOST_TEST(elements[5].tag == "polyline");
    BOOST_TEST(elements[5].parent == "g");
    BOOST_TEST(elements[5].at("points") == "0,0 1.01,2.25");
    BOOST_TEST(elements[5].at("fill") == "none");
}

BOOST_AUTO_TEST_CASE(closing_a_group_that_is_not_open_is_a_logic_error) {
    svg_writer svg(10, 10);
    BOOST_CHECK_THROW(svg.close_group(), std::logic_error);
}

BOOST_AUTO_TEST_SUITE_END()
