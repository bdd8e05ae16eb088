#pragma once
// A strict reader for the XML subset the SVG writer may produce (declaration,
// elements, double-quoted attributes, text, the five predefined entities), for
// tests: it throws on anything else, on unbalanced or mismatched tags, on a
// repeated attribute and on text after the root. Written apart from
// src/svg.cpp so the writer is checked against an independent parser.

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace adaptk::test {

struct xml_element {
    std::string tag;
    std::map<std::string, std::string> attributes;
    std::string text;       ///< character data directly inside, entities decoded
    std::string parent;     ///< tag of the enclosing element ("" for the root)
    const std::string& at(const std::string& name) const {
        const auto found = attributes.find(name);
        if (found == attributes.end()) throw std::runtime_error("<" + tag + "> has no attribute " + name);
        return found->second;
    }
};

inline std::string xml_decoded(std::string_view text) {
    static const std::map<std::string, char, std::less<>> entities{
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '<') throw std::runtime_error("xml: raw '<' in text");
        if (text[i] != '&') {
            out += text[i];
            continue;
        }
        const auto semicolon = text.find(';', i);
        if (semicolon == std::string_view::npos) throw std::runtime_error("xml: unterminated entity");
        const auto found = entities.find(text.substr(i + 1, semicolon - i - 1));
        if (found == entities.end()) throw std::runtime_error("xml: unknown entity");
        out += found->second;
        i = semicolon;
    }
    return out;
}

/// Every element in document order. Throws std::runtime_error when not well-formed.
inline std::vector<xml_element> parse_xml(std::string_view doc) {
    std::vector<xml_element> elements;
    std::vector<std::size_t> open;  // indices into elements
    std::size_t i = 0;
    if (doc.starts_with("<?xml")) {
        const auto end = doc.find("?>");
        if (end == std::string_view::npos) throw std::runtime_error("xml: unterminated declaration");
        i = end + 2;
    }
    bool root_closed = false;
    auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':'; };
    while (i < doc.size()) {
        if (doc[i] != '<') {
            const auto next = doc.find('<', i);
            const std::string text = xml_decoded(doc.substr(i, next == std::string_view::npos ? std::string_view::npos : next - i));
            if (open.empty()) {
                if (text.find_first_not_of(" \t\r\n") != std::string::npos) throw std::runtime_error("xml: text outside the root");
            } else {
                elements[open.back()].text += text;
            }
            if (next == std::string_view::npos) break;
            i = next;
            continue;
        }
        if (doc.substr(i, 2) == "</") {
            const auto end = doc.find('>', i);
            if (end == std::string_view::npos) throw std::runtime_error("xml: unterminated end tag");
            const std::string name(doc.substr(i + 2, end - i - 2));
            if (open.empty() || elements[open.back()].tag != name) throw std::runtime_error("xml: mismatched </" + name + ">");
            open.pop_back();
            if (open.empty()) root_closed = true;
            i = end + 1;
            continue;
        }
        if (root_closed) throw std::runtime_error("xml: a second root element");
        xml_element e;
        std::size_t j = i + 1;
        while (j < doc.size() && is_name_char(doc[j])) e.tag += doc[j++];
        if (e.tag.empty()) throw std::runtime_error("xml: empty tag name");
        e.parent = open.empty() ? "" : elements[open.back()].tag;
        bool self_closing = false;
        while (true) {
            while (j < doc.size() && (doc[j] == ' ' || doc[j] == '\n')) ++j;
            if (j >= doc.size()) throw std::runtime_error("xml: unterminated tag <" + e.tag + ">");
            if (doc.substr(j, 2) == "/>") {
                self_closing = true;
                j += 2;
                break;
            }
            if (doc[j] == '>') {
                ++j;
                break;
            }
            std::string name;
            while (j < doc.size() && is_name_char(doc[j])) name += doc[j++];
            if (name.empty() || doc.substr(j, 2) != "=\"") throw std::runtime_error("xml: bad attribute in <" + e.tag + ">");
            const auto close = doc.find('"', j + 2);
            if (close == std::string_view::npos) throw std::runtime_error("xml: unterminated attribute value");
            if (!e.attributes.emplace(name, xml_decoded(doc.substr(j + 2, close - j - 2))).second)
                throw std::runtime_error("xml: repeated attribute " + name);
            j = close + 1;
        }
        elements.push_back(std::move(e));
        if (self_closing) {
            if (open.empty()) root_closed = true;
        } else {
            open.push_back(elements.size() - 1);
        }
        i = j;
    }
    if (!open.empty()) throw std::runtime_error("xml: <" + elements[open.back()].tag + "> never closed");
    if (!root_closed) throw std::runtime_error("xml: no root element");
    return elements;
}

}  // namespace adaptk::test
