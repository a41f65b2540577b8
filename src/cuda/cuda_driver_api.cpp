#include "cuda/cuda_driver_api.h"

#include <dlfcn.h>

#define NT_STR2(x) #x
#define NT_STR(x) NT_STR2(x)

namespace nantrace::cuda {

void resolve_driver_api(void* lib, DriverApi* api) {
  *api = DriverApi{};
  api->lib = lib;
  if (!lib) return;
  // NT_STR expands cuda.h's version macros: NT_STR(cuMemAlloc) == "cuMemAlloc_v2".
#define NT_RESOLVE(name, required)                                            \
  api->name = reinterpret_cast<decltype(&::name)>(dlsym(lib, NT_STR(name)));  \
  if (!api->name && (required)) api->missing_required += std::string(" ") + NT_STR(name);
  NT_DRIVER_FUNCTIONS(NT_RESOLVE)
#undef NT_RESOLVE
}

std::string driver_error(const DriverApi& api, CUresult r) {
  std::string s = "CUresult " + std::to_string(static_cast<int>(r));
  const char* text = nullptr;
  if (api.cuGetErrorString && api.cuGetErrorString(r, &text) == CUDA_SUCCESS && text) {
    s += " (" + std::string(text) + ")";
  }
  return s;
}

}  // namespace nantrace::cuda
