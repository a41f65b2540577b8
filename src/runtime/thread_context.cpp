#include "runtime/thread_context.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace nantrace {

ThreadContext& this_thread_context() {
  thread_local ThreadContext ctx = [] {
    ThreadContext c;
    c.tid = static_cast<uint32_t>(::syscall(SYS_gettid));
    c.scopes.reserve(64);
    return c;
  }();
  return ctx;
}

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

}  // namespace nantrace
