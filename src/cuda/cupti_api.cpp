#include "cuda/cupti_api.h"

#include <dlfcn.h>

namespace nantrace::cuda {

void resolve_cupti_api(void* lib, CuptiApi* api) {
  *api = CuptiApi{};
  api->lib = lib;
  if (!lib) return;
#define NT_RESOLVE(name)                                             \
  api->name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name)); \
  if (!api->name) api->missing += " " #name;
  NT_CUPTI_FUNCTIONS(NT_RESOLVE)
#undef NT_RESOLVE
}

std::string cupti_error(const CuptiApi& api, CUptiResult r) {
  std::string s = "CUptiResult " + std::to_string(static_cast<int>(r));
  const char* text = nullptr;
  if (api.cuptiGetResultString && api.cuptiGetResultString(r, &text) == CUPTI_SUCCESS && text) {
    s += " (" + std::string(text) + ")";
  }
  return s;
}

}  // namespace nantrace::cuda
