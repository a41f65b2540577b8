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

struct Buf {
  std::vector<float> v;
  int64_t size[1];
  int64_t stride[1] = {1};
  nt_tensor t{};
  explicit Buf(std::vector<float> values) : v(std::move(values)) {
    size[0] = int64_t(v.size());
    t.data = v.data();
    t.dtype = NT_DTYPE_F32;
    t.ndim = 1;
    t.sizes = size;
    t.strides = stride;
    t.device_type = NT_DEVICE_CPU;
  }
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

}  // namespace
}  // namespace nantrace
