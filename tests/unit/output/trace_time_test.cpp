// Every timestamp the writer emits must read back as the same nanosecond in both of
// Perfetto's conversions (the double product it truncates, and the decimal text), or spans
// that are back to back on the recorder's clock overlap after import.
#include "output/trace_time.h"

#include <random>

#include <gtest/gtest.h>

namespace nantrace {
namespace {

using trace_time::ns_via_double;
using trace_time::ns_via_text;
using trace_time::trace_micros;

TEST(TraceTime, ThreeDecimalsWhereTheDoubleIsExactEnough) {
  EXPECT_EQ(trace_micros(0), "0.000");
  EXPECT_EQ(trace_micros(5'000), "5.000");
  EXPECT_EQ(trace_micros(123'456'789), "123456.789");
  EXPECT_EQ(trace_micros(-2'500), "-2.500");
}

TEST(TraceTime, HalfANanosecondIsAddedWhereTruncationWouldLoseOne) {
  // 1.001 us * 1000 is 1000.9999999999999 as a double: Perfetto would read 1000 ns.
  ASSERT_EQ(ns_via_double("1.001"), 1000);
  EXPECT_EQ(trace_micros(1'001), "1.0015");
  EXPECT_EQ(ns_via_double(trace_micros(1'001)), 1'001);
  EXPECT_EQ(ns_via_text(trace_micros(1'001)), 1'001);
}

TEST(TraceTime, BothConversionsGiveBackEveryValueOverDaysOfRun) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> small(-10'000'000, 10'000'000);
  std::uniform_int_distribution<int64_t> large(0, int64_t(30) * 24 * 3600 * 1'000'000'000);  // 30 days
  for (int i = 0; i < 200'000; ++i) {
    const int64_t ns = (i % 2) ? small(rng) : large(rng);
    const std::string text = trace_micros(ns);
    ASSERT_EQ(ns_via_double(text), ns) << text;
    ASSERT_EQ(ns_via_text(text), ns) << text;
  }
  for (int64_t ns = 0; ns < 100'000; ++ns) ASSERT_EQ(ns_via_double(trace_micros(ns)), ns);
}

TEST(TraceTime, BackToBackSpansStayBackToBackAfterImport) {
  // Perfetto's end of a span is ns(ts) + ns(dur), computed from two separately parsed numbers.
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> start(0, int64_t(1) << 45), len(1, 50'000'000);
  for (int i = 0; i < 100'000; ++i) {
    const int64_t a = start(rng), d = len(rng);
    const int64_t end = *ns_via_double(trace_micros(a)) + *ns_via_double(trace_micros(d));
    ASSERT_EQ(end, *ns_via_double(trace_micros(a + d)));
  }
}

TEST(TraceTime, TextReadingFollowsJsonNumbers) {
  EXPECT_EQ(ns_via_text("12"), 12'000);
  EXPECT_EQ(ns_via_text("12.3455"), 12'345);
  EXPECT_EQ(ns_via_text("-0.0015"), -1);
  EXPECT_EQ(ns_via_text("1e3"), 1'000'000);
  EXPECT_EQ(ns_via_text("1.5E-3"), 1);
  EXPECT_EQ(ns_via_text("1700000000123456.789"), 1'700'000'000'123'456'789);
  EXPECT_FALSE(ns_via_text(""));
  EXPECT_FALSE(ns_via_text("abc"));
  EXPECT_FALSE(ns_via_text("1.2.3"));
  EXPECT_FALSE(ns_via_text("\"5\""));
  EXPECT_FALSE(ns_via_text("99999999999999999999"));
  EXPECT_FALSE(ns_via_double("nan"));
}

}  // namespace
}  // namespace nantrace
