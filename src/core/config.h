// Configuration from NANTRACE_* environment variables, validated once.
// A bad value never stops the host: it yields one clear message and the default.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace nantrace {

enum class CheckLevel : int32_t { Off = 0, Module = 1, Op = 2 };

inline constexpr int64_t kEveryAuto = 0;  // NANTRACE_EVERY=auto

struct Config {
  bool disabled = false;             // NANTRACE_DISABLE
  std::string output_root = "nantrace_runs";  // NANTRACE_DIR
  std::string run_dir;               // NANTRACE_RUN_DIR (set for child processes of one run)
  CheckLevel check_level = CheckLevel::Module;  // NANTRACE_CHECK
  // NANTRACE_EVERY: module checks on every Nth step; kEveryAuto (the default) lets the frontend
  // choose from the steps' own time (every step, or every 16th once steps are short).
  int64_t every = kEveryAuto;
  int64_t window = 8;                // NANTRACE_WINDOW: steps of full trace detail around the fault
  int64_t warmup_detail_steps = 3;   // NANTRACE_DETAIL_STEPS: steps of full detail at the start
  int64_t max_trace_mb = 256;        // NANTRACE_MAX_TRACE_MB
  int64_t warn_horizon = 20;         // NANTRACE_WARN_STEPS: trend warning horizon in steps
  std::string log_level = "info";    // NANTRACE_LOG: debug|info|warn|error|off
  bool cuda = true;                  // NANTRACE_CUDA: auto|off
};

// Parses from a getenv-like lookup (tests pass a map). Every rejected value adds one line
// to *errors naming the variable, the value and what is accepted.
Config parse_config(const std::function<const char*(const char*)>& getenv_fn, std::vector<std::string>* errors);
Config config_from_environment(std::vector<std::string>* errors);

// Individual value parsers, strict (no trailing junk). Exposed for tests and fuzzing.
bool parse_bool(const std::string& text, bool* out);
bool parse_int_in_range(const std::string& text, int64_t lo, int64_t hi, int64_t* out);

}  // namespace nantrace
