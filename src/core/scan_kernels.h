// Block kernels of the CPU scanner, written once as portable loops that the compiler
// vectorises, and compiled once per instruction set: the including file defines
// NT_SCAN_ISA (the namespace that keeps each copy distinct, so no ODR clash) and may
// raise the target with `#pragma GCC target` after its other includes.
//
// Why it is fast: the common block holds no NaN/Inf, so the hot loop only does integer
// work that maps onto SIMD lanes of the element's own width: mask the sign, a signed max
// (absolute bits are < 2^(w-1), so signed and unsigned order agree and SSE2/AVX2 have the
// instructions), and two compare-and-count for zeros and tiny values. A block is checked
// for NaN/Inf at the end through its max (max >= exponent mask <=> some non-finite), and
// only such a block is read again, element by element, to split NaN/+inf/-inf, find the
// first bad index and redo the finite max.
#pragma once

#ifndef NT_SCAN_ISA
#error "define NT_SCAN_ISA before including scan_kernels.h"
#endif

#include <cstdint>
#include <type_traits>

#include "core/float_bits.h"
#include "core/scan_block.h"

namespace nantrace {
namespace scan_detail {
namespace NT_SCAN_ISA {

template <class F>
struct Kernel {
  typedef typename F::bits_t bits_t;
  typedef typename std::make_signed<bits_t>::type sbits_t;
  typedef fbits::Masks<F> M;
  static constexpr sbits_t kExp = sbits_t(M::kExp);
  static constexpr sbits_t kMinNormal = sbits_t(bits_t(1) << F::kManBits);

  static void block(const bits_t* __restrict p, int n, int64_t base, bool histogram,
                    BlockAcc<F>& acc) {
    // Counters of the element's width so they share SIMD lanes with the data; n <= kBlock
    // keeps them from overflowing.
    sbits_t mx = 0;
    bits_t zeros = 0, tiny = 0;
    for (int i = 0; i < n; ++i) {
      const sbits_t a = sbits_t(p[i] & M::kAbs);
      mx = a > mx ? a : mx;
      zeros += bits_t(a == 0);
      tiny += bits_t(a < kMinNormal);
    }
    acc.zero += zeros;
    acc.subnormal += bits_t(tiny - zeros);
    if (mx >= kExp) {
      rescan_nonfinite(p, n, base, acc);
    } else if (bits_t(mx) > acc.max_abs_finite) {
      acc.max_abs_finite = bits_t(mx);
    }
    if (histogram) hist(p, n, acc);
  }

  // The block holding NaN/Inf: classify each element exactly as the GPU kernel does (exponent
  // all ones: NaN when the mantissa is set, else +-inf by the sign). Branch-free, so it
  // vectorises like the hot loop: after a fault, blocks full of NaN are the common case. The
  // first bad index is found by a loop that stops at it.
  static void rescan_nonfinite(const bits_t* __restrict p, int n, int64_t base, BlockAcc<F>& acc) {
    sbits_t mx = sbits_t(acc.max_abs_finite);
    bits_t nan = 0, posinf = 0, neginf = 0;
    for (int i = 0; i < n; ++i) {
      const bits_t b = p[i];
      const sbits_t a = sbits_t(b & M::kAbs);
      const bool inf = a == kExp;
      const bool neg = (b & M::kSign) != 0;
      nan += bits_t(a > kExp);
      posinf += bits_t(inf & !neg);
      neginf += bits_t(inf & neg);
      const sbits_t finite = a < kExp ? a : sbits_t(0);
      mx = finite > mx ? finite : mx;
    }
    acc.nan += nan;
    acc.posinf += posinf;
    acc.neginf += neginf;
    acc.max_abs_finite = bits_t(mx);
    if (acc.first_bad < 0)
      for (int i = 0; i < n; ++i)
        if (sbits_t(p[i] & M::kAbs) >= kExp) {
          acc.first_bad = base + i;
          break;
        }
  }
  // Headroom histogram of the normal values. The slot index is computed branch-free in a
  // vectorisable loop, then counted into eight interleaved tables: neighbouring values
  // usually share a binade (in fp32 nearly everything lands in the last bin), and one
  // table would chain every increment on the previous one through memory.
  static void hist(const bits_t* __restrict p, int n, BlockAcc<F>& acc) {
    constexpr bits_t kExpField = bits_t((bits_t(1) << F::kExpBits) - 1);
    constexpr int kMax = M::kMaxBiasedExp;
    constexpr int kTables = 8;
    unsigned char slot[kBlock];
    for (int i = 0; i < n; ++i) {
      const bits_t e = bits_t(p[i] >> F::kManBits) & kExpField;
      const bits_t k = bits_t(kMax) - e;  // binades below the largest; wraps for e > kMax
      const bool normal = bits_t(e - 1) < bits_t(kMax);
      const bits_t clamped = k < bits_t(NT_HEADROOM_BINS - 1) ? k : bits_t(NT_HEADROOM_BINS - 1);
      slot[i] = (unsigned char)(normal ? clamped : bits_t(NT_HEADROOM_BINS));
    }
    // 16-bit counters: one table sees at most kBlock / kTables increments per block.
    uint16_t t[kTables][kHistSlots + 7] = {};
    int i = 0;
    for (; i + kTables <= n; i += kTables) {
      for (int j = 0; j < kTables; ++j) ++t[j][slot[i + j]];
    }
    for (; i < n; ++i) ++t[0][slot[i]];
    for (int s = 0; s < NT_HEADROOM_BINS; ++s) {
      uint32_t c = 0;
      for (int j = 0; j < kTables; ++j) c += t[j][s];
      acc.hist[s] += c;
    }
  }
};

template <class F>
void block(const typename F::bits_t* p, int n, int64_t base, bool histogram, BlockAcc<F>& acc) {
  Kernel<F>::block(p, n, base, histogram, acc);
}

}  // namespace NT_SCAN_ISA
}  // namespace scan_detail
}  // namespace nantrace
