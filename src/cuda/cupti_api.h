// The CUPTI functions nantrace uses, resolved with dlsym from the process's libcupti
// (12.x or 13.x as PyTorch wheels ship it; never linked). Every function here exists,
// unversioned, in every libcupti since CUDA 10.
#pragma once

#include <cupti.h>

#include <string>

namespace nantrace::cuda {

#define NT_CUPTI_FUNCTIONS(X)                 \
  X(cuptiGetVersion)                          \
  X(cuptiGetResultString)                     \
  X(cuptiSubscribe)                           \
  X(cuptiUnsubscribe)                         \
  X(cuptiEnableCallback)                      \
  X(cuptiActivityEnable)                      \
  X(cuptiActivityDisable)                     \
  X(cuptiActivityRegisterCallbacks)           \
  X(cuptiActivityFlushAll)                    \
  X(cuptiActivityGetNextRecord)               \
  X(cuptiActivityGetNumDroppedRecords)

struct CuptiApi {
  void* lib = nullptr;
#define NT_DECLARE(name) decltype(&::name) name = nullptr;
  NT_CUPTI_FUNCTIONS(NT_DECLARE)
#undef NT_DECLARE
  std::string missing;  // space-separated names not found
  bool usable() const { return lib && missing.empty(); }
};

void resolve_cupti_api(void* lib, CuptiApi* api);
std::string cupti_error(const CuptiApi& api, CUptiResult r);

}  // namespace nantrace::cuda
