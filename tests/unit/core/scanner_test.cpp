// Scanner tests: hand-built special values per dtype, then views of every layout compared
// with a deliberately naive reference scan written here (decode each element to double,
// walk logical indices one by one), which shares no code with the scanner.
#include "core/scanner.h"

#include "core/scan_block.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace nantrace {
namespace {

// ---- test-side description of each format (independent of core/float_bits.h) ----
struct FmtF16 {
  typedef uint16_t bits;
  static constexpr int kExp = 5, kMan = 10;
  static constexpr DType kDType = DType::F16;
  static constexpr double kMax = 65504.0;
};
struct FmtBF16 {
  typedef uint16_t bits;
  static constexpr int kExp = 8, kMan = 7;
  static constexpr DType kDType = DType::BF16;
  static constexpr double kMax = 3.38953138925153547590470800371487866880e38;  // 0x7F7F
};
struct FmtF32 {
  typedef uint32_t bits;
  static constexpr int kExp = 8, kMan = 23;
  static constexpr DType kDType = DType::F32;
  static constexpr double kMax = double(FLT_MAX);
};
struct FmtF64 {
  typedef uint64_t bits;
  static constexpr int kExp = 11, kMan = 52;
  static constexpr DType kDType = DType::F64;
  static constexpr double kMax = DBL_MAX;
};

template <class Fmt>
struct Bits {
  typedef typename Fmt::bits B;
  static constexpr int kWidth = int(sizeof(B) * 8);
  static constexpr B kExpOnes = B((B(1) << Fmt::kExp) - 1);
  static constexpr int kBias = (1 << (Fmt::kExp - 1)) - 1;
  static B make(bool neg, B exp, B man) {
    return B((B(neg) << (kWidth - 1)) | B(exp << Fmt::kMan) | man);
  }
  static B man_max() { return B((B(1) << Fmt::kMan) - 1); }
  static B qnan(bool neg = false) { return make(neg, kExpOnes, B(B(1) << (Fmt::kMan - 1))); }
  static B snan(bool neg = false) { return make(neg, kExpOnes, 1); }
  static B inf(bool neg) { return make(neg, kExpOnes, 0); }
  static B zero(bool neg) { return make(neg, 0, 0); }
  static B sub_min(bool neg = false) { return make(neg, 0, 1); }
  static B sub_max(bool neg = false) { return make(neg, 0, man_max()); }
  static B normal_min(bool neg = false) { return make(neg, 1, 0); }
  static B finite_max(bool neg = false) { return make(neg, B(kExpOnes - 1), man_max()); }
  static B pow2(int e, bool neg = false) { return make(neg, B(e + kBias), 0); }  // 2^e, normal e
};

// ---- the naive reference ----
template <class Fmt>
double decode(typename Fmt::bits b) {
  typedef Bits<Fmt> T;
  const bool neg = (b >> (T::kWidth - 1)) & 1;
  const uint64_t e = (b >> Fmt::kMan) & T::kExpOnes;
  const uint64_t m = b & T::man_max();
  double v;
  if (e == T::kExpOnes) {
    v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else if (e == 0) {
    v = std::ldexp(double(m), 1 - T::kBias - Fmt::kMan);
  } else {
    v = std::ldexp(double(m + (uint64_t(1) << Fmt::kMan)), int(e) - T::kBias - Fmt::kMan);
  }
  return neg ? -v : v;
}

struct View {
  std::vector<int64_t> sizes, strides;
  const void* data = nullptr;
  TensorView tv(DType d) const {
    TensorView v;
    v.data = data;
    v.dtype = d;
    v.ndim = int32_t(sizes.size());
    v.sizes = sizes.data();
    v.strides = strides.data();
    return v;
  }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : sizes) n *= s;
    return n;
  }
  // Storage offset of logical index i, by plain row-major decomposition.
  int64_t offset(int64_t i) const {
    int64_t off = 0;
    for (int d = int(sizes.size()) - 1; d >= 0; --d) {
      off += (i % sizes[d]) * strides[d];
      i /= sizes[d];
    }
    return off;
  }
};

