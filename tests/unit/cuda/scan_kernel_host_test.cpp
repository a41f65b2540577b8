// The scan kernel's per-element code (src/cuda/scan_kernel.cuh, the text NVRTC compiles)
// compiled for the host, run the way the kernel partitions work (grid-stride threads,
// merged), and compared field by field with the CPU scanner on the same inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/scanner.h"
#include "cuda/scan_kernel.cuh"
#include "cuda/scan_result.h"

namespace nantrace::cuda {
namespace {

using devscan::ScanParams;
using devscan::ScanResult;

// What the kernel computes, with its thread partitioning: thread t of `threads` handles
// logical indices t, t + threads, ... and the per-thread results are merged.
template <class F>
ScanResult emulate_kernel(const ScanParams& p, int threads) {
  ScanResult r;
  std::memset(&r, 0, sizeof r);
  const auto* base = static_cast<const typename F::bits_t*>(p.data);
  for (int t = 0; t < threads; ++t) {
    devscan::ThreadAcc<F> a;
    a.reset();
    devscan::ArrayHist h{r.hist};
    for (long long i = t; i < p.numel; i += threads)
      devscan::accumulate<F>(a, h, base[devscan::element_offset(p, i)], static_cast<nt_u64>(i));
    devscan::merge_into(r, a);
  }
  return r;
}

ScanResult emulate(DType d, const ScanParams& p, int threads) {
  switch (d) {
    case DType::F16: return emulate_kernel<fbits::F16>(p, threads);
    case DType::BF16: return emulate_kernel<fbits::BF16>(p, threads);
    case DType::F32: return emulate_kernel<fbits::F32>(p, threads);
    case DType::F64: return emulate_kernel<fbits::F64>(p, threads);
  }
  return ScanResult{};
}

void expect_same(const TensorStats& gpu, const TensorStats& cpu, const std::string& what) {
  EXPECT_EQ(gpu.numel, cpu.numel) << what;
  EXPECT_EQ(gpu.nan_count, cpu.nan_count) << what;
  EXPECT_EQ(gpu.posinf_count, cpu.posinf_count) << what;
  EXPECT_EQ(gpu.neginf_count, cpu.neginf_count) << what;
  EXPECT_EQ(gpu.zero_count, cpu.zero_count) << what;
  EXPECT_EQ(gpu.subnormal_count, cpu.subnormal_count) << what;
  EXPECT_EQ(gpu.max_abs_finite, cpu.max_abs_finite) << what;
  EXPECT_EQ(gpu.first_bad_index, cpu.first_bad_index) << what;
  for (int b = 0; b < NT_HEADROOM_BINS; ++b) EXPECT_EQ(gpu.headroom_hist[b], cpu.headroom_hist[b]) << what << " bin " << b;
}

// Special bit patterns of a format: zeros, subnormals, normals, extremes, infinities, NaNs
// with assorted payloads and signs.
template <class F>
std::vector<typename F::bits_t> specials() {
  typedef typename F::bits_t B;
  typedef fbits::Masks<F> M;
  const B one = B(B(F::kBias) << F::kManBits);
  return {
      B(0),                               // +0
      M::kSign,                           // -0
      B(1),                               // smallest subnormal
      B(M::kMan),                         // largest subnormal
      B(M::kSign | 3),                    // negative subnormal
      B(B(1) << F::kManBits),             // smallest normal
      one,                                // 1.0
      B(one | M::kSign | 5),              // about -1
      B((M::kExp - (B(1) << F::kManBits)) | M::kMan),          // max finite
      B(M::kSign | (M::kExp - (B(1) << F::kManBits)) | M::kMan),  // -max finite
      M::kExp,                            // +inf
      B(M::kSign | M::kExp),              // -inf
      B(M::kExp | (B(1) << (F::kManBits - 1))),   // quiet NaN
      B(M::kExp | 1),                     // signalling NaN, payload 1
      B(M::kSign | M::kExp | M::kMan),    // negative NaN, all payload bits
      B(M::kExp | B(M::kMan >> 1)),       // NaN with a mid payload
  };
}

template <class F>
std::vector<typename F::bits_t> make_data(size_t n, unsigned seed, bool finite_only) {
  typedef typename F::bits_t B;
  std::mt19937_64 rng(seed);
  std::vector<B> v(n);
  const auto sp = specials<F>();
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = rng();
    if (r % 7 == 0) {
      v[i] = sp[(r >> 8) % sp.size()];
    } else {
      v[i] = B(rng());  // every bit pattern, NaN payloads included
    }
    if (finite_only && fbits::is_nonfinite<F>(v[i])) v[i] = B(v[i] & ~fbits::Masks<F>::kExp);
  }
  return v;
}

struct View {
  std::vector<int64_t> sizes, strides;
  int64_t offset = 0;  // elements from the buffer start to the view's first element
  std::string name;
};

// Views over a buffer of n elements: dense, transposed, reversed, broadcast, sliced,
// scalar, empty, many dims.
std::vector<View> views_for(size_t n) {
  std::vector<View> v;
  v.push_back({{int64_t(n)}, {1}, 0, "dense"});
  v.push_back({{int64_t(n) - 3}, {1}, 3, "dense, odd start"});
  if (n >= 64) {
    v.push_back({{8, int64_t(n) / 8}, {1, 8}, 0, "transposed"});
    v.push_back({{int64_t(n) / 2}, {-2}, int64_t(n) - 1, "reversed, step 2"});
    v.push_back({{3, 5, 4}, {int64_t(n) / 4, 0, 3}, 1, "broadcast + strided"});
    v.push_back({{2, 3, 7}, {int64_t(n) / 3, 9, 1}, 2, "sliced rows"});
    v.push_back({{1, int64_t(n) / 2, 1}, {99, 2, 77}, 0, "size-1 dims with odd strides"});
  }
  v.push_back({{}, {}, 1, "scalar"});
  v.push_back({{4, 0, 3}, {0, 3, 1}, 0, "empty"});
  std::vector<int64_t> s16(16, 1), t16(16, 0);
  s16[3] = 2;
  s16[15] = 3;
  t16[3] = 5;
  t16[15] = 1;
  v.push_back({s16, t16, 0, "16 dims"});
  return v;
}

template <class F>
void compare_on(DType dtype, size_t n, unsigned seed, bool finite_only) {
  const auto data = make_data<F>(n, seed, finite_only);
  for (const View& view : views_for(n)) {
    const void* first = data.data() + view.offset;
    ScanParams p;
    std::string err;
    ASSERT_TRUE(make_scan_params(first, int32_t(view.sizes.size()), view.sizes.data(),
                                 view.strides.data(), &p, &err))
        << view.name << ": " << err;
    TensorView tv;
    tv.data = first;
    tv.dtype = dtype;
    tv.ndim = int32_t(view.sizes.size());
    tv.sizes = view.sizes.data();
    tv.strides = view.strides.data();
    const TensorStats cpu = scan(tv);
    for (int threads : {1, 5, 256}) {
      const ScanResult r = emulate(dtype, p, threads);
      const TensorStats gpu = to_stats(r, dtype, uint64_t(p.numel));
      expect_same(gpu, cpu, std::string(to_string(dtype)) + " n=" + std::to_string(n) + " " +
                                view.name + " threads=" + std::to_string(threads));
    }
  }
}

TEST(ScanKernelOnHost, F16MatchesCpuScanner) {
  compare_on<fbits::F16>(DType::F16, 4099, 1, false);
  compare_on<fbits::F16>(DType::F16, 1023, 2, true);
}
TEST(ScanKernelOnHost, BF16MatchesCpuScanner) {
  compare_on<fbits::BF16>(DType::BF16, 4099, 3, false);
  compare_on<fbits::BF16>(DType::BF16, 777, 4, true);
}
TEST(ScanKernelOnHost, F32MatchesCpuScanner) {
  compare_on<fbits::F32>(DType::F32, 4099, 5, false);
  compare_on<fbits::F32>(DType::F32, 130, 6, true);
}
TEST(ScanKernelOnHost, F64MatchesCpuScanner) {
  compare_on<fbits::F64>(DType::F64, 4099, 7, false);
  compare_on<fbits::F64>(DType::F64, 65, 8, true);
}

// Every fp16 bit pattern once: all classes, all payloads, the whole histogram.
TEST(ScanKernelOnHost, EveryF16BitPattern) {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  const int64_t n = int64_t(all.size());
  const int64_t stride = 1;
  ScanParams p;
  ASSERT_TRUE(make_scan_params(all.data(), 1, &n, &stride, &p, nullptr));
  const TensorStats gpu = to_stats(emulate(DType::F16, p, 256), DType::F16, uint64_t(n));
  TensorView tv{all.data(), DType::F16, 1, &n, &stride};
  expect_same(gpu, scan(tv), "all fp16");
  EXPECT_EQ(gpu.nan_count, 2u * 1023u);
  EXPECT_EQ(gpu.posinf_count, 1u);
  EXPECT_EQ(gpu.neginf_count, 1u);
  EXPECT_EQ(gpu.zero_count, 2u);
  EXPECT_EQ(gpu.subnormal_count, 2u * 1023u);
  EXPECT_EQ(gpu.max_abs_finite, 65504.0);
  EXPECT_EQ(gpu.first_bad_index, 0x7C00);
}

TEST(ScanKernelOnHost, FirstBadIndexIsLogicalInAStridedView) {
  // A 4x4 fp32 matrix viewed transposed; the inf sits at storage [1][2] = logical [2][1].
  std::vector<float> m(16, 1.0f);
  m[1 * 4 + 2] = INFINITY;
  const int64_t sizes[] = {4, 4}, strides[] = {1, 4};
  ScanParams p;
  ASSERT_TRUE(make_scan_params(m.data(), 2, sizes, strides, &p, nullptr));
  EXPECT_EQ(p.contiguous, 0);
  const TensorStats s = to_stats(emulate(DType::F32, p, 3), DType::F32, 16);
  EXPECT_EQ(s.posinf_count, 1u);
  EXPECT_EQ(s.first_bad_index, 2 * 4 + 1);
}

TEST(ScanParams, CollapsesDenseViewsToContiguous) {
  float buf[24] = {};
  ScanParams p;
  const int64_t s3[] = {2, 3, 4}, t3[] = {12, 4, 1};
  ASSERT_TRUE(make_scan_params(buf, 3, s3, t3, &p, nullptr));
  EXPECT_EQ(p.contiguous, 1);
  EXPECT_EQ(p.numel, 24);
  const int64_t s4[] = {2, 1, 3, 4}, t4[] = {12, 1000, 4, 1};  // size-1 dim, any stride
  ASSERT_TRUE(make_scan_params(buf, 4, s4, t4, &p, nullptr));
  EXPECT_EQ(p.contiguous, 1);
  const int64_t tt[] = {1, 2, 6};  // permuted: not contiguous, kept as 3 dims
  ASSERT_TRUE(make_scan_params(buf, 3, s3, tt, &p, nullptr));
  EXPECT_EQ(p.contiguous, 0);
  EXPECT_EQ(p.ndim, 3);
}

TEST(ScanParams, RejectsUnusableViews) {
  float buf[4] = {};
  ScanParams p;
  std::string err;
  const int64_t neg[] = {-1}, one[] = {1};
  EXPECT_FALSE(make_scan_params(buf, 1, neg, one, &p, &err));
  EXPECT_FALSE(err.empty());
  EXPECT_FALSE(make_scan_params(buf, 17, one, one, &p, &err));
  EXPECT_FALSE(make_scan_params(buf, 1, nullptr, one, &p, &err));
  const int64_t big[] = {int64_t(1) << 40, int64_t(1) << 40};
  const int64_t st[] = {1, 1};
  EXPECT_FALSE(make_scan_params(buf, 2, big, st, &p, &err));
  const int64_t four[] = {4};
  EXPECT_FALSE(make_scan_params(nullptr, 1, four, one, &p, &err));
}

TEST(ScanGrid, CoversSmallViewsAndCapsLargeOnes) {
  ScanParams p{};
  p.contiguous = 1;
  p.numel = 0;
  EXPECT_EQ(scan_grid_blocks(p, DType::F16, 132), 1u);
  p.numel = 2048;  // 4 KiB of fp16 = 256 16-byte words = one block
  EXPECT_EQ(scan_grid_blocks(p, DType::F16, 132), 1u);
  p.numel = int64_t(1) << 30;
  EXPECT_EQ(scan_grid_blocks(p, DType::F32, 132), 132u * 4);
  p.contiguous = 0;
  p.numel = 257;
  EXPECT_EQ(scan_grid_blocks(p, DType::F64, 132), 2u);
}

}  // namespace
}  // namespace nantrace::cuda
