// The scan kernel as a loaded CUDA module: compiled at run time with the process's NVRTC
// for the device in use (CUBIN for its exact architecture when NVRTC knows it, else PTX for
// the newest architecture NVRTC supports below it), loaded with cuModuleLoadData and
// launched with cuLaunchKernel.
#pragma once

#include <string>
#include <vector>

#include "core/model.h"
#include "cuda/cuda_driver_api.h"
#include "cuda/nvrtc_api.h"
#include "cuda/scan_kernel.cuh"

namespace nantrace::cuda {

struct CompiledKernel {
  std::vector<char> image;  // CUBIN or PTX (NUL-terminated)
  bool cubin = false;
  std::string target;       // "sm_90" / "compute_90"
  std::string log;          // NVRTC's log (warnings, errors)
};

// Compiles the embedded scan kernel for compute capability major.minor. Needs no GPU.
bool compile_scan_kernel(const NvrtcApi& nvrtc, int cc_major, int cc_minor,
                         CompiledKernel* out, std::string* error);

class ScanModule {
 public:
  // Loads `kernel` into the current context. Never throws.
  bool load(const DriverApi& drv, const CompiledKernel& kernel, std::string* error);
  bool loaded() const { return module_ != nullptr; }
  // Launches the scan of `params` on `stream`; acc: the slot's device accumulator (zeroed),
  // out: its host-mapped result slot. Asynchronous.
  CUresult launch(const DriverApi& drv, DType dtype, const devscan::ScanParams& params,
                  CUdeviceptr acc, CUdeviceptr out, CUstream stream, int sm_count) const;

 private:
  CUmodule module_ = nullptr;
  CUfunction fn_[4] = {};  // f16, bf16, f32, f64
};

}  // namespace nantrace::cuda
