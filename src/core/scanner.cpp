// The scanner's row driver: validates the view, collapses its dimensions, walks it in
// row-major logical order and hands contiguous blocks to the block kernel of the best
// instruction set this CPU has (scan_kernels.h). Non-contiguous runs are gathered into a
// small buffer first so that every element goes through the same vectorised kernel.
#include "core/scanner.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#define NT_SCAN_ISA generic
#include "core/scan_kernels.h"
#undef NT_SCAN_ISA

namespace nantrace {
namespace scan_detail {

template <class F>
BlockFn<F> block_fn_generic() {
  return &generic::block<F>;
}

namespace {

struct Dim {
  int64_t size;
  int64_t stride;
};

// Drops size-1 dimensions and merges neighbours that are laid out like one dimension
// (outer.stride == inner.stride * inner.size). Only neighbours are merged and the order is
// kept, so row-major logical indices are unchanged. Returns the number of dims left
// (0 = a single element).
int collapse(const TensorView& v, Dim* out) {
  int k = 0;
  for (int d = 0; d < v.ndim; ++d) {
    if (v.sizes[d] == 1) continue;
    const Dim cur{v.sizes[d], v.strides[d]};
    if (k > 0 && out[k - 1].stride == cur.stride * cur.size) {
      out[k - 1].size *= cur.size;
      out[k - 1].stride = cur.stride;
    } else {
      out[k++] = cur;
    }
  }
  return k;
}

// Shortest contiguous run scanned in place; shorter rows are gathered together.
constexpr int64_t kMinInPlaceRun = 256;

std::atomic<bool> g_force_generic{false};

template <class F>
BlockFn<F> pick_block_fn() {
  if (g_force_generic.load(std::memory_order_relaxed)) return block_fn_generic<F>();
  static const BlockFn<F> fn = [] {
    const BlockFn<F> avx2 = block_fn_avx2<F>();
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (avx2 && __builtin_cpu_supports("avx2")) return avx2;
#endif
    (void)avx2;
    return block_fn_generic<F>();
  }();
  return fn;
}

template <class F>
void scan_typed(const TensorView& v, const Dim* dims, int k, bool histogram, TensorStats& st) {
  typedef typename F::bits_t bits_t;
  const BlockFn<F> block = pick_block_fn<F>();
  const bits_t* data = static_cast<const bits_t*>(v.data);
  BlockAcc<F> acc;

  if (k == 0) {
    block(data, 1, 0, histogram, acc);
  } else {
    const int64_t inner = dims[k - 1].size;
    const int64_t inner_stride = dims[k - 1].stride;
    const int outer_dims = k - 1;
    int64_t idx[kMaxScanDims] = {};
    int64_t offset = 0;  // element offset of the current row's first element
    int64_t row_base = 0;  // logical index of the current row's first element
    const bool in_place = inner_stride == 1 && inner >= kMinInPlaceRun;
    bits_t buf[kBlock];
    int fill = 0;
    int64_t buf_base = 0;
    for (;;) {
      const bits_t* row = data + offset;
      if (in_place) {
        for (int64_t j = 0; j < inner; j += kBlock) {
          const int n = int(std::min<int64_t>(kBlock, inner - j));
          block(row + j, n, row_base + j, histogram, acc);
        }
      } else {
        for (int64_t j = 0; j < inner;) {
          if (fill == 0) buf_base = row_base + j;
          const int64_t take = std::min<int64_t>(kBlock - fill, inner - j);
          if (inner_stride == 1) {
            std::memcpy(buf + fill, row + j, size_t(take) * sizeof(bits_t));
          } else {
            const bits_t* src = row + j * inner_stride;
            for (int64_t t = 0; t < take; ++t) buf[fill + t] = src[t * inner_stride];
          }
          fill += int(take);
          j += take;
          if (fill == kBlock) {
            block(buf, fill, buf_base, histogram, acc);
            fill = 0;
          }
        }
      }
      row_base += inner;
      // Advance the odometer over the outer dims.
      int d = outer_dims - 1;
      for (; d >= 0; --d) {
        offset += dims[d].stride;
        if (++idx[d] < dims[d].size) break;
        offset -= dims[d].stride * dims[d].size;
        idx[d] = 0;
      }
      if (d < 0) break;
    }
    if (fill > 0) block(buf, fill, buf_base, histogram, acc);
  }

  st.nan_count = acc.nan;
  st.posinf_count = acc.posinf;
  st.neginf_count = acc.neginf;
  st.zero_count = acc.zero;
  st.subnormal_count = acc.subnormal;
  st.max_abs_finite = fbits::magnitude<F>(acc.max_abs_finite);
  st.first_bad_index = acc.first_bad;
  if (histogram) {
    for (int s = 0; s < NT_HEADROOM_BINS; ++s) st.headroom_hist[s] = acc.hist[s];
  }
}

}  // namespace

void force_generic_kernels(bool on) { g_force_generic.store(on, std::memory_order_relaxed); }

}  // namespace scan_detail

size_t scan_dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
  }
  return 0;
}

int64_t view_numel(const TensorView& view) {
  if (view.ndim < 0) return -1;
  if (view.ndim > 0 && view.sizes == nullptr) return -1;
  int64_t n = 1;
  for (int d = 0; d < view.ndim; ++d) {
    if (view.sizes[d] < 0) return -1;
    if (__builtin_mul_overflow(n, view.sizes[d], &n)) return -1;
  }
  return n;
}

int64_t view_element_offset(const TensorView& view, int64_t index) {
  int64_t offset = 0;
  for (int d = view.ndim - 1; d >= 0; --d) {
    const int64_t size = view.sizes[d];
    if (size <= 0) return 0;
    offset += (index % size) * view.strides[d];
    index /= size;
  }
  return offset;
}

bool scan_view_is_scannable(const TensorView& view) {
  const int64_t n = view_numel(view);
  if (n < 0 || view.ndim > kMaxScanDims || scan_dtype_bytes(view.dtype) == 0) return false;
  if (n == 0) return true;  // nothing to read: pointers are not needed
  return view.data != nullptr && (view.ndim == 0 || view.strides != nullptr);
}

TensorStats scan(const TensorView& view, const ScanOptions& options) {
  TensorStats st;
  std::memset(&st, 0, sizeof st);
  st.first_bad_index = -1;
  const int64_t n = view_numel(view);
  if (n < 0) return st;
  st.numel = uint64_t(n);
  if (n == 0 || !scan_view_is_scannable(view)) return st;

  scan_detail::Dim dims[kMaxScanDims];
  const int k = scan_detail::collapse(view, dims);
  switch (view.dtype) {
    case DType::F16:
      scan_detail::scan_typed<fbits::F16>(view, dims, k, options.histogram, st);
      break;
    case DType::BF16:
      scan_detail::scan_typed<fbits::BF16>(view, dims, k, options.histogram, st);
      break;
    case DType::F32:
      scan_detail::scan_typed<fbits::F32>(view, dims, k, options.histogram, st);
      break;
    case DType::F64:
      scan_detail::scan_typed<fbits::F64>(view, dims, k, options.histogram, st);
      break;
  }
  return st;
}

}  // namespace nantrace
