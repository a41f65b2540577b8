// The contiguous loop of sum_of_squares, written once and compiled per instruction set (the
// including file defines NT_SQ_ISA and may raise the target), like scan_kernels.h. Eight
// independent double accumulators let the compiler vectorise without reassociating a sum.
#pragma once

#ifndef NT_SQ_ISA
#error "define NT_SQ_ISA before including sum_squares_kernels.h"
#endif

#include <cstdint>
#include <cstring>

#include "core/float_bits.h"

namespace nantrace {
namespace sq_detail {
namespace NT_SQ_ISA {

inline double value(const uint32_t* p, int64_t i) {
  float f;
  std::memcpy(&f, p + i, sizeof f);
  return f;
}
inline double value(const uint64_t* p, int64_t i) {
  double d;
  std::memcpy(&d, p + i, sizeof d);
  return d;
}

// bfloat16 is the top half of a float32.
inline double bf16_value(const uint16_t* p, int64_t i) {
  const uint32_t b = uint32_t(p[i]) << 16;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// IEEE half to float, exactly (subnormals, Inf and NaN included), without F16C.
inline double f16_value(const uint16_t* p, int64_t i) {
  const uint32_t h = p[i];
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp == 0) {
    if (man == 0) return sign ? -0.0 : 0.0;
    const double v = double(man) * (1.0 / 16777216.0);  // man * 2^-24
    return sign ? -v : v;
  } else {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

template <class Get, class T>
double sum_sq(const T* p, int64_t n, Get get) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const double x = get(p, i + j);
      acc[j] += x * x;
    }
  double tail = 0;
  for (; i < n; ++i) {
    const double x = get(p, i);
    tail += x * x;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

inline double contiguous(const void* data, DType dtype, int64_t n) {
  switch (dtype) {
    case DType::F32:
      return sum_sq(static_cast<const uint32_t*>(data), n, [](const uint32_t* p, int64_t i) { return value(p, i); });
    case DType::F64:
      return sum_sq(static_cast<const uint64_t*>(data), n, [](const uint64_t* p, int64_t i) { return value(p, i); });
    case DType::BF16:
      return sum_sq(static_cast<const uint16_t*>(data), n, [](const uint16_t* p, int64_t i) { return bf16_value(p, i); });
    case DType::F16:
      return sum_sq(static_cast<const uint16_t*>(data), n, [](const uint16_t* p, int64_t i) { return f16_value(p, i); });
  }
  return 0;
}

}  // namespace NT_SQ_ISA
}  // namespace sq_detail
}  // namespace nantrace
