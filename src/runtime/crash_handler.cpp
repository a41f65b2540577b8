#include "runtime/crash_handler.h"

#define UNW_LOCAL_ONLY
#include <cxxabi.h>
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/runtime.h"

namespace nantrace {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGTERM};
struct sigaction g_previous[NSIG];
volatile sig_atomic_t g_in_handler = 0;
volatile sig_atomic_t g_fatal_signal = 0;
constexpr unsigned kWatchdogSeconds = 5;

// If writing the report hangs (the crash may have happened inside malloc, whose lock is then
// held forever), the watchdog ends the process with the original signal: the host's exit
// status stays what it would have been.
void on_watchdog(int) {
  const int sig = g_fatal_signal ? int(g_fatal_signal) : SIGKILL;
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  _exit(128 + sig);
}

void on_signal(int sig, siginfo_t* info, void* uctx) {
  if (!g_in_handler) {
    g_in_handler = 1;
    g_fatal_signal = sig;
    struct sigaction wd {};
    wd.sa_handler = on_watchdog;
    sigemptyset(&wd.sa_mask);
    sigaction(SIGALRM, &wd, nullptr);
    alarm(kWatchdogSeconds);
    // Best effort and bounded: the report writer is not async-signal-safe, which is why the
    // runtime only try-locks; a crash while nantrace itself holds the lock keeps the last
    // flushed trace and provisional report.
    const std::string bt = sig == SIGTERM ? std::string() : native_backtrace(2, 48);
    Runtime::instance().on_fatal_signal(sig, bt);
    alarm(0);
  }
  // Hand the signal to whoever had it before us (or the default action).
  struct sigaction& prev = g_previous[sig];
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) {
      prev.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
    prev.sa_handler(sig);
    return;
  } else if (prev.sa_handler == SIG_IGN) {
    return;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

std::string native_backtrace(int skip_frames, int max_frames) {
  std::string out;
  unw_context_t context;
  unw_cursor_t cursor;
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0) return out;
  int frame = 0;
  while (unw_step(&cursor) > 0 && frame < skip_frames + max_frames) {
    if (frame++ < skip_frames) continue;
    unw_word_t ip = 0, off = 0;
    unw_get_reg(&cursor, UNW_REG_IP, &ip);
    char name[256] = "??";
    if (unw_get_proc_name(&cursor, name, sizeof name, &off) != 0) std::snprintf(name, sizeof name, "??");
    int status = -1;
    char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    char line[512];
    std::snprintf(line, sizeof line, "#%d 0x%lx %s+0x%lx\n", frame - skip_frames - 1, static_cast<unsigned long>(ip),
                  status == 0 && demangled ? demangled : name, static_cast<unsigned long>(off));
    std::free(demangled);
    out += line;
  }
  return out;
}

void install_crash_handlers() {
  for (int sig : kSignals) {
    struct sigaction current {};
    if (sigaction(sig, nullptr, &current) != 0) continue;
    // SIGTERM: only when nobody (Python, the trainer) handles it already.
    if (sig == SIGTERM && !(current.sa_flags & SA_SIGINFO) && current.sa_handler != SIG_DFL) continue;
    struct sigaction sa {};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &g_previous[sig]) != 0) g_previous[sig] = current;
  }
}

}  // namespace nantrace
