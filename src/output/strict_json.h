// Strict JSON out of nlohmann::json: JSON has no NaN/Infinity literals (nlohmann would write
// null, which loses the fact), and strings from the host (module names, paths) may hold
// invalid UTF-8. Shared by the trace writer and the report writer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace nantrace {
namespace strict_json {

// A copy of j in which every non-finite number anywhere (arrays, objects, nested) is replaced
// by the string "nan", "inf" or "-inf".
nlohmann::json finite(const nlohmann::json& j);

// A double as JSON: the number itself when finite, else the string "nan" / "inf" / "-inf".
nlohmann::json number(double v);

// Reads back what number() wrote: a JSON number, or one of those three strings.
std::optional<double> to_double(const nlohmann::json& j);

// Compact strict JSON text: finite() applied, invalid UTF-8 replaced by U+FFFD.
std::string dump(const nlohmann::json& j, int indent = -1);

// JSON string literal (with quotes) of s, invalid UTF-8 replaced.
std::string quote(const std::string& s);

// ns -> microseconds text with exactly 3 decimals ("1700000000000000.123"); exact for any
// int64, where a double would round CLOCK_REALTIME timestamps to 0.25 us.
std::string micros(int64_t ns);

}  // namespace strict_json
}  // namespace nantrace
