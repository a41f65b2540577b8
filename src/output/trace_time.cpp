#include "output/trace_time.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "output/strict_json.h"

namespace nantrace {
namespace trace_time {

std::optional<int64_t> ns_via_double(std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  const double us = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(us)) return std::nullopt;
  const double ns = us * 1000.0;
  if (!(std::fabs(ns) < 9.2e18)) return std::nullopt;
  return int64_t(ns);
}

std::string trace_micros(int64_t ns) {
  std::string text = strict_json::micros(ns);
  if (ns_via_double(text) != ns) text += '5';  // half a ns: the truncating product lands on ns
  return text;
}

std::optional<int64_t> ns_via_text(std::string_view text) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && text[i] == '-') {
    negative = true;
    ++i;
  }
  std::string digits;  // all mantissa digits, the decimal point removed
  int64_t int_digits = -1;
  bool any = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c >= '0' && c <= '9') {
      digits += c;
      any = true;
    } else if (c == '.' && int_digits < 0) {
      int_digits = int64_t(digits.size());
    } else {
      break;
    }
  }
  if (!any) return std::nullopt;
  if (int_digits < 0) int_digits = int64_t(digits.size());
  int64_t exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) exp_negative = text[i++] == '-';
    bool exp_any = false;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      exponent = exponent * 10 + (text[i] - '0');
      exp_any = true;
      if (exponent > 100) return std::nullopt;
    }
    if (!exp_any) return std::nullopt;
    if (exp_negative) exponent = -exponent;
  }
  if (i != text.size()) return std::nullopt;
  // The value in ns has int_digits + exponent + 3 digits before its decimal point.
  const int64_t keep = int_digits + exponent + 3;
  if (keep <= 0) return int64_t(0);
  if (keep > int64_t(digits.size())) digits.append(size_t(keep - int64_t(digits.size())), '0');
  digits.resize(size_t(keep));
  uint64_t v = 0;
  for (char c : digits) {
    const uint64_t d = uint64_t(c - '0');
    if (v > (uint64_t(std::numeric_limits<int64_t>::max()) - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return negative ? -int64_t(v) : int64_t(v);
}

}  // namespace trace_time
}  // namespace nantrace
