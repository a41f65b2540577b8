// report.md: the bug report as Markdown, ready to paste into a GitHub issue (GitHub renders
// the ```mermaid xychart-beta blocks as charts).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/model.h"

namespace nantrace {

std::string render_markdown(const Report& r);

namespace markdown {

// Text made safe for one GitHub table cell: | ` \ * _ [ ] < > escaped, newlines as <br>.
std::string cell(const std::string& text);
// Inline code span for text that may itself hold backticks or newlines.
std::string code(const std::string& text);
// A number as mermaid xychart accepts it: plain decimal, no exponent ("0.000123", "65536").
std::string chart_number(double v);
// At most max_points points chosen evenly, the first and the last always kept.
std::vector<std::pair<int64_t, double>> subsample(const std::vector<std::pair<int64_t, double>>& points,
                                                  size_t max_points);

}  // namespace markdown
}  // namespace nantrace
