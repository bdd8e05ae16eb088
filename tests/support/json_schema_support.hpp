#pragma once
// A validator for the part of JSON Schema (draft 2020-12) that
// docs/summary.schema.json uses: type (one name or a list), enum, minimum,
// required, properties, patternProperties, additionalProperties: false, items.
// Any other keyword in the schema is an error, so the schema cannot promise a
// check this validator silently skips. Annotations ($schema, $id, title,
// description) are ignored.

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace adaptk::test {

inline bool has_json_type(const nlohmann::json& value, const std::string& type) {
    if (type == "null") return value.is_null();
    if (type == "boolean") return value.is_boolean();
    if (type == "integer") return value.is_number_integer();
    if (type == "number") return value.is_number();
    if (type == "string") return value.is_string();
    if (type == "array") return value.is_array();
    if (type == "object") return value.is_object();
    throw std::runtime_error("schema: unknown type '" + type + "'");
}

/// Appends one message per violation of `schema` by `value` (at JSON pointer `where`).
inline void validate_json(const nlohmann::json& schema, const nlohmann::json& value, const std::string& where,
                          std::vector<std::string>& errors) {
    static const std::set<std::string> known{"$schema", "$id", "title", "description", "type", "enum", "minimum",
                                             "required", "properties", "patternProperties", "additionalProperties",
                                             "items"};
    for (const auto& item : schema.items())
        if (!known.count(item.key())) throw std::runtime_error("schema: unsupported keyword '" + item.key() + "' at " + where);

    if (schema.contains("type")) {
        const auto& type = schema["type"];
        bool ok = false;
        if (type.is_array()) {
            for (const auto& t : type) ok = ok || has_json_type(value, t);
        } else {
            ok = has_json_type(value, type);
        }
        if (!ok) {
            errors.push_back(where + ": " + value.dump() + " is not of type " + type.dump());
            return;
        }
    }
    if (schema.contains("enum") && std::find(schema["enum"].begin(), schema["enum"].end(), value) == schema["enum"].end())
        errors.push_back(where + ": " + value.dump() + " is not one of " + schema["enum"].dump());
    if (schema.contains("minimum") && value.is_number() && value.get<double>() < schema["minimum"].get<double>())
        errors.push_back(where + ": " + value.dump() + " is below the minimum " + schema["minimum"].dump());
    if (value.is_object()) {
        const nlohmann::json none = nlohmann::json::object(), required = schema.value("required", nlohmann::json::array());
        const nlohmann::json& patterns = schema.contains("patternProperties") ? schema["patternProperties"] : none;
        for (const auto& name : required)
            if (!value.contains(name.get<std::string>())) errors.push_back(where + ": required '" + name.get<std::string>() + "' missing");
        for (const auto& item : value.items()) {
            const std::string at = where + "/" + item.key();
            bool matched = false;
            if (schema.contains("properties") && schema["properties"].contains(item.key())) {
                matched = true;
                validate_json(schema["properties"][item.key()], item.value(), at, errors);
            }
            for (const auto& pattern : patterns.items())
                if (std::regex_search(item.key(), std::regex(pattern.key()))) {
                    matched = true;
                    validate_json(pattern.value(), item.value(), at, errors);
                }
            if (!matched && schema.value("additionalProperties", true) == false)
                errors.push_back(at + ": not in the schema");
        }
    }
    if (value.is_array() && schema.contains("items"))
        for (std::size_t i = 0; i < value.size(); ++i)
            validate_json(schema["items"], value[i], where + "/" + std::to_string(i), errors);
}

/// Every violation of `schema` by `value`; empty when it conforms.
inline std::vector<std::string> schema_violations(const nlohmann::json& schema, const nlohmann::json& value) {
    std::vector<std::string> errors;
    validate_json(schema, value, "", errors);
    return errors;
}

}  // namespace adaptk::test
