#include "runtime/log.h"

#include "core/text.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
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

std::atomic<bool> g_progress_bar{false};
std::atomic<int64_t> g_offset_after_last_line{-1};  // stderr's file offset after our last line

// What must come before a line so that it starts on a line of its own: nothing unless a
// progress bar is drawing; then on a terminal "\r" and erase-line (the bar's partial line is
// replaced; the bar redraws itself), elsewhere a newline, unless a regular file shows that
// nothing was written since our own last line.
std::string line_start() {
  if (!g_progress_bar.load(std::memory_order_relaxed)) return "";
  if (::isatty(STDERR_FILENO)) return "\r\033[K";
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
    const off_t now = ::lseek(STDERR_FILENO, 0, SEEK_CUR);
    if (now >= 0 && now == off_t(g_offset_after_last_line.load())) return "";
  }
  return "\n";
}

void remember_offset() {
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode))
    g_offset_after_last_line.store(int64_t(::lseek(STDERR_FILENO, 0, SEEK_CUR)));
}

template <class F>
void emit(spdlog::level::level_enum level, const std::string& msg, F&& write) {
  if (!logger().should_log(level)) return;
  const std::string prefix = line_start();
  if (!prefix.empty()) {
    std::fputs(prefix.c_str(), stderr);
    std::fflush(stderr);
  }
  write(one_line(msg));
  remember_offset();
}

}  // namespace

void set_progress_bar(bool active) { g_progress_bar.store(active, std::memory_order_relaxed); }

void info(const std::string& msg) { emit(spdlog::level::info, msg, [](const std::string& m) { logger().info(m); }); }
void warn(const std::string& msg) { emit(spdlog::level::warn, msg, [](const std::string& m) { logger().warn(m); }); }
void error(const std::string& msg) { emit(spdlog::level::err, msg, [](const std::string& m) { logger().error(m); }); }
void debug(const std::string& msg) { emit(spdlog::level::debug, msg, [](const std::string& m) { logger().debug(m); }); }

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
