// Fuzzes the report.json reader (`nantrace merge` reads rank files that a killed or crashed
// rank may have left truncated or corrupted). Besides "no crash, no sanitizer report, no
// uncaught exception": a rejected input gets a one-line error; an accepted one survives a
// write/read round trip, and writing is then stable (write(read(write(r))) == write(r)), so
// whatever the reader accepts the writer can reproduce and the reader accepts again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "output/report_json.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nantrace::Report r;
  std::string error;
  if (!nantrace::report_from_json_text(text, &r, &error)) {
    require(!error.empty());
    require(error.find('\n') == std::string::npos);
    return 0;
  }
  const std::string first = nantrace::report_to_json_text(r);
  nantrace::Report again;
  std::string error2;
  require(nantrace::report_from_json_text(first, &again, &error2));
  require(nantrace::report_to_json_text(again) == first);
  return 0;
}
