#include "output/strict_json.h"

#include "core/text.h"

#include <cmath>
#include <cstdio>

namespace nantrace {
namespace strict_json {

using nlohmann::json;

json number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

std::optional<double> to_double(const json& j) { return text::json_to_double(j); }

json finite(const json& j) {
  switch (j.type()) {
    case json::value_t::number_float:
      return number(j.get<double>());
    case json::value_t::array: {
      json out = json::array();
      for (const auto& e : j) out.push_back(finite(e));
      return out;
    }
    case json::value_t::object: {
      json out = json::object();
      for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = finite(it.value());
      return out;
    }
    default:
      return j;
  }
}

std::string dump(const json& j, int indent) {
  return finite(j).dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string quote(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string micros(int64_t ns) {
  // Work in unsigned magnitude so INT64_MIN does not overflow.
  const bool negative = ns < 0;
  const uint64_t mag = negative ? uint64_t(0) - uint64_t(ns) : uint64_t(ns);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%llu.%03llu", negative ? "-" : "", (unsigned long long)(mag / 1000),
                (unsigned long long)(mag % 1000));
  return buf;
}

}  // namespace strict_json
}  // namespace nantrace