template <class Fmt>
TensorStats reference_scan(const View& v, bool histogram) {
  typedef typename Fmt::bits B;
  TensorStats st;
  std::memset(&st, 0, sizeof st);
  st.first_bad_index = -1;
  const int64_t n = v.numel();
  st.numel = uint64_t(n);
  const B* p = static_cast<const B*>(v.data);
  const double min_normal = decode<Fmt>(Bits<Fmt>::normal_min());
  const int top = std::ilogb(Fmt::kMax);
  for (int64_t i = 0; i < n; ++i) {
    const double x = decode<Fmt>(p[v.offset(i)]);
    if (std::isnan(x) || std::isinf(x)) {
      if (std::isnan(x)) ++st.nan_count;
      else if (x > 0) ++st.posinf_count;
      else ++st.neginf_count;
      if (st.first_bad_index < 0) st.first_bad_index = i;
      continue;
    }
    const double a = std::fabs(x);
    st.max_abs_finite = std::max(st.max_abs_finite, a);
    if (a == 0) {
      ++st.zero_count;
    } else if (a < min_normal) {
      ++st.subnormal_count;
    } else if (histogram) {
      const int k = top - std::ilogb(a);
      ++st.headroom_hist[std::min(k, NT_HEADROOM_BINS - 1)];
    }
  }
  return st;
}

void expect_same(const TensorStats& got, const TensorStats& want, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.numel, want.numel);
  EXPECT_EQ(got.nan_count, want.nan_count);
  EXPECT_EQ(got.posinf_count, want.posinf_count);
  EXPECT_EQ(got.neginf_count, want.neginf_count);
  EXPECT_EQ(got.zero_count, want.zero_count);
  EXPECT_EQ(got.subnormal_count, want.subnormal_count);
  EXPECT_EQ(got.max_abs_finite, want.max_abs_finite);
  EXPECT_EQ(got.first_bad_index, want.first_bad_index);
  for (int k = 0; k < NT_HEADROOM_BINS; ++k) EXPECT_EQ(got.headroom_hist[k], want.headroom_hist[k]) << "bin " << k;
}

template <class Fmt>
TensorStats scan_contiguous(const std::vector<typename Fmt::bits>& xs, bool histogram = true) {
  const int64_t size = int64_t(xs.size());
  const int64_t stride = 1;
  TensorView v;
  v.data = xs.data();
  v.dtype = Fmt::kDType;
  v.ndim = 1;
  v.sizes = &size;
  v.strides = &stride;
  ScanOptions o;
  o.histogram = histogram;
  return scan(v, o);
}

// Random element: mostly normal values over a wide exponent range, sometimes specials.
template <class Fmt>
typename Fmt::bits random_value(std::mt19937_64& rng, double special_rate) {
  typedef Bits<Fmt> T;
  typedef typename Fmt::bits B;
  std::uniform_real_distribution<double> u(0, 1);
  const bool neg = rng() & 1;
  const B man = B(rng() & T::man_max());
  if (u(rng) < special_rate) {
    switch (rng() % 6) {
      case 0: return T::make(neg, T::kExpOnes, B(man | 1));  // NaN, any payload
      case 1: return T::inf(neg);
      case 2: return T::zero(neg);
      case 3: return T::make(neg, 0, B(man | 1));  // subnormal
      case 4: return B(rng());                      // raw bits: anything
      default: return T::finite_max(neg);
    }
  }
  return T::make(neg, B(1 + rng() % (T::kExpOnes - 1)), man);
}

template <class Fmt>
class ScannerTyped : public ::testing::Test {};
typedef ::testing::Types<FmtF16, FmtBF16, FmtF32, FmtF64> AllFormats;
TYPED_TEST_SUITE(ScannerTyped, AllFormats);

