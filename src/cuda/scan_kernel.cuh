// Device scan: the per-element accumulation and index arithmetic of the CUDA scan kernel,
// written once with NT_HD so the same text is compiled by NVRTC (scan_kernel.cu, at run
// time) and by the host compiler (the unit test that compares it with the CPU scanner).
// No standard headers: NVRTC compiles this without them.
#pragma once

#include "core/float_bits.h"

namespace nantrace {
namespace devscan {

#define NT_SCAN_MAX_DIMS 16

// Kernel parameters (passed by value; ~290 bytes, far under the 4 KiB limit).
struct ScanParams {
  const void* data;     // first element of the view
  long long numel;
  int ndim;             // after collapsing; 0 or 1 with contiguous == 1 for dense views
  int contiguous;       // 1: the element with logical index i is at data + i
  long long sizes[NT_SCAN_MAX_DIMS];
  long long strides[NT_SCAN_MAX_DIMS];  // elements, may be 0 or negative
};

// What one scan produces, in device memory while blocks accumulate and then copied by the
// last block to the request's pinned host slot. All-zero is the empty result, so a slot is
// reset with a memset: first_bad_inv holds ~index (larger = earlier), 0 = none.
struct ScanResult {
  nt_u64 nan, posinf, neginf, zero, subnormal;
  nt_u64 max_abs_bits;   // absolute bits of the largest finite |x|
  nt_u64 first_bad_inv;  // ~(logical index of the first NaN/Inf); 0 = none
  nt_u64 hist[NT_HEADROOM_BINS];
  nt_u64 blocks_done;    // device side: blocks finished; host copy: grid size
  nt_u64 complete;       // host copy: 1 once the last block wrote it
};

// One thread's running statistics.
template <class F>
struct ThreadAcc {
  nt_u64 nan, posinf, neginf, zero, subnormal;
  typename F::bits_t max_abs;
  nt_u64 first_bad_inv;
  NT_HD void reset() {
    nan = posinf = neginf = zero = subnormal = 0;
    max_abs = 0;
    first_bad_inv = 0;
  }
};

// A histogram the thread owns: host tests use a plain array, the kernel a column of a
// shared-memory table (stride = NT_HEADROOM_BINS + 1, an odd number, so threads of a warp
// hit different banks).
struct ArrayHist {
  nt_u64* bins;
  NT_HD void add(int bin) { bins[bin] += 1; }
};
struct ColumnHist {
  unsigned int* base;  // table + thread index * stride
  NT_HD void add(int bin) { base[bin] += 1; }
};

// The per-element step: classify by bit tests and count.
template <class F, class Hist>
NT_HD void accumulate(ThreadAcc<F>& a, Hist& h, typename F::bits_t b, nt_u64 index) {
  const int c = fbits::classify<F>(b);
  if (c == fbits::kNormal) {
    const typename F::bits_t m = fbits::abs_bits<F>(b);
    if (m > a.max_abs) a.max_abs = m;
    h.add(fbits::headroom_bin<F>(b));
  } else if (c == fbits::kZero) {
    a.zero += 1;
  } else if (c == fbits::kSubnormal) {
    a.subnormal += 1;
    const typename F::bits_t m = fbits::abs_bits<F>(b);
    if (m > a.max_abs) a.max_abs = m;
  } else {
    if (c == fbits::kNaN) a.nan += 1;
    else if (c == fbits::kPosInf) a.posinf += 1;
    else a.neginf += 1;
    const nt_u64 inv = ~index;
    if (inv > a.first_bad_inv) a.first_bad_inv = inv;
  }
}

// Offset in elements of the element with row-major logical index `index`.
NT_HD long long element_offset(const ScanParams& p, long long index) {
  if (p.contiguous) return index;
  long long off = 0;
  for (int d = p.ndim - 1; d >= 0; --d) {
    const long long s = p.sizes[d];
    const long long q = index / s;
    off += (index - q * s) * p.strides[d];
    index = q;
  }
  return off;
}

// Adds a thread's statistics into a result without atomics (host emulation of what the
// kernel does with atomics).
template <class F>
NT_HD void merge_into(ScanResult& r, const ThreadAcc<F>& a) {
  r.nan += a.nan;
  r.posinf += a.posinf;
  r.neginf += a.neginf;
  r.zero += a.zero;
  r.subnormal += a.subnormal;
  if (nt_u64(a.max_abs) > r.max_abs_bits) r.max_abs_bits = nt_u64(a.max_abs);
  if (a.first_bad_inv > r.first_bad_inv) r.first_bad_inv = a.first_bad_inv;
}

}  // namespace devscan
}  // namespace nantrace
