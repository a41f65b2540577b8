#include "cuda/nvrtc_api.h"

#include <dlfcn.h>

namespace nantrace::cuda {

void resolve_nvrtc_api(void* lib, NvrtcApi* api) {
  *api = NvrtcApi{};
  api->lib = lib;
  if (!lib) return;
#define NT_RESOLVE(name)                                             \
  api->name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name)); \
  if (!api->name) api->missing += " " #name;
  NT_NVRTC_FUNCTIONS(NT_RESOLVE)
#undef NT_RESOLVE
}

}  // namespace nantrace::cuda
