#include "core/text.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace nantrace {
namespace text {

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i];
  return s;
}

std::string escape_controls(const std::string& s, bool keep_tabs) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += keep_tabs ? "\t" : "\\t";
    else if (static_cast<unsigned char>(c) < 0x20) out += '?';
    else out += c;
  }
  return out;
}

std::string device(Device d, int32_t index) { return d == Device::CUDA ? "cuda:" + std::to_string(index) : "cpu"; }

const char* device_type(Device d) { return d == Device::CUDA ? "cuda" : "cpu"; }

std::optional<double> json_to_double(const nlohmann::json& j) {
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s == "nan") return std::nan("");
    if (s == "inf") return HUGE_VAL;
    if (s == "-inf") return -HUGE_VAL;
  }
  return std::nullopt;
}

}  // namespace text
}  // namespace nantrace
