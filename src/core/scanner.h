// CPU tensor scanner: exact NaN/Inf/zero/subnormal counts, largest finite |x|, first bad
// index and headroom histogram of a strided view, computed by integer bit tests
// (core/float_bits.h, the same definitions the GPU scan kernel uses). Runs in the calling
// thread; reads only the view's elements, never the rest of the storage.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/model.h"

namespace nantrace {

constexpr int32_t kMaxScanDims = 16;

struct TensorView {
  const void* data = nullptr;       // first element of the view (storage offset applied)
  DType dtype = DType::F32;
  int32_t ndim = 0;                 // 0 = scalar (1 element); at most 16
  const int64_t* sizes = nullptr;   // elements
  const int64_t* strides = nullptr; // elements; may be 0 (broadcast) or negative
};

struct ScanOptions {
  bool histogram = true;  // fill TensorStats::headroom_hist (costs time); false = fast path
};

// Exact statistics of the view's elements (never its whole storage). Never throws.
// An unusable view (ndim outside [0, 16], null sizes/strides when ndim > 0, null data with
// elements, negative sizes, an unknown dtype) yields stats with only numel filled in (0 when
// it cannot be computed) and first_bad_index = -1: nothing was read. Callers that must tell
// "clean" from "not scanned" check the view first (view_numel, scan_view_is_scannable).
TensorStats scan(const TensorView& view, const ScanOptions& options = {});

// Number of elements of the view: product of sizes (1 for ndim 0), for any ndim >= 0;
// -1 when it cannot be computed (negative ndim, null sizes, a negative size, overflow).
int64_t view_numel(const TensorView& view);

// True when scan() will read the view's elements (the conditions above all hold).
bool scan_view_is_scannable(const TensorView& view);

// Offset in elements from view.data of the element with row-major logical index `index`
// (what first_bad_index reports). Requires 0 <= index < view_numel(view).
int64_t view_element_offset(const TensorView& view, int64_t index);

// Bytes per element of a scannable dtype; 0 for an unknown value.
size_t scan_dtype_bytes(DType dtype);

}  // namespace nantrace
