// report.json: the machine-readable bug report (schema v1, documented in docs/outputs.md).
// Written at the end of a run and read back by `nantrace merge` to combine ranks.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/model.h"

namespace nantrace {

inline constexpr int kReportVersion = 1;

// The report as JSON. Non-finite numbers (a NaN loss in a series) are the strings "nan",
// "inf", "-inf"; dump it with strict_json::dump (or report_to_json_text) for strict JSON.
nlohmann::json report_to_json(const Report& r);

// Strict JSON text of report_to_json(r), indented for people.
std::string report_to_json_text(const Report& r);

// Parses a report.json back (for `nantrace merge`); false + one-line *error naming what is
// wrong ("field 'finding.stats.nan': expected an unsigned integer, got string").
bool report_from_json(const nlohmann::json& j, Report* out, std::string* error);

// Same from text; a truncated or malformed file gives "not valid JSON (truncated?) ...".
bool report_from_json_text(const std::string& text, Report* out, std::string* error);

}  // namespace nantrace
