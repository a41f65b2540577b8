// Host-side halves of the device scan: kernel parameters from a strided view, the grid to
// launch, and the kernel's ScanResult turned into the TensorStats everyone else uses.
#pragma once

#include <cstdint>
#include <string>

#include "core/model.h"
#include "cuda/scan_kernel.cuh"

namespace nantrace::cuda {

// Builds parameters for a view of ndim (0..16) dims, sizes/strides in elements. Size-1 dims
// are dropped and dims that are contiguous with their neighbour merged (logical row-major
// order is kept, so indices mean the same), which makes most views "contiguous" and saves
// the kernel its per-element index arithmetic otherwise. False (with *error) for a view that
// cannot be scanned.
bool make_scan_params(const void* data, int32_t ndim, const int64_t* sizes,
                      const int64_t* strides, devscan::ScanParams* params, std::string* error);

// Blocks to launch for a view: enough to cover it, at most blocks_per_sm per SM.
unsigned scan_grid_blocks(const devscan::ScanParams& params, DType dtype, int sm_count,
                          int blocks_per_sm = 4);
constexpr unsigned kScanThreads = 256;  // must match NT_SCAN_THREADS in scan_kernel.cu

// The kernel's result as TensorStats (numel from the parameters).
TensorStats to_stats(const devscan::ScanResult& result, DType dtype, uint64_t numel);

// Name of the kernel entry point for a dtype ("nt_scan_f16" ...); nullptr if unsupported.
const char* scan_kernel_name(DType dtype);
size_t dtype_bytes(DType dtype);

}  // namespace nantrace::cuda
