// Fuzzes the Chrome trace reader used by `nantrace merge` (src/output/run_merge.h): rank trace
// files may be cut off by a SIGKILL, truncated by a full disk or corrupted. Besides "no crash,
// no sanitizer report, no uncaught exception": every event handed over is one valid JSON
// object, the count matches, a refusal gets a one-line error, and with_pid() on each event
// gives a valid object carrying that pid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "output/run_merge.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  uint64_t seen = 0;
  nantrace::TraceReadInfo info;
  std::string error;
  const bool ok = nantrace::read_trace_events(
      text,
      [&](std::string_view event) {
        ++seen;
        const auto j = nlohmann::json::parse(event.begin(), event.end(), nullptr, /*allow_exceptions=*/false);
        require(j.is_object());
        const std::string moved = nantrace::with_pid(event, 1007);
        const auto m = nlohmann::json::parse(moved, nullptr, /*allow_exceptions=*/false);
        require(m.is_object());
        require(m.contains("pid") && m["pid"] == 1007);
      },
      &info, &error);
  if (ok) {
    require(info.events == seen);
  } else {
    require(!error.empty());
    require(error.find('\n') == std::string::npos);
  }
  return 0;
}
