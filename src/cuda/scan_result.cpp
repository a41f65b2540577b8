#include "cuda/scan_result.h"

#include <cstring>
#include <limits>

namespace nantrace::cuda {

bool make_scan_params(const void* data, int32_t ndim, const int64_t* sizes,
                      const int64_t* strides, devscan::ScanParams* p, std::string* error) {
  std::memset(p, 0, sizeof *p);
  p->data = data;
  if (ndim < 0 || ndim > NT_SCAN_MAX_DIMS) {
    if (error) *error = "ndim " + std::to_string(ndim) + " outside 0..16";
    return false;
  }
  if (ndim > 0 && (!sizes || !strides)) {
    if (error) *error = "missing sizes or strides";
    return false;
  }
  long long numel = 1;
  for (int d = 0; d < ndim; ++d) {
    if (sizes[d] < 0) {
      if (error) *error = "negative size";
      return false;
    }
    if (sizes[d] != 0 && numel > std::numeric_limits<long long>::max() / sizes[d]) {
      if (error) *error = "element count overflows";
      return false;
    }
    numel *= sizes[d];
  }
  p->numel = numel;
  if (numel > 0 && !data) {
    if (error) *error = "null data";
    return false;
  }
  if (numel <= 1) {  // empty or one element: offset 0 is all there is
    p->contiguous = 1;
    return true;
  }
  // Drop size-1 dims, then merge a dim into the next when it steps exactly over it.
  long long sz[NT_SCAN_MAX_DIMS], st[NT_SCAN_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < ndim; ++d) {
    if (sizes[d] == 1) continue;
    sz[n] = sizes[d];
    st[n] = strides[d];
    ++n;
  }
  int m = 0;  // merged dims in sz/st[0..m)
  for (int d = 0; d < n; ++d) {
    if (m > 0 && st[m - 1] == st[d] * sz[d]) {
      sz[m - 1] *= sz[d];
      st[m - 1] = st[d];
    } else {
      sz[m] = sz[d];
      st[m] = st[d];
      ++m;
    }
  }
  p->ndim = m;
  for (int d = 0; d < m; ++d) {
    p->sizes[d] = sz[d];
    p->strides[d] = st[d];
  }
  p->contiguous = (m == 1 && st[0] == 1) ? 1 : 0;
  return true;
}

size_t dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::F16:
    case DType::BF16: return 2;
    case DType::F32: return 4;
    case DType::F64: return 8;
  }
  return 0;
}

unsigned scan_grid_blocks(const devscan::ScanParams& p, DType dtype, int sm_count,
                          int blocks_per_sm) {
  const size_t bytes = dtype_bytes(dtype);
  long long items = p.numel;
  if (p.contiguous && bytes) items = (p.numel * static_cast<long long>(bytes) + 15) / 16;
  long long blocks = (items + kScanThreads - 1) / kScanThreads;
  const long long cap = static_cast<long long>(sm_count > 0 ? sm_count : 1) * blocks_per_sm;
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks);
}

namespace {
template <class F>
double magnitude_of(uint64_t bits) {
  return fbits::magnitude<F>(static_cast<typename F::bits_t>(bits));
}
}  // namespace

TensorStats to_stats(const devscan::ScanResult& r, DType dtype, uint64_t numel) {
  TensorStats s{};
  s.numel = numel;
  s.nan_count = r.nan;
  s.posinf_count = r.posinf;
  s.neginf_count = r.neginf;
  s.zero_count = r.zero;
  s.subnormal_count = r.subnormal;
  switch (dtype) {
    case DType::F16: s.max_abs_finite = magnitude_of<fbits::F16>(r.max_abs_bits); break;
    case DType::BF16: s.max_abs_finite = magnitude_of<fbits::BF16>(r.max_abs_bits); break;
    case DType::F32: s.max_abs_finite = magnitude_of<fbits::F32>(r.max_abs_bits); break;
    case DType::F64: s.max_abs_finite = magnitude_of<fbits::F64>(r.max_abs_bits); break;
  }
  s.first_bad_index = r.first_bad_inv ? static_cast<int64_t>(~r.first_bad_inv) : -1;
  for (int b = 0; b < NT_HEADROOM_BINS; ++b) s.headroom_hist[b] = r.hist[b];
  return s;
}

const char* scan_kernel_name(DType dtype) {
  switch (dtype) {
    case DType::F16: return "nt_scan_f16";
    case DType::BF16: return "nt_scan_bf16";
    case DType::F32: return "nt_scan_f32";
    case DType::F64: return "nt_scan_f64";
  }
  return nullptr;
}

}  // namespace nantrace::cuda
