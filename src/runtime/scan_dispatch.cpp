#include "runtime/scan_dispatch.h"

namespace nantrace {

std::optional<TensorStats> scan_on_cpu(const TensorView& view, Role role, bool nonfinite_histograms) {
  if (!scan_view_is_scannable(view)) return std::nullopt;
  ScanOptions fast;
  fast.histogram = role != Role::Output;
  TensorStats stats = scan(view, fast);
  if (!fast.histogram && nonfinite_histograms && has_nonfinite(stats)) stats = scan(view, ScanOptions{});
  return stats;
}

#ifdef NANTRACE_HAVE_CUDA
cuda::ScanRequest device_scan_request(const nt_tensor& t, uint64_t seq) {
  cuda::ScanRequest req;
  req.seq = seq;
  req.data = t.data;
  req.dtype = static_cast<DType>(t.dtype);
  req.ndim = t.ndim;
  for (int i = 0; i < t.ndim; ++i) req.sizes[i] = t.sizes[i], req.strides[i] = t.strides[i];
  req.device = t.device_index;
  req.stream = t.stream;
  return req;
}
#endif

}  // namespace nantrace
