// Small text conventions shared by every writer of what a user reads (the report, stderr,
// advice), defined once.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/model.h"

namespace nantrace {
namespace text {

// A number as the report shows it: 6 significant digits ("%.6g"), and "nan", "inf", "-inf".
std::string number(double v);

// Items joined by sep: "a, b, c".
std::string join(const std::vector<std::string>& items, const std::string& sep);

// Host-provided names (module paths can hold newlines) kept on one line: \n, \r (and \t unless
// keep_tabs) written as their escapes, any other control character as '?'.
std::string escape_controls(const std::string& s, bool keep_tabs = false);

// "cuda:1" or "cpu": where a tensor lives. device_type() is torch's device type ("cuda",
// "cpu"), as torch.autocast(device_type=...) takes it.
std::string device(Device d, int32_t index);
const char* device_type(Device d);

// A JSON number, or one of the strings "nan", "inf", "-inf" that strict JSON writes for the
// non-finite ones; nullopt for anything else. The one reading of non-finite JSON numbers.
std::optional<double> json_to_double(const nlohmann::json& j);

}  // namespace text
}  // namespace nantrace
