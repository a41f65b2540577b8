// Fatal signals (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) and SIGTERM in the host: write the
// report with a native backtrace (libunwind) and close the trace, then let the signal do what
// it would have done without nantrace, so the host's exit status is unchanged.
#pragma once

#include <string>

namespace nantrace {

void install_crash_handlers();
// Native backtrace of the calling thread, one frame a line ("#3 0x... symbol+off").
std::string native_backtrace(int skip_frames, int max_frames);

}  // namespace nantrace