TYPED_TEST(ScannerTyped, SpecialValuesAreClassifiedExactly) {
  typedef Bits<TypeParam> T;
  const std::vector<typename TypeParam::bits> xs = {
      T::pow2(0),          // 1.0
      T::qnan(),           // quiet NaN
      T::snan(),           // signalling NaN (smallest payload)
      T::qnan(true),       // negative NaN
      T::make(false, T::kExpOnes, T::man_max()),  // all-ones payload
      T::inf(false),       T::inf(true),
      T::sub_min(),        T::sub_max(),         T::sub_min(true),
      T::zero(false),      T::zero(true),
      T::finite_max(true), T::normal_min(),
  };
  for (bool hist : {true, false}) {
    const TensorStats st = scan_contiguous<TypeParam>(xs, hist);
    EXPECT_EQ(st.numel, xs.size());
    EXPECT_EQ(st.nan_count, 4u);
    EXPECT_EQ(st.posinf_count, 1u);
    EXPECT_EQ(st.neginf_count, 1u);
    EXPECT_EQ(st.subnormal_count, 3u);
    EXPECT_EQ(st.zero_count, 2u);
    EXPECT_EQ(st.max_abs_finite, TypeParam::kMax);
    EXPECT_EQ(st.first_bad_index, 1);
    uint64_t total = 0;
    for (uint64_t c : st.headroom_hist) total += c;
    if (hist) {
      EXPECT_EQ(total, 3u);                            // 1.0, -max, min normal
      EXPECT_EQ(st.headroom_hist[0], 1u);              // -max is within 2x of max
      const int one_bin = std::ilogb(TypeParam::kMax);  // 1.0 sits that many binades down
      EXPECT_EQ(st.headroom_hist[std::min(one_bin, NT_HEADROOM_BINS - 1)], one_bin >= NT_HEADROOM_BINS - 1 ? 2u : 1u);
    } else {
      EXPECT_EQ(total, 0u);
    }
  }
}

TYPED_TEST(ScannerTyped, MaxAbsFiniteIsExactAtTheExtremes) {
  typedef Bits<TypeParam> T;
  EXPECT_EQ(scan_contiguous<TypeParam>({T::finite_max(false)}).max_abs_finite, TypeParam::kMax);
  EXPECT_EQ(scan_contiguous<TypeParam>({T::finite_max(true), T::inf(false)}).max_abs_finite, TypeParam::kMax);
  EXPECT_EQ(scan_contiguous<TypeParam>({T::sub_min(true)}).max_abs_finite, decode<TypeParam>(T::sub_min()));
  EXPECT_EQ(scan_contiguous<TypeParam>({T::sub_max()}).max_abs_finite, decode<TypeParam>(T::sub_max()));
  // Only non-finite values: no finite max.
  EXPECT_EQ(scan_contiguous<TypeParam>({T::qnan(), T::inf(true)}).max_abs_finite, 0.0);
  EXPECT_EQ(scan_contiguous<TypeParam>({T::zero(true)}).max_abs_finite, 0.0);
}

TYPED_TEST(ScannerTyped, HistogramBinsFollowBinadesBelowTheMax) {
  typedef Bits<TypeParam> T;
  const int top = std::ilogb(TypeParam::kMax);
  // 2^(top-k) for k = 0..44 (where the format has such normals): bin min(k, last).
  std::vector<typename TypeParam::bits> xs;
  uint64_t want[NT_HEADROOM_BINS] = {};
  for (int k = 0; k <= 44; ++k) {
    const int e = top - k;
    if (e < 1 - T::kBias) break;  // below the smallest normal
    xs.push_back(T::pow2(e, k % 2 == 1));
    ++want[std::min(k, NT_HEADROOM_BINS - 1)];
  }
  // Largest mantissa stays in the same binade.
  xs.push_back(T::make(false, T::Bits::kExpOnes - 1 - 3, T::man_max()));
  ++want[3];
  const TensorStats st = scan_contiguous<TypeParam>(xs);
  for (int k = 0; k < NT_HEADROOM_BINS; ++k) EXPECT_EQ(st.headroom_hist[k], want[k]) << "bin " << k;
}

TYPED_TEST(ScannerTyped, FirstBadIndexInContiguousViewsAcrossBlockBoundaries) {
  typedef Bits<TypeParam> T;
  for (int64_t n : {1, 7, 63, 1025, 4095, 4096, 4097, 8193, 20000}) {
    for (int64_t at : {int64_t(0), n / 2, n - 1, std::min<int64_t>(n - 1, 4095), std::min<int64_t>(n - 1, 4096)}) {
      std::vector<typename TypeParam::bits> xs(size_t(n), T::pow2(0));
      xs[size_t(at)] = T::inf(true);
      if (at + 1 < n) xs[size_t(n - 1)] = T::qnan();  // a later bad value must not win
      const TensorStats st = scan_contiguous<TypeParam>(xs);
      EXPECT_EQ(st.first_bad_index, at) << "n=" << n;
      EXPECT_EQ(st.neginf_count, 1u);
      EXPECT_EQ(st.nan_count, at + 1 < n ? 1u : 0u);
      EXPECT_EQ(st.max_abs_finite, n > 1 ? 1.0 : 0.0);
    }
  }
}

