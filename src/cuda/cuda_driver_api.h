// The CUDA driver API functions nantrace uses, resolved with dlsym from the process's
// libcuda.so.1 (never linked). The exported names are the versioned ones cuda.h maps to
// (cuMemAlloc -> cuMemAlloc_v2), so the table calls what a program built against these
// headers would call.
#pragma once

#include <cuda.h>

#include <string>

namespace nantrace::cuda {

// X(name, required): required functions must all be present for device scans.
#define NT_DRIVER_FUNCTIONS(X)          \
  X(cuInit, true)                       \
  X(cuDriverGetVersion, true)           \
  X(cuGetErrorString, true)             \
  X(cuCtxGetCurrent, true)              \
  X(cuCtxSetCurrent, true)              \
  X(cuCtxPushCurrent, true)             \
  X(cuCtxPopCurrent, true)              \
  X(cuCtxGetDevice, true)               \
  X(cuDeviceGet, true)                  \
  X(cuDeviceGetCount, true)             \
  X(cuDeviceGetAttribute, true)         \
  X(cuDevicePrimaryCtxRetain, true)     \
  X(cuPointerGetAttribute, true)        \
  X(cuModuleLoadData, true)             \
  X(cuModuleGetFunction, true)          \
  X(cuLaunchKernel, true)               \
  X(cuMemHostAlloc, true)               \
  X(cuMemHostGetDevicePointer, true)    \
  X(cuMemAlloc, true)                   \
  X(cuMemsetD8Async, true)              \
  X(cuEventCreate, true)                \
  X(cuEventRecord, true)                \
  X(cuEventQuery, true)                 \
  X(cuStreamIsCapturing, true)          \
  X(cuStreamCreate, true)               \
  X(cuStreamSynchronize, true)          \
  X(cuStreamDestroy, true)              \
  X(cuMemFree, false)                   \
  X(cuMemcpyHtoD, false)                \
  X(cuMemcpyDtoDAsync, false)           \
  X(cuEventSynchronize, false)          \
  X(cuEventElapsedTime, false)          \
  X(cuEventDestroy, false)

struct DriverApi {
  void* lib = nullptr;
#define NT_DECLARE(name, required) decltype(&::name) name = nullptr;
  NT_DRIVER_FUNCTIONS(NT_DECLARE)
#undef NT_DECLARE
  std::string missing_required;  // space-separated names of required functions not found
  bool usable() const { return lib && missing_required.empty(); }
};

// Fills *api from an open handle of libcuda. Never throws.
void resolve_driver_api(void* lib, DriverApi* api);

// "CUDA_ERROR_NOT_READY (device not ready)"-style text for logs.
std::string driver_error(const DriverApi& api, CUresult r);

}  // namespace nantrace::cuda
