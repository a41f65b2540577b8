#include "core/advisor.h"

#include <gtest/gtest.h>

namespace nantrace {
namespace {

TEST(Advisor, WeakFp16Devices) {
  EXPECT_TRUE(weak_fp16_device("Tesla T4"));
  EXPECT_TRUE(weak_fp16_device("NVIDIA GeForce GTX 1660 SUPER"));
  EXPECT_TRUE(weak_fp16_device("Tesla P100-PCIE-16GB"));
  EXPECT_FALSE(weak_fp16_device("NVIDIA H200"));
  EXPECT_FALSE(weak_fp16_device("NVIDIA GeForce RTX 4090"));
  EXPECT_FALSE(weak_fp16_device(""));
}

Finding overflow_finding(const std::string& module) {
  Finding f;
  f.found = true;
  f.kind = FaultKind::Fp16Overflow;
  f.origin.site.module_path = module;
  f.origin.site.phase = Phase::Forward;
  f.origin.dtype = DType::F16;
  f.origin.step = 10;
  return f;
}

TEST(Advisor, Fp16OverflowNamesModuleAndFp32Fix) {
  AdviceContext ctx;
  const Recommendation r = advise(overflow_finding("TinyVits/dec.ups.1"), ctx);
  EXPECT_NE(r.headline.find("TinyVits/dec.ups.1"), std::string::npos);
  EXPECT_NE(r.headline.find("fp32"), std::string::npos);
  bool autocast_off = false;
  for (auto& a : r.actions) autocast_off |= a.find("enabled=False") != std::string::npos;
  EXPECT_TRUE(autocast_off);
}

TEST(Advisor, WeakDeviceAddsFp32AdviceOnlyForHalfFaults) {
  AdviceContext ctx;
  ctx.device_name = "Tesla T4";
  const Recommendation r = advise(overflow_finding("M/x"), ctx);
  bool t4 = false;
  for (auto& a : r.actions) t4 |= a.find("Tesla T4") != std::string::npos;
  EXPECT_TRUE(t4);
  Finding f32 = overflow_finding("M/x");
  f32.kind = FaultKind::InvalidOp;
  f32.origin.dtype = DType::F32;
  const Recommendation r2 = advise(f32, ctx);
  for (auto& a : r2.actions) EXPECT_EQ(a.find("Tesla T4"), std::string::npos);
}

TEST(Advisor, VerifiedFixIsCitedAsEvidence) {
  AdviceContext ctx;
  ctx.fp32_replay_finite = true;
  ctx.fp32_replay_max_abs = 123456.0;
  const Recommendation r = advise(overflow_finding("M/x"), ctx);
  ASSERT_FALSE(r.evidence.empty());
  EXPECT_NE(r.evidence.back().find("123456"), std::string::npos);
}

TEST(Advisor, NoFindingWithSkipsSaysHandled) {
  AdviceContext ctx;
  ctx.benign_skips = 3;
  const Recommendation r = advise(Finding{}, ctx);
  EXPECT_NE(r.headline.find("No fault"), std::string::npos);
  EXPECT_NE(r.headline.find("3"), std::string::npos);
}

}  // namespace
}  // namespace nantrace
