// The NVRTC functions used to compile the scan kernel at run time, resolved with dlsym from
// the process's libnvrtc (never linked).
#pragma once

#include <nvrtc.h>

#include <string>

namespace nantrace::cuda {

#define NT_NVRTC_FUNCTIONS(X)     \
  X(nvrtcVersion)                 \
  X(nvrtcGetErrorString)          \
  X(nvrtcCreateProgram)           \
  X(nvrtcDestroyProgram)          \
  X(nvrtcCompileProgram)          \
  X(nvrtcGetProgramLogSize)       \
  X(nvrtcGetProgramLog)           \
  X(nvrtcGetPTXSize)              \
  X(nvrtcGetPTX)                  \
  X(nvrtcGetCUBINSize)            \
  X(nvrtcGetCUBIN)                \
  X(nvrtcGetNumSupportedArchs)    \
  X(nvrtcGetSupportedArchs)

struct NvrtcApi {
  void* lib = nullptr;
#define NT_DECLARE(name) decltype(&::name) name = nullptr;
  NT_NVRTC_FUNCTIONS(NT_DECLARE)
#undef NT_DECLARE
  std::string missing;
  bool usable() const { return lib && missing.empty(); }
};

void resolve_nvrtc_api(void* lib, NvrtcApi* api);

}  // namespace nantrace::cuda
