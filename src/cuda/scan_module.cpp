#include "cuda/scan_module.h"

#include <algorithm>

#include "cuda/scan_kernel_sources.h"
#include "cuda/scan_result.h"

namespace nantrace::cuda {
namespace {

std::string nvrtc_error(const NvrtcApi& nv, nvrtcResult r) {
  const char* s = nv.nvrtcGetErrorString ? nv.nvrtcGetErrorString(r) : nullptr;
  return "nvrtcResult " + std::to_string(static_cast<int>(r)) + (s ? " (" + std::string(s) + ")" : "");
}

int fn_index(DType d) {
  switch (d) {
    case DType::F16: return 0;
    case DType::BF16: return 1;
    case DType::F32: return 2;
    case DType::F64: return 3;
  }
  return -1;
}

}  // namespace

bool compile_scan_kernel(const NvrtcApi& nv, int cc_major, int cc_minor, CompiledKernel* out,
                         std::string* error) {
  if (!nv.usable()) {
    if (error) *error = "NVRTC unavailable";
    return false;
  }
  *out = CompiledKernel{};
  const int want = cc_major * 10 + cc_minor;
  int n = 0;
  std::vector<int> archs;
  if (nv.nvrtcGetNumSupportedArchs(&n) == NVRTC_SUCCESS && n > 0) {
    archs.resize(static_cast<size_t>(n));
    if (nv.nvrtcGetSupportedArchs(archs.data()) != NVRTC_SUCCESS) archs.clear();
  }
  // SASS for the exact GPU needs no JIT in the driver, so it loads on any driver of the
  // same major CUDA version (minor-version compatibility); PTX is the fallback for a GPU
  // newer than this NVRTC, and needs a driver at least as new as NVRTC.
  bool cubin = std::find(archs.begin(), archs.end(), want) != archs.end();
  int arch = want;
  if (!cubin) {
    arch = 0;
    for (int a : archs)
      if (a <= want && a > arch) arch = a;
    if (arch == 0) {
      if (error) *error = "NVRTC supports no architecture at or below sm_" + std::to_string(want);
      return false;
    }
  }
  out->cubin = cubin;
  out->target = (cubin ? "sm_" : "compute_") + std::to_string(arch);

  const char* header_texts[] = {scan_kernel_cuh_source(), float_bits_source()};
  const char* header_names[] = {"cuda/scan_kernel.cuh", "core/float_bits.h"};
  nvrtcProgram prog = nullptr;
  nvrtcResult r = nv.nvrtcCreateProgram(&prog, scan_kernel_source(), "nantrace_scan_kernel.cu", 2,
                                        header_texts, header_names);
  if (r != NVRTC_SUCCESS) {
    if (error) *error = "nvrtcCreateProgram: " + nvrtc_error(nv, r);
    return false;
  }
  const std::string arch_opt = "--gpu-architecture=" + out->target;
  const char* opts[] = {arch_opt.c_str(), "--std=c++17", "-DNT_NVRTC=1"};
  r = nv.nvrtcCompileProgram(prog, 3, opts);
  size_t log_size = 0;
  if (nv.nvrtcGetProgramLogSize(prog, &log_size) == NVRTC_SUCCESS && log_size > 1) {
    out->log.resize(log_size);
    nv.nvrtcGetProgramLog(prog, &out->log[0]);
    out->log.resize(log_size - 1);
  }
  bool ok = r == NVRTC_SUCCESS;
  if (!ok) {
    if (error) *error = "nvrtcCompileProgram(" + out->target + "): " + nvrtc_error(nv, r) + "\n" + out->log;
  } else {
    size_t size = 0;
    r = cubin ? nv.nvrtcGetCUBINSize(prog, &size) : nv.nvrtcGetPTXSize(prog, &size);
    if (r == NVRTC_SUCCESS && size > 0) {
      out->image.resize(size);
      r = cubin ? nv.nvrtcGetCUBIN(prog, out->image.data()) : nv.nvrtcGetPTX(prog, out->image.data());
    }
    ok = r == NVRTC_SUCCESS && size > 0;
    if (!ok && error) *error = "fetching the compiled image: " + nvrtc_error(nv, r);
  }
  nv.nvrtcDestroyProgram(&prog);
  return ok;
}

bool ScanModule::load(const DriverApi& drv, const CompiledKernel& kernel, std::string* error) {
  if (!drv.usable() || kernel.image.empty()) {
    if (error) *error = "no driver or no kernel image";
    return false;
  }
  CUmodule mod = nullptr;
  CUresult r = drv.cuModuleLoadData(&mod, kernel.image.data());
  if (r != CUDA_SUCCESS) {
    if (error) {
      *error = "cuModuleLoadData(" + kernel.target + "): " + driver_error(drv, r);
      if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
        *error += ": the driver is older than the process's NVRTC; update the driver";
    }
    return false;
  }
  const DType dtypes[] = {DType::F16, DType::BF16, DType::F32, DType::F64};
  for (DType d : dtypes) {
    r = drv.cuModuleGetFunction(&fn_[fn_index(d)], mod, scan_kernel_name(d));
    if (r != CUDA_SUCCESS) {
      if (error) *error = std::string("cuModuleGetFunction(") + scan_kernel_name(d) + "): " + driver_error(drv, r);
      return false;  // the module stays loaded; it is small and this does not repeat
    }
  }
  module_ = mod;
  return true;
}

CUresult ScanModule::launch(const DriverApi& drv, DType dtype, const devscan::ScanParams& params,
                            CUdeviceptr acc, CUdeviceptr out, CUstream stream, int sm_count) const {
  const int i = fn_index(dtype);
  if (!module_ || i < 0 || !fn_[i]) return CUDA_ERROR_NOT_INITIALIZED;
  devscan::ScanParams p = params;
  void* args[] = {&p, &acc, &out};
  const unsigned grid = scan_grid_blocks(params, dtype, sm_count);
  return drv.cuLaunchKernel(fn_[i], grid, 1, 1, kScanThreads, 1, 1, 0, stream, args, nullptr);
}

}  // namespace nantrace::cuda
