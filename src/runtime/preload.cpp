// What happens when ld.so maps libnantrace.so into a process (LD_PRELOAD): in a Python
// interpreter, point Python at our bootstrap and CUDA at our injection entry; anywhere else
// (a shell, ls, ffmpeg, nvidia-smi) do nothing at all: no threads, no files, no output.
#include <dlfcn.h>
#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "nantrace/nantrace.h"
#include "runtime/runtime.h"

namespace {

bool is_python_interpreter() {
  // Both a shared libpython and a statically linked interpreter export this symbol.
  return dlsym(RTLD_DEFAULT, "Py_BytesMain") != nullptr || dlsym(RTLD_DEFAULT, "Py_Main") != nullptr;
}

bool env_true(const char* name) {
  const char* v = std::getenv(name);
  return v && (std::strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
               strcasecmp(v, "on") == 0);
}

std::string own_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&nantrace_abi_version), &info) == 0 || !info.dli_fname) return {};
  char* real = realpath(info.dli_fname, nullptr);
  std::string p = real ? real : info.dli_fname;
  std::free(real);
  return p;
}

void prepend_path_var(const char* var, const std::string& dir) {
  const char* old = std::getenv(var);
  if (old && *old) {
    // Already first (a child of an injected process): leave it.
    const std::string o(old);
    if (o == dir || o.rfind(dir + ":", 0) == 0) return;
    setenv(var, (dir + ":" + o).c_str(), 1);
  } else {
    setenv(var, dir.c_str(), 1);
  }
}

void after_fork_in_child() { nantrace::Runtime::instance().on_fork_child(); }

__attribute__((constructor)) void nantrace_preload_init() {
  if (!is_python_interpreter() || env_true("NANTRACE_DISABLE")) return;
  const std::string lib = own_path();
  if (lib.empty()) return;
  const std::string dir = lib.substr(0, lib.rfind('/'));
  setenv("NANTRACE_LIB", lib.c_str(), 1);
  prepend_path_var("PYTHONPATH", dir + "/python");
  const char* cuda = std::getenv("NANTRACE_CUDA");
  if (!std::getenv("CUDA_INJECTION64_PATH") && !(cuda && std::strcmp(cuda, "off") == 0))
    setenv("CUDA_INJECTION64_PATH", lib.c_str(), 1);
  pthread_atfork(nullptr, nullptr, after_fork_in_child);
}

}  // namespace

// CUDA_INJECTION64_PATH: the driver calls this at CUDA initialisation. Inert outside Python.
extern "C" NT_API int InitializeInjection(void) {
  try {
    if (!is_python_interpreter()) return 1;
    nantrace::Runtime::instance().initialize_cuda_injection();
  } catch (...) {
  }
  return 1;
}
