// Fuzzes secret redaction (src/core/redact.h): argv and config values copied into reports
// come from the host and can be anything. Besides "no crash, no sanitizer report, no runaway
// regex": redacting twice changes nothing more than redacting once, and a planted token
// that stands alone between spaces never survives.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/redact.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  const std::string once = nantrace::redact(input);
  const std::string twice = nantrace::redact(once);
  require(twice == once);

  // A GitHub-token-shaped secret between spaces, with fuzz text around it, must be removed.
  const std::string token = "ghp_" + std::string("A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
  const std::string planted = nantrace::redact(input + " " + token + " " + input);
  require(planted.find(token) == std::string::npos);

  // argv: NUL-separated elements.
  std::vector<std::string> argv;
  size_t start = 0;
  for (size_t i = 0; i <= input.size(); ++i) {
    if (i == input.size() || input[i] == '\0') {
      argv.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  }
  const std::vector<std::string> red = nantrace::redact_argv(argv);
  require(red.size() == argv.size());
  for (const std::string& a : argv) (void)nantrace::is_secret_name(a);
  return 0;
}
