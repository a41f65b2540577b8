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

// CPU: the fast path skips the histogram for module outputs; a non-finite tensor, and
// evidence (inputs, parameters, replays), get the full statistics. nullopt when the view
// cannot be scanned (null data, unusable shape).
std::optional<TensorStats> scan_on_cpu(const TensorView& view, Role role);

#ifdef NANTRACE_HAVE_CUDA
// The device scanner's request for the tensor of check `seq`.
cuda::ScanRequest device_scan_request(const nt_tensor& t, uint64_t seq);
#endif

}  // namespace nantrace