TYPED_TEST(ScannerTyped, OddSizesMatchReference) {
  std::mt19937_64 rng(42);
  for (int64_t n : {1, 2, 3, 7, 15, 31, 63, 64, 65, 255, 257, 1025, 4097, 12289}) {
    std::vector<typename TypeParam::bits> xs(static_cast<size_t>(n));
    for (auto& x : xs) x = random_value<TypeParam>(rng, 0.02);
    View v;
    v.sizes = {n};
    v.strides = {1};
    v.data = xs.data();
    for (bool hist : {true, false}) {
      expect_same(scan(v.tv(TypeParam::kDType), ScanOptions{hist}), reference_scan<TypeParam>(v, hist),
                  "n=" + std::to_string(n));
    }
  }
}

TYPED_TEST(ScannerTyped, StridedViewIgnoresElementsOutsideTheView) {
  typedef Bits<TypeParam> T;
  // A 2-D buffer 37 x 300 full of NaN; the view takes every 3rd column of 33 rows, all 2.0.
  const int64_t rows = 37, cols = 300;
  std::vector<typename TypeParam::bits> buf(size_t(rows * cols), T::qnan());
  View v;
  v.sizes = {33, 100};
  v.strides = {cols, 3};
  v.data = buf.data() + cols + 1;
  for (int64_t i = 0; i < v.numel(); ++i) buf[size_t(cols + 1 + v.offset(i))] = T::pow2(1);
  const TensorStats st = scan(v.tv(TypeParam::kDType));
  EXPECT_EQ(st.numel, 3300u);
  EXPECT_EQ(st.nan_count, 0u);
  EXPECT_EQ(st.first_bad_index, -1);
  EXPECT_EQ(st.max_abs_finite, 2.0);
  // Same with contiguous rows (in-place path): a row-slice of the NaN buffer.
  View rowsv;
  rowsv.sizes = {5, 290};
  rowsv.strides = {cols, 1};
  rowsv.data = buf.data() + 2 * cols + 5;
  for (int64_t i = 0; i < rowsv.numel(); ++i) buf[size_t(2 * cols + 5 + rowsv.offset(i))] = T::pow2(-1);
  const TensorStats st2 = scan(rowsv.tv(TypeParam::kDType));
  EXPECT_EQ(st2.nan_count, 0u);
  EXPECT_EQ(st2.max_abs_finite, 0.5);
}

TYPED_TEST(ScannerTyped, FirstBadIndexIsLogicalForTransposedBroadcastAndReversedViews) {
  typedef Bits<TypeParam> T;
  // Storage 4 x 5 row-major; the transposed view is 5 x 4 with strides {1, 5}.
  std::vector<typename TypeParam::bits> buf(20, T::pow2(0));
  buf[1 * 5 + 0] = T::qnan();  // storage (1,0) -> transposed (0,1) -> logical 1
  buf[0 * 5 + 3] = T::inf(false);  // storage (0,3) -> transposed (3,0) -> logical 12
  View t;
  t.sizes = {5, 4};
  t.strides = {1, 5};
  t.data = buf.data();
  EXPECT_EQ(scan(t.tv(TypeParam::kDType)).first_bad_index, 1);
  expect_same(scan(t.tv(TypeParam::kDType)), reference_scan<TypeParam>(t, true), "transposed");

  // Broadcast: a 1 x 5 row expanded to 6 x 5 (stride 0), NaN in column 2.
  std::vector<typename TypeParam::bits> row(5, T::pow2(3));
  row[2] = T::qnan(true);
  View b;
  b.sizes = {6, 5};
  b.strides = {0, 1};
  b.data = row.data();
  const TensorStats sb = scan(b.tv(TypeParam::kDType));
  EXPECT_EQ(sb.nan_count, 6u);
  EXPECT_EQ(sb.first_bad_index, 2);
  EXPECT_EQ(sb.max_abs_finite, 8.0);
  // Broadcast along the inner dim: each row is one element repeated.
  View b2;
  b2.sizes = {5, 1000};
  b2.strides = {1, 0};
  b2.data = row.data();
  const TensorStats sb2 = scan(b2.tv(TypeParam::kDType));
  EXPECT_EQ(sb2.nan_count, 1000u);
  EXPECT_EQ(sb2.first_bad_index, 2000);
  expect_same(sb2, reference_scan<TypeParam>(b2, true), "inner broadcast");

  // Reversed (negative stride): data points at the last storage element.
  std::vector<typename TypeParam::bits> lin(5000, T::pow2(-2));
  lin[10] = T::inf(true);
  lin[4000] = T::qnan();
  View r;
  r.sizes = {5000};
  r.strides = {-1};
  r.data = lin.data() + 4999;
  const TensorStats sr = scan(r.tv(TypeParam::kDType));
  EXPECT_EQ(sr.first_bad_index, 4999 - 4000);
  EXPECT_EQ(sr.nan_count, 1u);
  EXPECT_EQ(sr.neginf_count, 1u);
  expect_same(sr, reference_scan<TypeParam>(r, true), "reversed");
}

