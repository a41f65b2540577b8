// Per-block accumulator shared by the scanner's row driver (scanner.cpp) and its
// instruction-set-specific block kernels (scan_kernels.h). Internal to the scanner.
#pragma once

#include <cstdint>

#include "core/float_bits.h"

namespace nantrace {
namespace scan_detail {

// Elements per block: small enough that a block stays in L1 for the rare second pass
// (non-finite values, histogram) and that per-block counters of the element's own width
// (16-bit for fp16/bf16) cannot overflow.
constexpr int kBlock = 4096;
// Histogram slots: NT_HEADROOM_BINS real bins plus one that swallows zeros, subnormals and
// non-finite values so the histogram loop needs no branch.
constexpr int kHistSlots = NT_HEADROOM_BINS + 1;

template <class F>
struct BlockAcc {
  typedef typename F::bits_t bits_t;
  uint64_t nan = 0, posinf = 0, neginf = 0, zero = 0, subnormal = 0;
  bits_t max_abs_finite = 0;  // absolute bits of the largest finite |x| seen
  int64_t first_bad = -1;     // logical index of the first NaN/Inf, -1 while none
  uint64_t hist[kHistSlots] = {};
};

// Scans n (1..kBlock) contiguous elements whose first has logical index `base`.
template <class F>
using BlockFn = void (*)(const typename F::bits_t* p, int n, int64_t base, bool histogram,
                         BlockAcc<F>& acc);

// Tests only: true makes scan() use the portable (baseline) kernels even where the CPU has
// AVX2, so both copies are checked on one machine.
void force_generic_kernels(bool on);

// Instruction-set variants; each returns nullptr when not compiled in.
template <class F>
BlockFn<F> block_fn_generic();
template <class F>
BlockFn<F> block_fn_avx2();

}  // namespace scan_detail
}  // namespace nantrace
