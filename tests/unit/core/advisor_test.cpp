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

// Bad-data advice fits the data: a known trainer first, then the argument's name, then the
// tensor's layout; never audio advice for images or tabular features.
std::string bad_input_advice(const std::string& tensor, std::vector<int64_t> shape, const std::string& trainer = "",
                             DType dtype = DType::F32, uint64_t nan = 1, uint64_t inf = 0) {
  Finding f;
  f.found = true;
  f.kind = FaultKind::BadInput;
  f.origin.site.phase = Phase::Input;
  f.origin.site.module_path = "Net";
  f.origin.site.tensor_name = tensor;
  f.origin.shape = std::move(shape);
  f.origin.dtype = dtype;
  f.origin.stats.nan_count = nan;
  f.origin.stats.posinf_count = inf;
  AdviceContext ctx;
  ctx.trainer = trainer;
  return advise(f, ctx).actions.at(0);
}

TEST(Advisor, BadDataAdviceFitsTheData) {
  EXPECT_NE(bad_input_advice("y", {4, 1025, 200}, "GPT-SoVITS s2_train.py").find("slicer"), std::string::npos);
  EXPECT_NE(bad_input_advice("y", {4, 1025, 200}, "GPT-SoVITS s2_train.py").find("2-name2text.txt"), std::string::npos);
  EXPECT_NE(bad_input_advice("pixel_values", {8, 3, 32, 32}).find("images"), std::string::npos);
  EXPECT_NE(bad_input_advice("inputs_embeds", {8, 16, 64}).find("token ids themselves cannot be NaN"), std::string::npos);
  EXPECT_NE(bad_input_advice("mel", {8, 80, 100}).find("silent"), std::string::npos);
  for (const auto& a : {bad_input_advice("x", {8, 12}), bad_input_advice("x", {8, 3, 32, 32}),
                        bad_input_advice("x", {8, 3, 100}), bad_input_advice("pixel_values", {8, 3, 32, 32})}) {
    EXPECT_EQ(a.find("slic"), std::string::npos) << a;  // no audio advice where nothing says audio
    EXPECT_EQ(a.find("denois"), std::string::npos) << a;
  }
  EXPECT_NE(bad_input_advice("x", {8, 12}).find("feature vectors"), std::string::npos);
  EXPECT_NE(bad_input_advice("x", {7}).find("data pipeline"), std::string::npos);
  const std::string half = bad_input_advice("x", {8, 12}, "", DType::F16, 0, 3);
  EXPECT_NE(half.find("become Inf when the data is cast"), std::string::npos) << half;
  EXPECT_EQ(bad_input_advice("x", {8, 12}, "", DType::F16, 1, 3).find("cast"), std::string::npos);
}

}  // namespace
}  // namespace nantrace
