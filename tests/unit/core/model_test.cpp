#include "core/model.h"

#include <set>

#include <gtest/gtest.h>

namespace nantrace {
namespace {

TEST(ModelNames, DTypeRoundTrip) {
  EXPECT_STREQ(to_string(DType::F16), "float16");
  EXPECT_STREQ(to_string(DType::BF16), "bfloat16");
  EXPECT_STREQ(to_string(DType::F32), "float32");
  EXPECT_STREQ(to_string(DType::F64), "float64");
  for (DType d : {DType::F16, DType::BF16, DType::F32, DType::F64}) EXPECT_EQ(dtype_from_string(to_string(d)), d);
  EXPECT_EQ(dtype_from_string("torch.float16"), DType::F16);
  EXPECT_EQ(dtype_from_string("torch.bfloat16"), DType::BF16);
  EXPECT_EQ(dtype_from_string("half"), DType::F16);
  EXPECT_EQ(dtype_from_string("double"), DType::F64);
  EXPECT_FALSE(dtype_from_string("int8"));
  EXPECT_FALSE(dtype_from_string(""));
}

TEST(ModelNames, PhaseRoundTrip) {
  const std::pair<Phase, const char*> expected[] = {
      {Phase::Unknown, "unknown"},   {Phase::Input, "input"},     {Phase::Forward, "forward"},
      {Phase::Loss, "loss"},         {Phase::Backward, "backward"}, {Phase::Unscale, "unscale"},
      {Phase::OptimizerGrad, "optimizer_grad"}, {Phase::OptimizerParam, "optimizer_param"}};
  for (const auto& [p, name] : expected) {
    EXPECT_STREQ(to_string(p), name);
    EXPECT_EQ(phase_from_string(name), p);
  }
  EXPECT_FALSE(phase_from_string("Forward"));
}

TEST(ModelNames, RoleNames) {
  EXPECT_STREQ(to_string(Role::Output), "output");
  EXPECT_STREQ(to_string(Role::Input), "input");
  EXPECT_STREQ(to_string(Role::Param), "param");
  EXPECT_STREQ(to_string(Role::Replay), "replay");
}

TEST(ModelNames, FaultKindsRoundTripAndAreDistinct) {
  const std::pair<FaultKind, const char*> expected[] = {
      {FaultKind::None, "none"},
      {FaultKind::Fp16Overflow, "fp16_overflow"},
      {FaultKind::Overflow, "overflow"},
      {FaultKind::InvalidOp, "invalid_op"},
      {FaultKind::DivisionByZero, "division_by_zero"},
      {FaultKind::BadInput, "bad_input"},
      {FaultKind::Divergence, "divergence"},
      {FaultKind::OptimizerEpsUnderflow, "optimizer_eps_underflow"},
      {FaultKind::LossScaleCollapse, "loss_scale_collapse"},
      {FaultKind::Propagated, "propagated"},
      {FaultKind::HardwarePrecision, "hardware_precision"}};
  std::set<std::string> words;
  for (const auto& [k, name] : expected) {
    EXPECT_STREQ(to_string(k), name);
    EXPECT_EQ(fault_kind_from_string(name), k);
    words.insert(describe(k));
  }
  EXPECT_EQ(words.size(), std::size(expected)) << "each kind has its own human description";
  EXPECT_STREQ(describe(FaultKind::Fp16Overflow), "fp16 overflow");
  EXPECT_FALSE(fault_kind_from_string("fp16 overflow"));
}

}  // namespace
}  // namespace nantrace
