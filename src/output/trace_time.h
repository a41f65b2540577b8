// Timestamps of the Chrome trace: microseconds relative to the run's start, exact in ns.
//
// Viewers read "ts"/"dur" as doubles. Perfetto's JSON importer turns a number into ns with
// int64(double_us * 1000.0) (truncation) or, for the raw text, by shifting the decimal point
// (src/trace_processor/importers/json/json_utils.cc, CoerceToTs). Epoch microseconds with
// three decimals have more digits than a double holds, so back-to-back spans overlapped after
// import (slice_spill_overlapping_complete_event). Relative values fit a double, but
// truncation still turns "1.001" into 1000 ns. trace_micros() therefore writes every value so
// that both of Perfetto's conversions give back exactly the ns it was given: three decimals,
// plus a trailing 5 (half a nanosecond) where the double product would truncate one ns low.
// Then ts and ts+dur land on the same ns grid as the recorder's own clock, and the nesting of
// spans on a thread is exact after import.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nantrace {
namespace trace_time {

// ns -> decimal microseconds text that both Perfetto conversions read back as ns exactly
// (for |ns| < 2^51, about 26 days; beyond that the three-decimal text is still exact as text).
std::string trace_micros(int64_t ns);

// Perfetto's conversion of a JSON number: int64(strtod(text) * 1000.0). nullopt when the
// text is not a number.
std::optional<int64_t> ns_via_double(std::string_view text);

// Exact decimal reading of a microseconds number ("12.3455", "-4", "1e3"): the ns value with
// digits below 1 ns dropped (toward zero), as Perfetto's text conversion does. nullopt when
// the text is not a plain JSON number or the value does not fit an int64.
std::optional<int64_t> ns_via_text(std::string_view text);

}  // namespace trace_time
}  // namespace nantrace
