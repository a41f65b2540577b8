#include "core/config.h"

#include <cerrno>
#include <cstdlib>
#include <string>

namespace nantrace {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string shown(const std::string& v) {
  // Keep messages one line and short even for hostile values.
  std::string out;
  for (char c : v.substr(0, 64)) out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  if (v.size() > 64) out += "...";
  return out;
}

void reject(std::vector<std::string>* errors, const char* var, const std::string& value, const std::string& accepted,
            const std::string& used) {
  if (errors)
    errors->push_back(std::string(var) + "='" + shown(value) + "' is not valid: expected " + accepted + "; using " +
                      used);
}

}  // namespace

bool parse_bool(const std::string& text, bool* out) {
  const std::string t = lower(text);
  if (t == "1" || t == "true" || t == "yes" || t == "on") return *out = true, true;
  if (t == "0" || t == "false" || t == "no" || t == "off" || t.empty()) return *out = false, true;
  return false;
}

bool parse_int_in_range(const std::string& text, int64_t lo, int64_t hi, int64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || end != text.c_str() + text.size()) return false;  // no junk, not even after a NUL
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

Config parse_config(const std::function<const char*(const char*)>& getenv_fn, std::vector<std::string>* errors) {
  Config c;
  auto get = [&](const char* name, std::string* value) {
    const char* v = getenv_fn(name);
    if (!v) return false;
    *value = v;
    return true;
  };
  std::string v;
  if (get("NANTRACE_DISABLE", &v) && !parse_bool(v, &c.disabled))
    reject(errors, "NANTRACE_DISABLE", v, "1/0, true/false, yes/no or on/off", "0 (enabled)");
  if (get("NANTRACE_DIR", &v)) {
    if (v.empty() || v.find('\0') != std::string::npos)
      reject(errors, "NANTRACE_DIR", v, "a directory path", c.output_root);
    else
      c.output_root = v;
  }
  if (get("NANTRACE_RUN_DIR", &v) && !v.empty()) c.run_dir = v;
  if (get("NANTRACE_CHECK", &v)) {
    const std::string t = lower(v);
    if (t == "off" || t == "none" || t == "0")
      c.check_level = CheckLevel::Off;
    else if (t == "module" || t == "1")
      c.check_level = CheckLevel::Module;
    else if (t == "op" || t == "2")
      c.check_level = CheckLevel::Op;
    else
      reject(errors, "NANTRACE_CHECK", v, "off, module or op", "module");
  }
  if (get("NANTRACE_EVERY", &v)) {
    int64_t parsed = 0;
    if (lower(v) == "auto")
      c.every = kEveryAuto;
    else if (parse_int_in_range(v, 1, 1000000, &parsed))
      c.every = parsed;
    else
      reject(errors, "NANTRACE_EVERY", v, "auto or a whole number from 1 to 1000000", "auto");
  }
  struct IntVar {
    const char* name;
    int64_t lo, hi;
    int64_t* field;
    const char* words;
  } ints[] = {
      {"NANTRACE_WINDOW", 1, 100000, &c.window, "a whole number of steps from 1 to 100000"},
      {"NANTRACE_DETAIL_STEPS", 0, 100000, &c.warmup_detail_steps, "a whole number of steps from 0 to 100000"},
      {"NANTRACE_MAX_TRACE_MB", 1, 1000000, &c.max_trace_mb, "a whole number of MiB from 1 to 1000000"},
      {"NANTRACE_WARN_STEPS", 1, 1000000, &c.warn_horizon, "a whole number of steps from 1 to 1000000"},
  };
  for (const IntVar& iv : ints) {
    if (!get(iv.name, &v)) continue;
    int64_t parsed = 0;
    if (parse_int_in_range(v, iv.lo, iv.hi, &parsed))
      *iv.field = parsed;
    else
      reject(errors, iv.name, v, iv.words, std::to_string(*iv.field));
  }
  if (get("NANTRACE_LOG", &v)) {
    const std::string t = lower(v);
    if (t == "debug" || t == "info" || t == "warn" || t == "error" || t == "off")
      c.log_level = t;
    else
      reject(errors, "NANTRACE_LOG", v, "debug, info, warn, error or off", "info");
  }
  if (get("NANTRACE_CUDA", &v)) {
    const std::string t = lower(v);
    if (t == "auto" || t == "on" || t == "1")
      c.cuda = true;
    else if (t == "off" || t == "0")
      c.cuda = false;
    else
      reject(errors, "NANTRACE_CUDA", v, "auto or off", "auto");
  }
  return c;
}

Config config_from_environment(std::vector<std::string>* errors) {
  return parse_config([](const char* name) { return std::getenv(name); }, errors);
}

}  // namespace nantrace
