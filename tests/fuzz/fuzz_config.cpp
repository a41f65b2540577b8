// Fuzzes the configuration parser with arbitrary environment values (issue 5 items 5 and 8).
// The input is split at NUL bytes; each piece becomes the value of one NANTRACE_* variable
// (in the order below, cycling), so single-variable and many-variable inputs both occur.
// Checked besides "no crash, no sanitizer report": a rejected value gives exactly one short,
// single-line message naming its variable, and every accepted value lies in its range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"

namespace {

const char* const kVariables[] = {
    "NANTRACE_DISABLE",      "NANTRACE_DIR",          "NANTRACE_RUN_DIR",   "NANTRACE_CHECK",
    "NANTRACE_EVERY",        "NANTRACE_WINDOW",       "NANTRACE_DETAIL_STEPS", "NANTRACE_MAX_TRACE_MB",
    "NANTRACE_WARN_STEPS",   "NANTRACE_LOG",          "NANTRACE_CUDA",
};
constexpr size_t kNumVariables = sizeof(kVariables) / sizeof(kVariables[0]);

void require(bool ok) {
  if (!ok) std::abort();  // libFuzzer reports the input that broke the contract
}

void check_errors(const std::vector<std::string>& errors, size_t values_given) {
  require(errors.size() <= values_given);
  for (const std::string& e : errors) {
    require(e.rfind("NANTRACE_", 0) == 0);        // names its variable first
    require(e.find('\n') == std::string::npos);  // one line, whatever the value held
    require(e.find('\r') == std::string::npos);
    require(e.size() < 512);                     // hostile values are shortened
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  // 1. Every variable at once, values from the NUL-separated pieces.
  std::map<std::string, std::string> env;
  size_t start = 0, index = 0;
  for (size_t i = 0; i <= input.size(); ++i) {
    if (i == input.size() || input[i] == '\0') {
      env[kVariables[index % kNumVariables]] = input.substr(start, i - start);
      ++index;
      start = i + 1;
    }
  }
  std::vector<std::string> errors;
  const nantrace::Config c = nantrace::parse_config(
      [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      &errors);
  check_errors(errors, env.size());
  require(c.every == nantrace::kEveryAuto || (c.every >= 1 && c.every <= 1000000));  // auto, or 1..1000000
  require(c.window >= 1 && c.window <= 100000);
  require(c.warmup_detail_steps >= 0 && c.warmup_detail_steps <= 100000);
  require(c.max_trace_mb >= 1 && c.max_trace_mb <= 1000000);
  require(c.warn_horizon >= 1 && c.warn_horizon <= 1000000);
  require(c.check_level == nantrace::CheckLevel::Off || c.check_level == nantrace::CheckLevel::Module ||
          c.check_level == nantrace::CheckLevel::Op);
  require(!c.output_root.empty());
  const std::string& log = c.log_level;
  require(log == "debug" || log == "info" || log == "warn" || log == "error" || log == "off");

  // 2. The value parsers on the whole input, with ranges taken from its first bytes.
  bool b = false;
  (void)nantrace::parse_bool(input, &b);
  int64_t lo = 0, hi = 0, v = 0;
  if (size >= 2) {
    lo = int64_t(int8_t(data[0])) * 1000;
    hi = lo + int64_t(data[1]) * 1000;
  }
  const std::string number = size >= 2 ? input.substr(2) : input;
  if (nantrace::parse_int_in_range(number, lo, hi, &v)) require(v >= lo && v <= hi);
  if (nantrace::parse_int_in_range(input, INT64_MIN, INT64_MAX, &v)) {
    // Strict means no junk after the number, a NUL byte included (std::string may hold one).
    require(!input.empty() && input.find('\0') == std::string::npos);
  }
  return 0;
}
