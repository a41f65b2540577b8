// nantrace's own log lines on stderr, prefixed "nantrace:". The host's stdout is never used.
#pragma once

#include <string>

namespace nantrace::log {

void set_level(const std::string& level);  // debug|info|warn|error|off
void info(const std::string& msg);
void warn(const std::string& msg);
void error(const std::string& msg);
void debug(const std::string& msg);
// Logs msg at warn level the first time key is seen in this process; later calls are silent.
void warn_once(const std::string& key, const std::string& msg);

}  // namespace nantrace::log
