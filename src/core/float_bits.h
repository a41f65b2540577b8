// Classification of floating-point values by integer bit tests: the one definition shared by
// the CPU scanner and the CUDA scan kernel (compiled by nvcc, NVRTC or the host compiler).
// No float conversion is needed to tell NaN / +-inf / zero / subnormal / normal apart, and a
// finite value's magnitude orders like its absolute bit pattern, so "largest |x|" is an
// integer max. Keep this header free of standard headers under NVRTC.
#pragma once

#if defined(__CUDACC_RTC__)
typedef unsigned short nt_u16;
typedef unsigned int nt_u32;
typedef unsigned long long nt_u64;
#else
#include <cstdint>
typedef uint16_t nt_u16;
typedef uint32_t nt_u32;
typedef uint64_t nt_u64;
#endif

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define NT_HD __host__ __device__ __forceinline__
#else
#define NT_HD inline
#endif

#ifndef NT_HEADROOM_BINS
#define NT_HEADROOM_BINS 40  // must match nantrace.h
#endif

namespace nantrace {
namespace fbits {

enum ValueClass : int { kZero = 0, kSubnormal = 1, kNormal = 2, kPosInf = 3, kNegInf = 4, kNaN = 5 };

// Bit layouts of the supported formats.
struct F16 {
  typedef nt_u16 bits_t;
  static constexpr int kExpBits = 5, kManBits = 10, kBias = 15;
};
struct BF16 {
  typedef nt_u16 bits_t;
  static constexpr int kExpBits = 8, kManBits = 7, kBias = 127;
};
struct F32 {
  typedef nt_u32 bits_t;
  static constexpr int kExpBits = 8, kManBits = 23, kBias = 127;
};
struct F64 {
  typedef nt_u64 bits_t;
  static constexpr int kExpBits = 11, kManBits = 52, kBias = 1023;
};

template <class F>
struct Masks {
  typedef typename F::bits_t bits_t;
  static constexpr int kWidth = int(sizeof(bits_t) * 8);
  static constexpr bits_t kSign = bits_t(bits_t(1) << (kWidth - 1));
  static constexpr bits_t kMan = bits_t((bits_t(1) << F::kManBits) - 1);
  static constexpr bits_t kExp = bits_t(((bits_t(1) << F::kExpBits) - 1) << F::kManBits);
  static constexpr bits_t kAbs = bits_t(~kSign);
  static constexpr int kMaxBiasedExp = (1 << F::kExpBits) - 2;  // largest finite binade
};

template <class F>
NT_HD int classify(typename F::bits_t b) {
  typedef Masks<F> M;
  const typename F::bits_t e = b & M::kExp;
  const typename F::bits_t m = b & M::kMan;
  if (e == M::kExp) return m ? kNaN : ((b & M::kSign) ? kNegInf : kPosInf);
  if (e == 0) return m ? kSubnormal : kZero;
  return kNormal;
}

// |x| as bits; for finite values larger bits <=> larger magnitude.
template <class F>
NT_HD typename F::bits_t abs_bits(typename F::bits_t b) {
  return b & Masks<F>::kAbs;
}

// True for NaN and +-inf: the exponent field is all ones.
template <class F>
NT_HD bool is_nonfinite(typename F::bits_t b) {
  return (b & Masks<F>::kExp) == Masks<F>::kExp;
}

// For a normal value: how many binades below the dtype's largest finite binade it sits,
// clamped into the last histogram bin. 0 means within 2x of the dtype's max.
template <class F>
NT_HD int headroom_bin(typename F::bits_t b) {
  const int e = int((b & Masks<F>::kExp) >> F::kManBits);
  const int k = Masks<F>::kMaxBiasedExp - e;
  return k < NT_HEADROOM_BINS - 1 ? k : NT_HEADROOM_BINS - 1;
}

// Magnitude of a finite value given its absolute bits, as double (exact for all formats
// but the smallest fp64 subnormals, which only matter as "tiny").
template <class F>
NT_HD double magnitude(typename F::bits_t abs) {
  typedef Masks<F> M;
  const int e = int((abs & M::kExp) >> F::kManBits);
  const double man = double(abs & M::kMan);
  const double scale = double(typename F::bits_t(1) << F::kManBits);
  double frac;
  int exp2;
  if (e == 0) {
    frac = man / scale;
    exp2 = 1 - F::kBias;
  } else {
    frac = 1.0 + man / scale;
    exp2 = e - F::kBias;
  }
  // Multiply by 2^exp2 without ldexp (not available everywhere we compile this).
  double p = 1.0;
  double base = exp2 >= 0 ? 2.0 : 0.5;
  int n = exp2 >= 0 ? exp2 : -exp2;
  while (n) {
    if (n & 1) p *= base;
    base *= base;
    n >>= 1;
  }
  return frac * p;
}

// Largest finite value of the format, as double.
template <class F>
NT_HD double max_finite() {
  typedef Masks<F> M;
  return magnitude<F>(typename F::bits_t(M::kExp - (typename F::bits_t(1) << F::kManBits)) | M::kMan);
}

}  // namespace fbits
}  // namespace nantrace
