// How a checked tensor is scanned, apart from the runtime's lock and sequencing: on the CPU in
// the calling thread, or described for the device scanner (src/cuda), which answers later.
#pragma once

#include <cstdint>
#include <optional>

#include "core/model.h"
#include "core/scanner.h"
#include "nantrace/nantrace.h"
#ifdef NANTRACE_HAVE_CUDA
#include "cuda/cuda_adapter.h"
#endif

namespace nantrace {

// CPU: the fast path skips the histogram for module outputs; evidence (inputs, parameters,
// replays) gets the full statistics, and so does a non-finite output while
// `nonfinite_histograms` is true (the runtime bounds how many: after the fault, outputs full of
// NaN would otherwise each be read twice). nullopt when the view cannot be scanned (null data,
// unusable shape).
std::optional<TensorStats> scan_on_cpu(const TensorView& view, Role role, bool nonfinite_histograms = true);

// nantrace_scan_many: the fast path over n CPU tensors, nothing recorded. -1 when one of them
// is not a scannable CPU tensor (nothing is claimed then).
int32_t scan_many_on_cpu(const nt_tensor* tensors, int32_t n, int32_t* first_bad);

// nantrace_norm_many: the same answer, and the total sum of squares (NaN unless all are finite),
// from one pass per tensor (sum_of_squares); a float64 sum that overflowed is told from NaN/Inf
// by the scanner.
int32_t norm_many_on_cpu(const nt_tensor* tensors, int32_t n, double* sum_squares, int32_t* first_bad);

#ifdef NANTRACE_HAVE_CUDA
// The device scanner's request for the tensor of check `seq`.
cuda::ScanRequest device_scan_request(const nt_tensor& t, uint64_t seq);
#endif

}  // namespace nantrace
