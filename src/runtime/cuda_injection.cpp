// CUDA_INJECTION64_PATH names libnantrace_runtime.so: the driver calls this at CUDA
// initialisation. Inert outside a Python interpreter (the variable is inherited by every
// child process, CUDA programs included).
#include <dlfcn.h>

#include "nantrace/nantrace.h"
#include "runtime/runtime.h"

namespace {
bool is_python_interpreter() {
  return dlsym(RTLD_DEFAULT, "Py_BytesMain") != nullptr || dlsym(RTLD_DEFAULT, "Py_Main") != nullptr;
}
}  // namespace

extern "C" NT_API int InitializeInjection(void) {
  try {
    if (!is_python_interpreter()) return 1;
    nantrace::Runtime::instance().initialize_cuda_injection();
  } catch (...) {
  }
  return 1;
}
