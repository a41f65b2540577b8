#include "runtime/scan_dispatch.h"

#include <cmath>

#include "core/sum_squares.h"
#include "runtime/abi_records.h"

namespace nantrace {

std::optional<TensorStats> scan_on_cpu(const TensorView& view, Role role, bool nonfinite_histograms) {
  if (!scan_view_is_scannable(view)) return std::nullopt;
  ScanOptions fast;
  fast.histogram = role != Role::Output;
  TensorStats stats = scan(view, fast);
  if (!fast.histogram && nonfinite_histograms && has_nonfinite(stats)) stats = scan(view, ScanOptions{});
  return stats;
}

namespace {
// The batch calls answer for CPU tensors the scanner can read, all of them, or not at all: the
// caller then checks each tensor on its own path.
bool all_scannable_on_cpu(const nt_tensor* tensors, int32_t n) {
  for (int32_t i = 0; i < n; ++i) {
    const nt_tensor& t = tensors[i];
    if (t.device_type != NT_DEVICE_CPU || !abi_tensor_supported(t) || !scan_view_is_scannable(tensor_view_from_abi(t)))
      return false;
  }
  return true;
}
}  // namespace

int32_t scan_many_on_cpu(const nt_tensor* tensors, int32_t n, int32_t* first_bad) {
  if (!all_scannable_on_cpu(tensors, n)) return -1;
  int32_t bad = 0;
  ScanOptions fast;
  fast.histogram = false;
  for (int32_t i = 0; i < n; ++i) {
    if (has_nonfinite(scan(tensor_view_from_abi(tensors[i]), fast))) {
      if (bad++ == 0 && first_bad) *first_bad = i;
    }
  }
  return bad;
}

int32_t norm_many_on_cpu(const nt_tensor* tensors, int32_t n, double* sum_squares, int32_t* first_bad) {
  if (!all_scannable_on_cpu(tensors, n)) return -1;
  int32_t bad = 0;
  double total = 0;
  ScanOptions fast;
  fast.histogram = false;
  for (int32_t i = 0; i < n; ++i) {
    const TensorView v = tensor_view_from_abi(tensors[i]);
    const double s = sum_of_squares(v);
    if (std::isfinite(s)) {
      total += s;
      continue;
    }
    // float32 and half squares cannot overflow a double; a float64 tensor's may.
    const bool nonfinite = v.dtype != DType::F64 || has_nonfinite(scan(v, fast));
    if (nonfinite && bad++ == 0 && first_bad) *first_bad = i;
    total = INFINITY;
  }
  if (sum_squares) *sum_squares = bad ? NAN : total;
  return bad;
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
