#include "core/sum_squares.h"

#include <cmath>
#include <cstdint>

#define NT_SQ_ISA base
#include "core/sum_squares_kernels.h"
#undef NT_SQ_ISA

namespace nantrace {
namespace sq_detail {
double contiguous_avx2(const void* data, DType dtype, int64_t n);
bool have_avx2();
}  // namespace sq_detail

namespace {

bool contiguous_layout(const TensorView& v) {
  int64_t expect = 1;
  for (int32_t d = v.ndim - 1; d >= 0; --d) {
    if (v.sizes[d] != 1 && v.strides[d] != expect) return false;
    expect *= v.sizes[d];
  }
  return true;
}

double contiguous(const void* data, DType dtype, int64_t n) {
  static const bool avx2 = sq_detail::have_avx2() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2 ? sq_detail::contiguous_avx2(data, dtype, n) : sq_detail::base::contiguous(data, dtype, n);
}

}  // namespace

double sum_of_squares(const TensorView& view) {
  if (!scan_view_is_scannable(view)) return NAN;
  const int64_t n = view_numel(view);
  if (n <= 0) return 0;
  if (contiguous_layout(view)) return contiguous(view.data, view.dtype, n);
  // Strided: element by element (rare for gradients and parameters).
  const size_t width = scan_dtype_bytes(view.dtype);
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    const char* p = static_cast<const char*>(view.data) + view_element_offset(view, i) * int64_t(width);
    acc += contiguous(p, view.dtype, 1);
  }
  return acc;
}

}  // namespace nantrace
