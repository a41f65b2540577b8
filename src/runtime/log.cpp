#include "runtime/log.h"

#include "core/text.h"

#include <mutex>
#include <set>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace nantrace::log {
namespace {

spdlog::logger& logger() {
  // Not registered globally: the host may use spdlog itself.
  static spdlog::logger* l = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto* lg = new spdlog::logger("nantrace", sink);
    lg->set_pattern("nantrace: %v");
    lg->set_level(spdlog::level::info);
    lg->flush_on(spdlog::level::trace);
    return lg;
  }();
  return *l;
}

}  // namespace

void set_level(const std::string& level) {
  if (level == "off") logger().set_level(spdlog::level::off);
  else if (level == "debug") logger().set_level(spdlog::level::debug);
  else if (level == "warn") logger().set_level(spdlog::level::warn);
  else if (level == "error") logger().set_level(spdlog::level::err);
  else logger().set_level(spdlog::level::info);
}

namespace {
// Every log line stays one line, whatever names the host gave its modules.
std::string one_line(const std::string& msg) { return text::escape_controls(msg, /*keep_tabs=*/true); }
}  // namespace

void info(const std::string& msg) { logger().info(one_line(msg)); }
void warn(const std::string& msg) { logger().warn(one_line(msg)); }
void error(const std::string& msg) { logger().error(one_line(msg)); }
void debug(const std::string& msg) { logger().debug(one_line(msg)); }

void warn_once(const std::string& key, const std::string& msg) {
  // Never destroyed: warnings may be logged from exit handlers.
  static auto* mu = new std::mutex();
  static auto* seen = new std::set<std::string>();
  {
    std::lock_guard<std::mutex> lock(*mu);
    if (!seen->insert(key).second) return;
  }
  warn(msg);
}

}  // namespace nantrace::log
