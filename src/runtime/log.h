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
// A progress bar (tqdm) is drawing on the terminal: its line does not end with a newline, so
// each nantrace line first starts a line of its own (on a terminal the bar's line is cleared,
// as tqdm.write does; tqdm redraws it on its next update).
void set_progress_bar(bool active);

}  // namespace nantrace::log