// Random shapes and layouts: permuted, stepped, broadcast and reversed dims over a storage
// whose out-of-view elements are random too (often NaN).
TYPED_TEST(ScannerTyped, RandomViewsMatchReference) {
  typedef typename TypeParam::bits B;
  std::mt19937_64 rng(1234 + sizeof(B) + TypeParam::kMan);
  for (int iter = 0; iter < 300; ++iter) {
    const int ndim = int(rng() % 6);
    View v;
    v.sizes.resize(size_t(ndim));
    int64_t numel = 1;
    for (auto& s : v.sizes) {
      const int r = int(rng() % 10);
      s = r < 2 ? 1 : r < 8 ? int64_t(1 + rng() % 9) : int64_t(1 + rng() % 5000);
      if (numel * s > 60000) s = 1 + int64_t(rng() % 3);  // keep the reference scan quick
      numel *= s;
    }
    if (rng() % 25 == 0 && ndim > 0) v.sizes[rng() % size_t(ndim)] = 0;  // empty view
    // Strides: a contiguous layout of a random permutation, some dims stepped (x2),
    // broadcast (0) or reversed (negative).
    std::vector<int> perm(static_cast<size_t>(ndim));
    for (int d = 0; d < ndim; ++d) perm[size_t(d)] = d;
    std::shuffle(perm.begin(), perm.end(), rng);
    v.strides.assign(size_t(ndim), 0);
    int64_t step = 1 + int64_t(rng() % 3 == 0);
    for (int j = ndim - 1; j >= 0; --j) {
      const int d = perm[size_t(j)];
      const int kind = int(rng() % 10);
      if (kind == 0) {
        v.strides[size_t(d)] = 0;
        continue;
      }
      v.strides[size_t(d)] = kind == 1 ? -step : step;
      step *= v.sizes[size_t(d)] + int64_t(rng() % 4 == 0);
    }
    int64_t lo = 0, hi = 0;
    bool empty = false;
    for (int d = 0; d < ndim; ++d) {
      if (v.sizes[size_t(d)] == 0) empty = true;
      const int64_t span = (v.sizes[size_t(d)] - 1) * v.strides[size_t(d)];
      (span < 0 ? lo : hi) += span;
    }
    if (empty) lo = hi = 0;
    std::vector<B> storage(size_t(hi - lo + 1));
    const double rate = (rng() % 3 == 0) ? 0.0 : (rng() % 2 ? 0.001 : 0.05);
    const bool nan_outside = rng() % 2;
    for (auto& x : storage) x = nan_outside ? Bits<TypeParam>::qnan() : random_value<TypeParam>(rng, rate);
    if (!empty) {
      for (int64_t i = 0; i < v.numel(); ++i) storage[size_t(v.offset(i) - lo)] = random_value<TypeParam>(rng, rate);
    }
    v.data = storage.data() - lo;
    const bool hist = rng() % 2;
    std::string what = "iter " + std::to_string(iter) + " sizes";
    for (size_t d = 0; d < v.sizes.size(); ++d) what += " " + std::to_string(v.sizes[d]) + "/" + std::to_string(v.strides[d]);
    const TensorStats want = reference_scan<TypeParam>(v, hist);
    expect_same(scan(v.tv(TypeParam::kDType), ScanOptions{hist}), want, what);
    // The portable kernels too (the line above uses AVX2 where the CPU has it).
    scan_detail::force_generic_kernels(true);
    expect_same(scan(v.tv(TypeParam::kDType), ScanOptions{hist}), want, what + " (generic kernels)");
    scan_detail::force_generic_kernels(false);
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(Scanner, ScalarViewNeedsNoSizesOrStrides) {
  const float x = -std::numeric_limits<float>::infinity();
  TensorView v;
  v.data = &x;
  v.dtype = DType::F32;
  v.ndim = 0;
  const TensorStats st = scan(v);
  EXPECT_EQ(st.numel, 1u);
  EXPECT_EQ(st.neginf_count, 1u);
  EXPECT_EQ(st.first_bad_index, 0);
}

TEST(Scanner, UnusableViewsReportOnlyNumel) {
  const float nan = std::nanf("");
  std::vector<int64_t> sizes(17, 1), strides(17, 1);
  TensorView v;
  v.data = &nan;
  v.dtype = DType::F32;
  v.ndim = 17;
  v.sizes = sizes.data();
  v.strides = strides.data();
  TensorStats st = scan(v);
  EXPECT_EQ(st.numel, 1u);  // numel is still computed
  EXPECT_EQ(st.nan_count, 0u);
  EXPECT_EQ(st.first_bad_index, -1);
  EXPECT_FALSE(scan_view_is_scannable(v));
  v.ndim = 16;
  EXPECT_TRUE(scan_view_is_scannable(v));
  EXPECT_EQ(scan(v).nan_count, 1u);  // the same view with 16 dims is read
  v.ndim = 17;

  v.ndim = 1;
  v.strides = nullptr;
  st = scan(v);
  EXPECT_EQ(st.numel, 1u);
  EXPECT_EQ(st.nan_count, 0u);

  v.strides = strides.data();
  v.data = nullptr;
  st = scan(v);
  EXPECT_EQ(st.numel, 1u);
  EXPECT_EQ(st.nan_count, 0u);

  v.data = &nan;
  v.sizes = nullptr;
  st = scan(v);
  EXPECT_EQ(st.numel, 0u);
  EXPECT_EQ(st.nan_count, 0u);

  const int64_t neg = -3;
  v.sizes = &neg;
  EXPECT_EQ(scan(v).numel, 0u);
  v.ndim = -1;
  EXPECT_EQ(scan(v).numel, 0u);

  const int64_t one = 1;
  v.ndim = 1;
  v.sizes = &one;
  v.dtype = static_cast<DType>(99);
  EXPECT_FALSE(scan_view_is_scannable(v));
  st = scan(v);
  EXPECT_EQ(st.numel, 1u);
  EXPECT_EQ(st.nan_count, 0u);
}

TEST(Scanner, EmptyViewReadsNothing) {
  const int64_t sizes[2] = {4, 0};
  const int64_t strides[2] = {1, 1};
  TensorView v;
  v.data = nullptr;  // nothing to read, so null data is fine
  v.dtype = DType::F16;
  v.ndim = 2;
  v.sizes = sizes;
  v.strides = strides;
  const TensorStats st = scan(v);
  EXPECT_EQ(st.numel, 0u);
  EXPECT_EQ(st.first_bad_index, -1);
}

TEST(Scanner, ElementOffsetInvertsLogicalIndex) {
  const int64_t sizes[3] = {2, 3, 4};
  const int64_t strides[3] = {1, -8, 2};
  TensorView v;
  v.ndim = 3;
  v.sizes = sizes;
  v.strides = strides;
  EXPECT_EQ(view_numel(v), 24);
  // index 13 = (1, 0, 1) -> 1*1 + 0*-8 + 1*2
  EXPECT_EQ(view_element_offset(v, 13), 3);
  // index 23 = (1, 2, 3) -> 1 - 16 + 6
  EXPECT_EQ(view_element_offset(v, 23), -9);
}

}  // namespace
}  // namespace nantrace
