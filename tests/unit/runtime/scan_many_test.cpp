// nantrace_scan_many's filter (scan_many_on_cpu): all finite, which tensor first holds NaN/Inf,
// and no claim at all for what it cannot scan (a device tensor, an unknown dtype).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/scan_dispatch.h"

namespace nantrace {
namespace {

// A 1-D CPU tensor over `values` (any element type; `dtype` says how to read it).
template <class T>
struct Typed {
  std::vector<T> v;
  int64_t size[1];
  int64_t stride[1] = {1};
  nt_tensor t{};
  Typed(std::vector<T> values, int32_t dtype) : v(std::move(values)) {
    size[0] = int64_t(v.size());
    t.data = v.data();
    t.dtype = dtype;
    t.ndim = 1;
    t.sizes = size;
    t.strides = stride;
    t.device_type = NT_DEVICE_CPU;
  }
};

struct Buf : Typed<float> {
  explicit Buf(std::vector<float> values) : Typed<float>(std::move(values), NT_DTYPE_F32) {}
};

TEST(ScanMany, AllFiniteIsZeroAndNoIndex) {
  Buf a({1, 2, 3}), b({0, -4e30f});
  std::vector<nt_tensor> ts{a.t, b.t};
  int32_t first = 7;
  EXPECT_EQ(scan_many_on_cpu(ts.data(), 2, &first), 0);
  EXPECT_EQ(first, 7);  // untouched here; the ABI sets -1 before calling
}

TEST(ScanMany, CountsTheBadTensorsAndNamesTheFirst) {
  Buf a({1, 2}), b({1, std::numeric_limits<float>::quiet_NaN()}), c({INFINITY});
  std::vector<nt_tensor> ts{a.t, b.t, c.t};
  int32_t first = -1;
  EXPECT_EQ(scan_many_on_cpu(ts.data(), 3, &first), 2);
  EXPECT_EQ(first, 1);
}

TEST(ScanMany, ClaimsNothingForWhatItCannotScan) {
  Buf a({1, 2}), b({std::numeric_limits<float>::quiet_NaN()});
  b.t.device_type = NT_DEVICE_CUDA;
  std::vector<nt_tensor> ts{a.t, b.t};
  EXPECT_EQ(scan_many_on_cpu(ts.data(), 2, nullptr), -1);
  ts[1] = a.t;
  ts[1].dtype = 99;
  EXPECT_EQ(scan_many_on_cpu(ts.data(), 2, nullptr), -1);
}

TEST(ScanMany, StridedViewsReadOnlyTheirElements) {
  Buf a({1, std::numeric_limits<float>::quiet_NaN(), 3, std::numeric_limits<float>::quiet_NaN()});
  a.size[0] = 2;
  a.stride[0] = 2;  // elements 0 and 2 only
  EXPECT_EQ(scan_many_on_cpu(&a.t, 1, nullptr), 0);
}

TEST(NormMany, SumsTheSquaresOfFiniteTensorsExactly) {
  Buf a({1, 2, 3}), b({-4, 0.5f});
  std::vector<nt_tensor> ts{a.t, b.t};
  double ss = 0;
  int32_t first = -1;
  EXPECT_EQ(norm_many_on_cpu(ts.data(), 2, &ss, &first), 0);
  EXPECT_DOUBLE_EQ(ss, 1 + 4 + 9 + 16 + 0.25);
  EXPECT_EQ(first, -1);
}

TEST(NormMany, ANonFiniteTensorIsCountedAndTheSumIsNaN) {
  Buf a({1, 2}), b({3, std::numeric_limits<float>::infinity()}), c({std::numeric_limits<float>::quiet_NaN()});
  std::vector<nt_tensor> ts{a.t, b.t, c.t};
  double ss = 0;
  int32_t first = -1;
  EXPECT_EQ(norm_many_on_cpu(ts.data(), 3, &ss, &first), 2);
  EXPECT_EQ(first, 1);
  EXPECT_TRUE(std::isnan(ss));
}

TEST(NormMany, LargeFloat32ValuesDoNotOverflowTheDoubleSum) {
  // float32 squares past 3.4e38 overflow a float32 norm (the fused norm it replaces), not a double.
  Buf a({3e30f, -3e30f});
  double ss = 0;
  EXPECT_EQ(norm_many_on_cpu(&a.t, 1, &ss, nullptr), 0);
  EXPECT_NEAR(ss, 2 * 9e60, 2 * 9e60 * 1e-6);  // 3e30f itself is rounded
}

TEST(NormMany, HalfPrecisionAndFloat64AndStridedViews) {
  // float16 1.0 (0x3c00), the smallest subnormal 2^-24 (0x0001), -2.0 (0xc000); bfloat16 3.0 (0x4040).
  Typed<uint16_t> h({0x3c00, 0x0001, 0xc000}, NT_DTYPE_F16);
  double ss = 0;
  EXPECT_EQ(norm_many_on_cpu(&h.t, 1, &ss, nullptr), 0);
  EXPECT_DOUBLE_EQ(ss, 1.0 + std::ldexp(1.0, -48) + 4.0);
  Typed<uint16_t> b({0x4040}, NT_DTYPE_BF16);
  EXPECT_EQ(norm_many_on_cpu(&b.t, 1, &ss, nullptr), 0);
  EXPECT_DOUBLE_EQ(ss, 9.0);
  // float64 whose squares overflow a double is finite, not "non-finite".
  Typed<double> d({1e200, 2.0}, NT_DTYPE_F64);
  EXPECT_EQ(norm_many_on_cpu(&d.t, 1, &ss, nullptr), 0);
  EXPECT_TRUE(std::isinf(ss));
  // Every other element of {1, NaN, 3, NaN}: 1 + 9.
  Buf s({1, std::numeric_limits<float>::quiet_NaN(), 3, std::numeric_limits<float>::quiet_NaN()});
  s.size[0] = 2;
  s.stride[0] = 2;
  EXPECT_EQ(norm_many_on_cpu(&s.t, 1, &ss, nullptr), 0);
  EXPECT_DOUBLE_EQ(ss, 10.0);
}

TEST(NormMany, LongContiguousRunsMatchANaiveSum) {
  std::vector<float> v(10007);
  double naive = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = float(std::sin(double(i)) * 3.0);
    naive += double(v[i]) * double(v[i]);
  }
  Buf a(v);
  double ss = 0;
  EXPECT_EQ(norm_many_on_cpu(&a.t, 1, &ss, nullptr), 0);
  EXPECT_NEAR(ss, naive, naive * 1e-12);
}

}  // namespace
}  // namespace nantrace
