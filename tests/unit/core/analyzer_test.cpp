#include "core/analyzer.h"

#include <gtest/gtest.h>

#include "analysis_fixtures.h"

namespace nantrace {
namespace {
using namespace nantrace::testing;

TEST(Analyzer, HealthyRunHasNoFinding) {
  Analyzer a;
  for (int s = 1; s <= 5; ++s) {
    a.on_step_begin(s);
    a.on_check(finite(s, Phase::Input, "Net"));
    a.on_check(finite(s, Phase::Forward, "Net/fc"));
    a.on_check(finite(s, Phase::Loss, "", DType::F32));
    a.on_check(finite(s, Phase::Backward, "Net/fc"));
  }
  a.finish();
  EXPECT_FALSE(a.origin_found());
  const Report r = a.build_report();
  EXPECT_FALSE(r.finding.found);
  EXPECT_EQ(r.steps_seen, 5);
  EXPECT_EQ(r.checks, 20u);
  EXPECT_EQ(r.nonfinite_checks, 0u);
}

TEST(Analyzer, FirstForwardOverflowIsTheOriginNotWhatFollows) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_check(finite(1, Phase::Forward, "Net/enc"));
  a.on_step_begin(2);
  a.on_check(finite(2, Phase::Forward, "Net/enc", DType::F16, 900.0));
  auto out = a.on_check(check(2, Phase::Forward, "Net/dec.ups.1", DType::F16, 0, 3, 0, 60000.0));
  EXPECT_TRUE(out.new_origin);
  // Evidence: the module's finite inputs.
  a.on_check(check(2, Phase::Forward, "Net/dec.ups.1", DType::F16, 0, 0, 0, 900.0, Role::Input, "args[0]"));
  // Propagation downstream must not move the origin.
  out = a.on_check(check(2, Phase::Forward, "Net/dec.conv_post", DType::F16, 5, 0, 0));
  EXPECT_FALSE(out.new_origin);
  out = a.on_check(check(2, Phase::Loss, "", DType::F32, 1));
  EXPECT_FALSE(out.new_origin);
  const Finding f = a.finding();
  ASSERT_TRUE(f.found);
  EXPECT_EQ(f.origin.step, 2);
  EXPECT_EQ(f.origin.site.module_path, "Net/dec.ups.1");
  EXPECT_EQ(f.origin.site.phase, Phase::Forward);
  EXPECT_EQ(f.kind, FaultKind::Fp16Overflow);
  ASSERT_EQ(f.inputs.size(), 1u);
  EXPECT_EQ(f.inputs[0].site.tensor_name, "args[0]");
  EXPECT_FALSE(f.recommendation.headline.empty());
  EXPECT_NE(f.recommendation.headline.find("Net/dec.ups.1"), std::string::npos);
}

TEST(Analyzer, NanFromFiniteInputsIsInvalidOp) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_check(check(1, Phase::Forward, "Net/mel", DType::F32, 4));
  a.on_check(check(1, Phase::Forward, "Net/mel", DType::F32, 0, 0, 0, 2.0, Role::Input, "args[0]"));
  EXPECT_EQ(a.finding().kind, FaultKind::InvalidOp);
}

TEST(Analyzer, BadInputCarriesNoPrecisionVerdict) {
  // Re-running the model's forward on a batch that holds NaN says nothing about precision:
  // the report must not say "precision alone is not the cause" beside a bad-input finding.
  Analyzer a;
  a.on_step_begin(4);
  a.on_check(check(4, Phase::Input, "Net", DType::F32, 1, 0, 0, 1.0, Role::Output, "args[1]"));
  a.on_event(event(4, NT_EVENT_FIX_CHECK, "fix_check", R"({"variant":"fp32","finite":false,"module":"Net"})"));
  const Finding f = a.build_report().finding;
  ASSERT_EQ(f.kind, FaultKind::BadInput);
  for (auto& e : f.recommendation.evidence) EXPECT_EQ(e.find("in fp32"), std::string::npos) << e;
}

TEST(Analyzer, NanInTheBatchIsBadInput) {
  Analyzer a;
  a.on_step_begin(3);
  a.on_check(check(3, Phase::Input, "Net", DType::F32, 1, 0, 0, 1.0, Role::Output, "args[0]"));
  const Finding f = a.finding();
  ASSERT_TRUE(f.found);
  EXPECT_EQ(f.kind, FaultKind::BadInput);
  EXPECT_EQ(f.origin.site.phase, Phase::Input);
  EXPECT_NE(f.recommendation.headline.find("step 3"), std::string::npos);
}

TEST(Analyzer, ScaledGradientInfSkippedByScalerIsBenign) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_check(finite(1, Phase::Forward, "Net/fc"));
  a.on_check(finite(1, Phase::Loss, "", DType::F32));
  auto out = a.on_check(check(1, Phase::Backward, "Net/fc", DType::F16, 0, 2, 0, 1.0, Role::Output, "grad_output[0]"));
  EXPECT_FALSE(out.new_origin);
  a.on_event(optimizer_step(1, /*skipped=*/true));
  out = a.on_event(scaler_update(1, 65536, 32768, true));
  EXPECT_TRUE(out.new_benign_skip);
  a.on_step_begin(2);
  a.on_check(finite(2, Phase::Backward, "Net/fc"));
  a.on_event(scaler_update(2, 32768, 32768, false));
  a.finish();
  const Report r = a.build_report();
  EXPECT_FALSE(r.finding.found);
  ASSERT_EQ(r.benign_skips.size(), 1u);
  EXPECT_EQ(r.benign_skips[0].step, 1);
  EXPECT_DOUBLE_EQ(r.benign_skips[0].scale_before, 65536);
  EXPECT_DOUBLE_EQ(r.benign_skips[0].scale_after, 32768);
  EXPECT_NE(r.finding.recommendation.headline.find("No fault"), std::string::npos);
}

TEST(Analyzer, GradientInfWithoutScalerIsAFault) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_check(finite(1, Phase::Forward, "Net/fc", DType::BF16));
  a.on_check(check(1, Phase::Backward, "Net/fc", DType::BF16, 0, 1, 0, 1.0, Role::Output, "grad_output[0]"));
  EXPECT_FALSE(a.origin_found());  // waits for the step's outcome
  a.on_step_begin(2);
  EXPECT_TRUE(a.origin_found());
  EXPECT_EQ(a.finding().origin.step, 1);
  EXPECT_EQ(a.finding().origin.site.phase, Phase::Backward);
}

TEST(Analyzer, NonFiniteGradientReachingTheOptimizerIsAFaultAtTheEarliestGradient) {
  Analyzer a;
  a.on_step_begin(4);
  a.on_check(check(4, Phase::Backward, "Net/b", DType::F32, 2, 0, 0, 1.0, Role::Output, "grad_output[0]"));
  auto out = a.on_check(check(4, Phase::OptimizerGrad, "Net/b", DType::F32, 2, 0, 0, 1.0, Role::Output, "Net/b.weight"));
  EXPECT_TRUE(out.new_origin);
  EXPECT_EQ(a.finding().origin.site.phase, Phase::Backward);
}

TEST(Analyzer, ForwardOverflowWithRepeatedScalerSkipsIsLossScaleCollapse) {
  Analyzer a;
  for (int s = 1; s <= 5; ++s) {
    a.on_step_begin(s);
    a.on_check(check(s, Phase::Forward, "Net/conv", DType::F16, 0, 8, 0, 100.0));
    a.on_check(check(s, Phase::Forward, "Net/conv", DType::F16, 0, 0, 0, 3000.0, Role::Input, "args[0]"));
    a.on_event(optimizer_step(s, true));
    a.on_event(scaler_update(s, 65536.0 / (1 << (s - 1)), 65536.0 / (1 << s), true));
  }
  a.finish();
  const Finding f = a.finding();
  ASSERT_TRUE(f.found);
  EXPECT_EQ(f.origin.step, 1);
  EXPECT_EQ(f.kind, FaultKind::LossScaleCollapse);
  EXPECT_EQ(a.build_report().benign_skips.size(), 0u);  // skips after a real fault are not "benign"
}

TEST(Analyzer, ForwardOverflowAfterRealUpdatesStaysFp16OverflowDespiteSkips) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_check(finite(1, Phase::Forward, "Net/conv"));
  a.on_event(optimizer_step(1, false));
  for (int s = 2; s <= 6; ++s) {
    a.on_step_begin(s);
    a.on_check(check(s, Phase::Forward, "Net/conv", DType::F16, 0, 8, 0, 100.0));
    a.on_event(optimizer_step(s, true));
    a.on_event(scaler_update(s, 1024, 512, true));
  }
  a.finish();
  EXPECT_EQ(a.finding().kind, FaultKind::Fp16Overflow);
  EXPECT_EQ(a.build_report().series.at("scaler_skipped").size(), 5u);
}

TEST(Analyzer, ParametersNonFiniteAfterStepWithFiniteGradsIsDivergenceInFp32) {
  Analyzer a;
  a.on_step_begin(7);
  a.on_check(finite(7, Phase::OptimizerGrad, "Net/fc", DType::F32));
  a.on_check(check(7, Phase::OptimizerParam, "Net/fc", DType::F32, 3, 0, 0, 1.0, Role::Output, "Net/fc.weight"));
  EXPECT_EQ(a.finding().kind, FaultKind::Divergence);
}

TEST(Analyzer, ParametersNonFiniteInFp16IsEpsUnderflow) {
  Analyzer a;
  a.on_step_begin(2);
  a.on_check(check(2, Phase::OptimizerParam, "Net/fc", DType::F16, 3, 0, 0, 1.0, Role::Output, "Net/fc.weight"));
  EXPECT_EQ(a.finding().kind, FaultKind::OptimizerEpsUnderflow);
}

TEST(Analyzer, ReplayPinsTheOpAndItsInputs) {
  Analyzer a;
  a.on_step_begin(9);
  a.on_check(check(9, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 20.0));
  a.on_check(check(9, Phase::Forward, "Net/enc_q", DType::F16, 0, 0, 0, 3.0, Role::Input, "args[0]"));
  a.on_check(check(9, Phase::Forward, "Net/enc_q", DType::F16, 0, 0, 0, 2.0, Role::Replay, "out", "aten::convolution"));
  a.on_check(check(9, Phase::Forward, "Net/enc_q", DType::F16, 0, 0, 0, 12.5, Role::Input, "args[0]", "aten::exp"));
  a.on_check(check(9, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 40000.0, Role::Replay, "out", "aten::exp"));
  const Finding f = a.finding();
  EXPECT_EQ(f.op, "aten::exp");
  EXPECT_EQ(f.kind, FaultKind::Fp16Overflow);
  EXPECT_NE(f.explanation.find("12.5"), std::string::npos) << f.explanation;
  bool clamp_advice = false;
  for (auto& s : f.recommendation.actions) clamp_advice |= s.find("clamp") != std::string::npos;
  EXPECT_TRUE(clamp_advice);
}

TEST(Analyzer, AnOpThatOnlyCarriedNonFiniteInputsIsNeverNamed) {
  // The replay's first non-finite op output is a transpose of weights already NaN: it carried
  // the value; naming it as the op that made it would be false.
  Analyzer a;
  a.on_step_begin(6);
  a.on_check(check(6, Phase::Forward, "Net/fc", DType::F32, 16));
  a.on_check(check(6, Phase::Forward, "Net/fc", DType::F32, 0, 0, 0, 3.0, Role::Input, "args[0]"));
  a.on_check(check(6, Phase::Forward, "Net/fc", DType::F32, 16, 0, 0, 0.0, Role::Input, "input[0]", "aten::t"));
  a.on_check(check(6, Phase::Forward, "Net/fc", DType::F32, 16, 0, 0, 0.0, Role::Replay, "output", "aten::t"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::Propagated);
  EXPECT_TRUE(f.op.empty()) << f.op;
  EXPECT_TRUE(f.replay.empty());
  EXPECT_NE(f.explanation.find("carried"), std::string::npos) << f.explanation;
}

TEST(Analyzer, ProtocolNamesInANoteAreFreeTextNotEvidence) {
  // NT_EVENT_NOTE is free text: a note that happens to be called "replay_start" opens no
  // evidence window and moves nothing; it is shown as a note.
  Analyzer a;
  a.on_step_begin(3);
  a.on_check(check(3, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 20.0));
  a.on_event(event(3, NT_EVENT_NOTE, "origin_in_code", R"({"module":"Net"})"));
  a.on_event(event(3, NT_EVENT_NOTE, "replay_start", R"({"module":"Net/enc_q"})"));
  a.on_check(check(3, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 1.0, Role::Replay, "out", "aten::mul"));
  const Report r = a.build_report();
  EXPECT_EQ(r.finding.origin.site.module_path, "Net/enc_q");
  bool shown = false;
  for (auto& n : r.notes) shown |= n.rfind("replay_start: ", 0) == 0;
  EXPECT_TRUE(shown);
}

TEST(Analyzer, AnEventThatCannotBeDecodedIsNamedInTheNotes) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_event(event(1, NT_EVENT_FIX_CHECK, "fix_check", "[1,2]"));
  a.on_event(event(1, 999, "future", "{}"));
  const Report r = a.build_report();
  int not_understood = 0;
  for (auto& n : r.notes) not_understood += n.find("was not understood") != std::string::npos;
  EXPECT_EQ(not_understood, 2);
}

TEST(Analyzer, Bf16FixCheckDoesNotOverwriteTheFp32Verdict) {
  // An fp16-autocast run re-runs the culprit in fp32 and then in bf16: the fp32 verdict is the
  // one the advice cites, whatever order and outcome the bf16 one has.
  Analyzer a;
  a.on_step_begin(9);
  a.on_check(check(9, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 20.0));
  a.on_event(event(9, NT_EVENT_FIX_CHECK, "fix_check",
                   R"({"variant":"fp32","finite":true,"max_abs":70000.0,"module":"Net/enc_q"})"));
  a.on_event(event(9, NT_EVENT_FIX_CHECK, "fix_check",
                   R"({"variant":"bf16","finite":false,"max_abs":0.0,"module":"Net/enc_q"})"));
  const Report r = a.build_report();
  std::string evidence;
  for (auto& e : r.finding.recommendation.evidence) evidence += e + "\n";
  EXPECT_EQ(evidence.find("still non-finite"), std::string::npos) << evidence;
  EXPECT_NE(evidence.find("fp32"), std::string::npos) << evidence;
  bool bf16_note = false;
  for (auto& n : r.notes) bf16_note |= n.find("under bf16 autocast is still non-finite") != std::string::npos;
  EXPECT_TRUE(bf16_note);
}

TEST(Analyzer, ReplayOfALaterRecurrencePinsTheOpOnlyInsideItsWindow) {
  // Device checks: the origin is known only after its forward, so the culprit is replayed on
  // inputs captured when the fault recurs, steps later, between replay_start and replay notes.
  Analyzer a;
  a.on_step_begin(3);
  a.on_check(check(3, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 20.0));
  a.on_check(finite(3, Phase::Loss, "", DType::F32));  // ends the evidence of step 3
  a.on_step_begin(4);
  // Outside any replay window a replay-role check is not evidence.
  a.on_check(check(4, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 1.0, Role::Replay, "out", "aten::mul"));
  EXPECT_TRUE(a.finding().op.empty());
  // A window for another module is not the origin's either.
  a.on_event(event(4, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module":"Net/dec","step":4,"recurrence":true})"));
  a.on_check(check(4, Phase::Forward, "Net/dec", DType::F16, 0, 5, 0, 1.0, Role::Replay, "out", "aten::add"));
  a.on_event(event(4, NT_EVENT_REPLAY_END, "replay", R"({"module":"Net/dec","op":"aten::add"})"));
  EXPECT_TRUE(a.finding().op.empty());
  a.on_step_begin(5);
  a.on_event(event(5, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module":"Net/enc_q","step":5,"recurrence":true})"));
  a.on_check(check(5, Phase::Forward, "Net/enc_q", DType::F16, 0, 0, 0, 3.0, Role::Input, "args[0]"));
  a.on_check(check(5, Phase::Forward, "Net/enc_q", DType::F16, 0, 0, 0, 12.5, Role::Input, "args[0]", "aten::exp"));
  a.on_check(check(5, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 40000.0, Role::Replay, "out", "aten::exp"));
  a.on_event(event(5, NT_EVENT_REPLAY_END, "replay", R"({"module":"Net/enc_q","op":"aten::exp"})"));
  // After the window closes, nothing more is taken.
  a.on_check(check(5, Phase::Forward, "Net/enc_q", DType::F16, 0, 5, 0, 1.0, Role::Replay, "out", "aten::log"));
  const Finding f = a.finding();
  EXPECT_EQ(f.origin.step, 3);
  EXPECT_EQ(f.op, "aten::exp");
  EXPECT_EQ(f.kind, FaultKind::Fp16Overflow);
  ASSERT_EQ(f.inputs.size(), 1u);
  EXPECT_EQ(f.inputs[0].step, 5);
  EXPECT_NE(f.explanation.find("recurred at step 5"), std::string::npos) << f.explanation;
}

TEST(Analyzer, ValueBornInAnEnclosingModulesOwnCodeMovesTheOriginThere) {
  // ResBlock: x = x + conv(leaky_relu(x)). convs.0's output is finite, the add overflows, and
  // convs.1 is the first module whose output is seen non-finite, with non-finite inputs.
  Analyzer a;
  a.on_step_begin(16);
  a.on_check(finite(16, Phase::Forward, "Net/dec.res.convs.0", DType::F16, 40000.0));
  a.on_check(check(16, Phase::Forward, "Net/dec.res.convs.1", DType::F16, 3, 7, 2, 10.0));
  a.on_check(check(16, Phase::Forward, "Net/dec.res.convs.1", DType::F16, 0, 4, 0, 1.0, Role::Input, "args[0]"));
  EXPECT_EQ(a.finding().kind, FaultKind::Propagated);
  // Not enclosing (another branch; a prefix that stops inside a name): ignored.
  a.on_event(event(16, NT_EVENT_ORIGIN_IN_CODE, "origin_in_code", R"({"module":"Net/dec.res.conv","module_type":"X"})"));
  a.on_event(event(16, NT_EVENT_ORIGIN_IN_CODE, "origin_in_code", R"({"module":"Net/enc","module_type":"X"})"));
  EXPECT_EQ(a.finding().origin.site.module_path, "Net/dec.res.convs.1");
  a.on_event(event(16, NT_EVENT_ORIGIN_IN_CODE, "origin_in_code", R"({"module":"Net/dec.res","module_type":"ResBlock"})"));
  a.on_check(check(16, Phase::Forward, "Net/dec.res", DType::F16, 0, 0, 0, 30000.0, Role::Input, "args[0]"));
  a.on_event(event(16, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module":"Net/dec.res","step":16})"));
  a.on_check(check(16, Phase::Forward, "Net/dec.res", DType::F16, 0, 0, 0, 40000.0, Role::Replay, "out", "aten::convolution"));
  a.on_check(check(16, Phase::Forward, "Net/dec.res", DType::F16, 0, 0, 0, 40000.0, Role::Input, "input", "aten::add"));
  a.on_check(check(16, Phase::Forward, "Net/dec.res", DType::F16, 0, 6, 0, 50000.0, Role::Replay, "out", "aten::add"));
  a.on_event(event(16, NT_EVENT_REPLAY_END, "replay", R"({"module":"Net/dec.res","op":"aten::add"})"));
  const Finding f = a.finding();
  EXPECT_EQ(f.origin.site.module_path, "Net/dec.res");
  EXPECT_EQ(f.origin.site.module_type, "ResBlock");
  EXPECT_EQ(f.kind, FaultKind::Fp16Overflow);
  EXPECT_EQ(f.op, "aten::add");
  ASSERT_EQ(f.inputs.size(), 1u);
  EXPECT_EQ(f.inputs[0].stats.max_abs_finite, 30000.0);
  EXPECT_NE(f.explanation.find("`Net/dec.res.convs.1`'s, whose inputs were already non-finite"), std::string::npos)
      << f.explanation;
  // Once the evidence window has closed the origin stays where it is...
  a.on_check(finite(16, Phase::Loss, "", DType::F32));
  a.on_event(event(16, NT_EVENT_ORIGIN_IN_CODE, "origin_in_code", R"({"module":"Net","module_type":"Net"})"));
  EXPECT_EQ(a.finding().origin.site.module_path, "Net/dec.res");
  // ... unless the move comes from a replay at a recurrence (device tensors, found late).
  a.on_step_begin(17);
  a.on_event(event(17, NT_EVENT_ORIGIN_IN_CODE, "origin_in_code", R"({"module":"Net","module_type":"Net","recurrence":true})"));
  EXPECT_EQ(a.finding().origin.site.module_path, "Net");
  EXPECT_NE(a.finding().explanation.find("`Net/dec.res.convs.1`'s"), std::string::npos) << a.finding().explanation;
}

TEST(Analyzer, LogOfZeroIsDivisionByZeroAndNegativeLogIsInvalid) {
  {
    Analyzer a;
    a.on_step_begin(1);
    a.on_check(check(1, Phase::Forward, "Net/mel", DType::F32, 0, 0, 4));
    auto in = check(1, Phase::Forward, "Net/mel", DType::F32, 0, 0, 0, 1.0, Role::Input, "args[0]", "aten::log");
    in.stats.zero_count = 4;
    a.on_check(in);
    a.on_check(check(1, Phase::Forward, "Net/mel", DType::F32, 0, 0, 4, 1.0, Role::Replay, "out", "aten::log"));
    EXPECT_EQ(a.finding().kind, FaultKind::DivisionByZero);
    EXPECT_EQ(a.finding().op, "aten::log");
  }
  {
    Analyzer a;
    a.on_step_begin(1);
    a.on_check(check(1, Phase::Forward, "Net/mel", DType::F32, 2));
    a.on_check(check(1, Phase::Forward, "Net/mel", DType::F32, 0, 0, 0, 1.0, Role::Input, "args[0]", "aten::sqrt"));
    a.on_check(check(1, Phase::Forward, "Net/mel", DType::F32, 2, 0, 0, 1.0, Role::Replay, "out", "aten::sqrt"));
    EXPECT_EQ(a.finding().kind, FaultKind::InvalidOp);
  }
}

TEST(Analyzer, DivisionByZeroLengthNamesTheDivisor) {
  Analyzer a;
  a.on_step_begin(5);
  a.on_check(check(5, Phase::Forward, "Net/pool", DType::F32, 8, 0, 0, 0.0, Role::Output, "output[0]", "aten::div"));
  a.on_check(check(5, Phase::Forward, "Net/pool", DType::F32, 0, 0, 0, 3.0, Role::Input, "args[0]", "aten::div"));
  auto divisor = check(5, Phase::Forward, "Net/pool", DType::F32, 0, 0, 0, 7.0, Role::Input, "args[1]", "aten::div");
  divisor.stats.zero_count = 1;
  a.on_check(divisor);
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::DivisionByZero);
  EXPECT_NE(f.explanation.find("args[1]"), std::string::npos);
}

TEST(Analyzer, InputsAlreadyNonFiniteArePropagated) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_check(check(1, Phase::Forward, "Net/inner.fc", DType::F32, 2));
  a.on_check(check(1, Phase::Forward, "Net/inner.fc", DType::F32, 1, 0, 0, 1.0, Role::Input, "args[0]"));
  EXPECT_EQ(a.finding().kind, FaultKind::Propagated);
}

TEST(Analyzer, HeadroomWarningComesBeforeTheOverflow) {
  Analyzer a(AnalyzerOptions{20});
  bool warned_before_fault = false;
  double m = 1000.0;
  for (int s = 1; s <= 12; ++s, m *= 1.6) {
    a.on_step_begin(s);
    auto out = a.on_check(finite(s, Phase::Forward, "Net/dec", DType::F16, std::min(m, 65504.0)));
    if (out.warning) {
      warned_before_fault = true;
      EXPECT_EQ(out.warning->module_path, "Net/dec");
      EXPECT_GT(out.warning->binades_left, 0.0);
      break;
    }
  }
  EXPECT_TRUE(warned_before_fault);
  EXPECT_FALSE(a.origin_found());
  EXPECT_EQ(a.build_report().warnings.size(), 1u);
}

TEST(Analyzer, NoWarningForSteadyMagnitudes) {
  Analyzer a;
  for (int s = 1; s <= 30; ++s) {
    a.on_step_begin(s);
    auto out = a.on_check(finite(s, Phase::Forward, "Net/dec", DType::F16, 100.0 + (s % 3)));
    EXPECT_FALSE(out.warning.has_value());
  }
}

TEST(Analyzer, AdviceUsesConfigLearningRateAndLastCheckpoint) {
  Analyzer a;
  a.on_event(event(0, NT_EVENT_CONFIG, "configs/s2.json",
                   R"({"fp16_key": "train.fp16_run", "fp16": true, "lr_key": "train.learning_rate", "learning_rate": 0.0001})"));
  a.on_step_begin(1);
  a.on_event(event(1, NT_EVENT_CHECKPOINT, "logs/G_1.pth", R"({"tensors": 4, "nonfinite_tensors": 0})"));
  a.on_event(optimizer_step(1, false, 1e-4));
  a.on_step_begin(2);
  a.on_check(check(2, Phase::Forward, "SynthesizerTrn/dec.ups.1", DType::F16, 0, 1, 0));
  a.on_event(event(2, NT_EVENT_CHECKPOINT, "logs/G_2.pth", R"({"tensors": 4, "nonfinite_tensors": 3})"));
  const Report r = a.build_report();
  EXPECT_EQ(r.last_checkpoint_before_fault, "logs/G_1.pth");
  bool cfg = false, resume = false;
  for (auto& s : r.finding.recommendation.actions) {
    cfg |= s.find("set `train.fp16_run` to `false` in `configs/s2.json`") != std::string::npos;
    resume |= s.find("logs/G_1.pth") != std::string::npos;
  }
  EXPECT_TRUE(cfg);
  EXPECT_TRUE(resume);
}

TEST(Analyzer, ConfigAdviceNamesTheKeysTheFrontendFoundAndNoOthers) {
  // The core knows no trainer's key names: another trainer's keys are quoted as given, and a
  // config without an fp16 key gets no config edit.
  for (const bool with_key : {true, false}) {
    Analyzer a;
    a.on_event(event(0, NT_EVENT_CONFIG, "conf/hifigan.json",
                     with_key ? R"({"fp16_key": "fp16", "fp16": true, "lr_key": "optim.lr", "learning_rate": 0.0002})"
                              : R"({"fp16": true, "learning_rate": 0.0002})"));
    a.on_step_begin(1);
    a.on_check(check(1, Phase::Forward, "Gen/ups.1", DType::F16, 0, 1, 0));
    std::string all;
    for (auto& s : a.build_report().finding.recommendation.actions) all += s + "\n";
    EXPECT_EQ(all.find("fp16_run"), std::string::npos) << all;
    EXPECT_EQ(all.find("set `fp16` to `false` in `conf/hifigan.json`") != std::string::npos, with_key) << all;
  }
}

TEST(Analyzer, DivergenceAdviceGivesTheLoweredLearningRate) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_event(optimizer_step(1, false, 0.5));
  a.on_check(check(1, Phase::OptimizerParam, "Net/fc", DType::F32, 1, 0, 0, 1.0, Role::Output, "Net/fc.weight"));
  const Finding f = a.finding();
  ASSERT_FALSE(f.recommendation.actions.empty());
  EXPECT_NE(f.recommendation.actions[0].find("0.05"), std::string::npos) << f.recommendation.actions[0];
}

// A blow-up within one step: no history of growth, but the update before it moved the weights
// far more than normal. Divergence when the ratio is far above normal, and only then.
Report one_step_blowup(double ratio, bool with_config) {
  Analyzer a;
  if (with_config)
    a.on_event(event(0, NT_EVENT_CONFIG, "configs/s2.json",
                     R"({"lr_key": "train.learning_rate", "learning_rate": 0.05, "default_learning_rate": 0.0001})"));
  a.on_step_begin(1);
  a.on_check(finite(1, Phase::Forward, "Net/head", DType::F32));
  ScalarRecord s;
  s.step = 1;
  s.name = "update_ratio";
  s.value = ratio;
  a.on_scalar(s);
  a.on_event(optimizer_step(1, false, 0.0499938));
  a.on_step_begin(2);
  a.on_check(check(2, Phase::Forward, "Net/head", DType::F32, 0, 5, 0));
  return a.build_report();
}

TEST(Analyzer, AOneStepBlowUpAfterAnUpdateFarAboveNormalIsDivergence) {
  const Report r = one_step_blowup(345.0, true);
  EXPECT_EQ(r.finding.kind, FaultKind::Divergence);
  EXPECT_NE(r.finding.explanation.find("the optimizer update at step 1 changed the weights by 345x their norm"),
            std::string::npos) << r.finding.explanation;
  ASSERT_FALSE(r.finding.recommendation.actions.empty());
  const std::string& lr = r.finding.recommendation.actions[0];
  // 0.0499938 x 1e-3 / 345 = 1.45e-7, rounded down to one digit.
  EXPECT_NE(lr.find("Lower the learning rate to about 1e-07"), std::string::npos) << lr;
  EXPECT_NE(lr.find("the config sets 0.05 (`train.learning_rate` in `configs/s2.json`)"), std::string::npos) << lr;
  EXPECT_NE(lr.find("0.049994 was in use at the fault (after the scheduler)"), std::string::npos) << lr;
  EXPECT_NE(lr.find("the script's default is 0.0001"), std::string::npos) << lr;
  EXPECT_NE(lr.find("clip_grad_norm_"), std::string::npos) << lr;
}

TEST(Analyzer, AnOverflowAfterAUsualUpdateStaysAnOverflow) {
  const Report r = one_step_blowup(2e-3, false);
  EXPECT_EQ(r.finding.kind, FaultKind::Overflow);
  EXPECT_EQ(r.finding.explanation.find("update"), std::string::npos) << r.finding.explanation;
}

TEST(Analyzer, RecurrencesAndCheckLevelChangesAreReported) {
  Analyzer a;
  a.on_step_begin(4);
  a.on_check(check(4, Phase::Loss, "", DType::F32, 0, 1, 0));  // a cheap check on a sampled-out step
  a.on_event(event(4, NT_EVENT_CHECK_MODE, "full_checks", "{\"level\": \"module\", \"reason\": \"loss\"}"));
  a.on_step_begin(5);
  a.on_check(check(5, Phase::Forward, "Net/enc_q", DType::F16, 0, 2, 0, 1.0, Role::Output, "output[0]", "aten::exp"));
  a.on_check(check(5, Phase::Loss, "", DType::F32, 0, 1, 0));
  const Report r = a.build_report();
  EXPECT_EQ(r.finding.step(), 4);  // first seen at 4, located at the recurrence at 5
  EXPECT_EQ(r.finding.origin.step, 5);
  bool pinned = false, mode = false;
  for (auto& n : r.notes) {
    pinned |= n == "At step 5 the first non-finite value was `aten::exp`'s output[0] inside `Net/enc_q` (forward; "
                   "pinned by op-level checks).";
    mode |= n == "From step 4, module outputs were checked on every step, because of a loss.";
  }
  EXPECT_TRUE(pinned);
  EXPECT_TRUE(mode);
}

// A loss on a step whose module checks were sampled out: the frontend switches full checks on
// (NT_EVENT_CHECK_MODE with a reason) right after it.
void sampled_out_nan_loss(Analyzer& a, int64_t step) {
  a.on_step_begin(step);
  a.on_check(check(step, Phase::Loss, "", DType::F32, 1, 0, 0, 0.0, Role::Output, "loss"));
  a.on_event(event(step, NT_EVENT_CHECK_MODE, "full_checks", R"({"level": "module", "reason": "non-finite loss"})"));
}

TEST(Analyzer, SampledOutLossIsLocatedInTheModuleWhereItRecurs) {
  Analyzer a;
  a.on_step_begin(3);
  a.on_check(finite(3, Phase::Forward, "Vae/enc_q"));
  sampled_out_nan_loss(a, 4);
  a.on_event(optimizer_step(4, /*skipped=*/true));  // GradScaler skipped: the weights are unchanged
  EXPECT_EQ(a.finding().kind, FaultKind::NotLocated);
  a.on_step_begin(5);
  const CheckOutcome out = a.on_check(check(5, Phase::Forward, "Vae/enc_q", DType::F16, 0, 3, 2, 100.0));
  EXPECT_TRUE(out.origin_located);
  EXPECT_FALSE(out.new_origin);
  a.on_check(check(5, Phase::Forward, "Vae/enc_q", DType::F16, 0, 0, 0, 8.0, Role::Input, "args[0]"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::Fp16Overflow);
  EXPECT_EQ(f.step(), 4);
  EXPECT_EQ(f.origin.step, 5);
  EXPECT_EQ(f.located_step, 5);
  EXPECT_EQ(f.origin.site.module_path, "Vae/enc_q");
  ASSERT_TRUE(f.first_seen.has_value());
  EXPECT_EQ(f.first_seen->site.phase, Phase::Loss);
  ASSERT_EQ(f.inputs.size(), 1u);  // the recurrence's evidence
  EXPECT_NE(f.explanation.find("recurred at step 5"), std::string::npos) << f.explanation;
}

// The frontend's step replay: the sampled-out step's root forwards re-run at once, before
// backward, with every module output checked.
EventRecord step_replay_begin(int64_t step) {
  return event(step, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module": "", "step_replay": true})");
}
EventRecord step_replay_end(int64_t step, const std::string& status) {
  return event(step, NT_EVENT_REPLAY_END, "replay",
               R"({"module": "", "op": null, "step_replay": true, "status": ")" + status + R"("})");
}

TEST(Analyzer, StepReplayLocatesASampledOutLossAtItsOwnStep) {
  Analyzer a;
  sampled_out_nan_loss(a, 4);
  a.on_event(step_replay_begin(4));
  EXPECT_FALSE(a.on_check(finite(4, Phase::Forward, "Vae/pre")).origin_located);
  const CheckOutcome out = a.on_check(check(4, Phase::Forward, "Vae/enc_q", DType::F16, 0, 3, 2, 100.0));
  EXPECT_TRUE(out.origin_located);
  a.on_check(check(4, Phase::Forward, "Vae/enc_q", DType::F16, 0, 0, 0, 8.0, Role::Input, "args[0]"));
  // A later module of the re-run, non-finite from enc_q's output, moves nothing.
  EXPECT_FALSE(a.on_check(check(4, Phase::Forward, "Vae/dec", DType::F16, 7)).origin_located);
  a.on_event(step_replay_end(4, "reproduced"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::Fp16Overflow);
  EXPECT_EQ(f.step(), 4);
  EXPECT_EQ(f.origin.step, 4);
  EXPECT_EQ(f.located_step, 4);
  EXPECT_EQ(f.origin.site.module_path, "Vae/enc_q");
  ASSERT_TRUE(f.first_seen.has_value());
  EXPECT_EQ(f.first_seen->site.phase, Phase::Loss);
  ASSERT_EQ(f.inputs.size(), 1u);
  EXPECT_NE(f.explanation.find("by re-running that step's forward"), std::string::npos) << f.explanation;
  EXPECT_EQ(f.explanation.find("recurred"), std::string::npos) << f.explanation;
}

TEST(Analyzer, StepReplayReproducedFiniteLeavesTheLossAsTheOrigin) {
  // Every module output of the re-run finite and its outputs equal to the step's: the loss
  // computation made the value; the finding is the loss's, as on a checked step.
  Analyzer a;
  sampled_out_nan_loss(a, 4);
  a.on_event(step_replay_begin(4));
  a.on_check(finite(4, Phase::Forward, "Net/head"));
  EXPECT_EQ(a.finding().kind, FaultKind::NotLocated);
  a.on_event(step_replay_end(4, "reproduced"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::BornInModule);
  EXPECT_EQ(f.origin.site.phase, Phase::Loss);
  EXPECT_FALSE(f.first_seen.has_value());
  EXPECT_NE(f.explanation.find("born in the loss computation"), std::string::npos) << f.explanation;
}

TEST(Analyzer, StepReplayThatDidNotReproduceLeavesItUnlocated) {
  Analyzer a;
  sampled_out_nan_loss(a, 4);
  a.on_event(step_replay_begin(4));
  a.on_check(finite(4, Phase::Forward, "Net/head"));
  a.on_event(step_replay_end(4, "not_reproduced"));
  EXPECT_EQ(a.finding().kind, FaultKind::NotLocated);
  // A module output seen non-finite after the replay window closed locates nothing at step 4.
  EXPECT_FALSE(a.on_check(check(4, Phase::Forward, "Net/head", DType::F16, 3)).origin_located);
  EXPECT_EQ(a.finding().kind, FaultKind::NotLocated);
}

TEST(Analyzer, SampledOutLossIsNotLocatedAfterAnOptimizerUpdate) {
  // The update ran on the non-finite gradients: the next steps' weights may carry the value,
  // so a module that is non-finite there says nothing about where it was born.
  Analyzer a;
  sampled_out_nan_loss(a, 4);
  a.on_event(optimizer_step(4, /*skipped=*/false));
  a.on_step_begin(5);
  EXPECT_FALSE(a.on_check(check(5, Phase::Forward, "Vae/enc_q", DType::F16, 4)).origin_located);
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::NotLocated);
  EXPECT_EQ(f.step(), 4);
  EXPECT_TRUE(f.op.empty());
  EXPECT_NE(f.explanation.find("optimizer update"), std::string::npos) << f.explanation;
  EXPECT_NE(f.recommendation.headline.find("NANTRACE_EVERY=1"), std::string::npos);
}

TEST(Analyzer, LossOnACheckedStepStaysTheLoss) {
  // Module outputs were checked (finite) in the loss's step: the loss computation made it. Its
  // op was not pinned, so which kind of fault is not decided (no guessed "invalid op").
  Analyzer a;
  a.on_step_begin(4);
  a.on_check(finite(4, Phase::Forward, "Net/head"));
  a.on_check(check(4, Phase::Loss, "", DType::F32, 1, 0, 0, 0.0, Role::Output, "loss"));
  a.on_event(event(4, NT_EVENT_CHECK_MODE, "full_checks", R"({"level": "module", "reason": "non-finite loss"})"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::BornInModule);
  EXPECT_NE(f.explanation.find("born in the loss computation"), std::string::npos) << f.explanation;
  EXPECT_EQ(f.recommendation.headline.find("learning rate"), std::string::npos) << f.recommendation.headline;
  EXPECT_FALSE(f.first_seen.has_value());
}

TEST(Analyzer, HalfModuleNanWithoutTheOpIsBornInsideNotGuessedInvalid) {
  Analyzer a;
  a.on_step_begin(2);
  a.on_check(check(2, Phase::Forward, "Gpt/h.0.attn", DType::F16, 12));
  a.on_check(check(2, Phase::Forward, "Gpt/h.0.attn", DType::F16, 0, 0, 0, 3.0, Role::Input, "kwargs.hidden_states"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::BornInModule);
  EXPECT_NE(f.explanation.find("overflow"), std::string::npos);
  EXPECT_NE(f.explanation.find("invalid operation"), std::string::npos);
  EXPECT_NE(f.recommendation.headline.find("overflow or an invalid operation"), std::string::npos)
      << f.recommendation.headline;
}

TEST(Analyzer, OpPinnedAtARecurrenceUpgradesTheFinding) {
  Analyzer a;
  a.on_step_begin(2);
  a.on_check(check(2, Phase::Forward, "Gpt/h.0.attn", DType::F16, 12));
  a.on_check(check(2, Phase::Forward, "Gpt/h.0.attn", DType::F16, 0, 0, 0, 3.0, Role::Input, "kwargs.hidden_states"));
  ASSERT_EQ(a.finding().kind, FaultKind::BornInModule);
  a.on_step_begin(3);
  // Op-level checks inside the culprit: the step's first non-finite value is bmm's Inf.
  a.on_check(check(3, Phase::Forward, "Gpt/h.0.attn", DType::F16, 0, 5, 0, 60000.0, Role::Output, "output", "aten::bmm"));
  a.on_check(check(3, Phase::Forward, "Gpt/h.0.attn", DType::F16, 7, 0, 0, 1.0, Role::Output, "output", "aten::_softmax"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::Fp16Overflow);
  EXPECT_EQ(f.op, "aten::bmm");
  EXPECT_EQ(f.op_pinned_step, 3);
  EXPECT_EQ(f.step(), 2);
  EXPECT_NE(f.explanation.find("recurred at step 3"), std::string::npos) << f.explanation;
}

TEST(Analyzer, OpLevelValuesAfterTheStepsFirstAreNotTheOp) {
  // Only a step's first non-finite value can pin the op: later ones may carry it.
  Analyzer a;
  a.on_step_begin(2);
  a.on_check(check(2, Phase::Forward, "Gpt/h.0.attn", DType::F16, 12));
  a.on_step_begin(3);
  a.on_check(check(3, Phase::Forward, "Gpt/wte", DType::F16, 3));
  a.on_check(check(3, Phase::Forward, "Gpt/h.0.attn", DType::F16, 0, 5, 0, 1.0, Role::Output, "output", "aten::view"));
  EXPECT_EQ(a.finding().kind, FaultKind::BornInModule);
  EXPECT_TRUE(a.finding().op.empty());
}

TEST(Analyzer, NonFiniteParametersArePropagatedNotBornInTheForward) {
  Analyzer a;
  a.on_step_begin(6);
  a.on_check(check(6, Phase::Forward, "Net/fc", DType::F32, 16));
  a.on_check(check(6, Phase::Forward, "Net/fc", DType::F32, 0, 0, 0, 1.0, Role::Input, "args[0]"));
  a.on_check(check(6, Phase::Forward, "Net/fc", DType::F32, 16, 0, 0, 0.0, Role::Param, "weight"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::Propagated);
  EXPECT_NE(f.explanation.find("parameters"), std::string::npos);
}

ScalarRecord loss_at(int64_t step, double v) {
  ScalarRecord s;
  s.step = step;
  s.name = "loss";
  s.value = v;
  return s;
}

TEST(Analyzer, ALossThatJumpsAndStaysIsABlowUpNamingTheModuleThatJumped) {
  Analyzer a;
  for (int64_t s = 1; s <= 10; ++s) {
    a.on_step_begin(s);
    a.on_check(finite(s, Phase::Forward, "Net/fc1", DType::F32, 2.0));
    a.on_check(finite(s, Phase::Forward, "Net/fc2", DType::F32, s >= 6 ? 3e4 : 3.0));
    std::optional<LossBlowup> b = a.on_scalar(loss_at(s, s >= 6 ? 2e6 : 0.02));
    EXPECT_EQ(b.has_value(), s == 8) << s;  // begins at 6, confirmed after 3 steps above 100x
  }
  const Report r = a.build_report();
  ASSERT_TRUE(r.blowup);
  EXPECT_EQ(r.blowup->begin_step, 6);
  EXPECT_EQ(r.blowup->module, "Net/fc2");
  EXPECT_NEAR(r.blowup->module_jump, 1e4, 1.0);
  EXPECT_FALSE(r.finding.found);
  EXPECT_NE(r.finding.recommendation.headline.find("blew up"), std::string::npos) << r.finding.recommendation.headline;
}

TEST(Analyzer, ASpikeThatFallsBackIsNoBlowUp) {
  Analyzer a;
  const double losses[] = {1.0, 1.1, 0.9, 500.0, 700.0, 1.0, 0.9, 1.0};
  for (int64_t s = 1; s <= 8; ++s) EXPECT_FALSE(a.on_scalar(loss_at(s, losses[s - 1])));
  EXPECT_FALSE(a.build_report().blowup);
}

TEST(Analyzer, SkipsAreRecoveredOnlyWhenTheLossComesBack) {
  for (const bool comes_back : {true, false}) {
    Analyzer a;
    for (int64_t s = 1; s <= 8; ++s) {
      a.on_step_begin(s);
      if (s == 4) {
        a.on_check(check(4, Phase::Backward, "Net/fc", DType::F16, 0, 3));
        a.on_event(scaler_update(4, 65536, 32768, true));
      }
      // After the skip: back to 1, or 30x above (not a blow-up: under 100x).
      a.on_scalar(loss_at(s, s <= 3 ? 1.0 : (comes_back ? 1.2 : 30.0)));
    }
    const Report r = a.build_report();
    ASSERT_EQ(r.benign_skips.size(), 1u);
    ASSERT_TRUE(r.skips_recovered.has_value());
    EXPECT_EQ(*r.skips_recovered, comes_back);
    const std::string& h = r.finding.recommendation.headline;
    EXPECT_EQ(h.find("came back to its level") != std::string::npos, comes_back) << h;
  }
}

TEST(Analyzer, StepsAreAlsoGivenInTheScriptsOwnCounter) {
  // GPT-SoVITS logs a 0-based global_step: nantrace's step 4 is its global_step 3.
  Analyzer a;
  a.on_event(event(0, NT_EVENT_CONFIG, "/x/configs/s2.json",
                   R"({"trainer":"GPT-SoVITS s2_train.py","step_counter":"global_step","step_counter_offset":-1})"));
  a.on_step_begin(4);
  a.on_check(check(4, Phase::Input, "Net", DType::F32, 1, 0, 0, 1.0, Role::Output, "args[1]"));
  const Report r = a.build_report();
  EXPECT_EQ(r.step_counter, "global_step");
  EXPECT_EQ(r.step_counter_offset, -1);
}

// A gradient first seen non-finite at one module's output is the consumer's doing: the
// frontend follows the graph and names it (backward_origin); the finding moves there.
TEST(Analyzer, GradientMadeInABackwardIsTheConsumersNotTheReceivers) {
  Analyzer a;
  a.on_step_begin(3);
  a.on_check(finite(3, Phase::Forward, "Net/proj"));
  a.on_check(finite(3, Phase::Forward, "Net/norm"));
  a.on_check(finite(3, Phase::Loss, "", DType::F32));
  a.on_check(finite(3, Phase::Backward, "Net/norm", DType::F32, 1.0));
  a.on_check(check(3, Phase::Backward, "Net/proj", DType::F32, 2, 5, 0, 0.07, Role::Output, "grad_output"));
  a.on_event(event(3, NT_EVENT_BACKWARD_ORIGIN, "backward_origin",
                   R"({"module":"Net/norm","module_type":"RowNorm","node":"NormalizeBackward","seen_at":"Net/proj","consumers":["Net/norm"]})"));
  auto out = a.on_check(check(3, Phase::OptimizerGrad, "Net/proj", DType::F32, 8, 0, 0, 1.0, Role::Output, "weight"));
  EXPECT_TRUE(out.new_origin);
  const Finding f = a.finding();
  ASSERT_TRUE(f.found);
  EXPECT_EQ(f.kind, FaultKind::BornInBackward);
  EXPECT_EQ(f.origin.site.phase, Phase::Backward);
  EXPECT_EQ(f.origin.site.module_path, "Net/norm");
  EXPECT_EQ(f.origin.site.module_type, "RowNorm");
  EXPECT_EQ(f.origin.site.tensor_name, "Net/proj's grad_output");
  ASSERT_TRUE(f.backward.has_value());
  EXPECT_EQ(f.backward->seen_at, "Net/proj");
  EXPECT_EQ(f.backward->node, "NormalizeBackward");
  EXPECT_NE(f.explanation.find("made by the backward of `Net/norm` (`NormalizeBackward`)"), std::string::npos);
  EXPECT_NE(f.recommendation.headline.find("Guard the backward of `Net/norm`"), std::string::npos);
  for (const auto& act : f.recommendation.actions) EXPECT_EQ(act.find("learning rate"), std::string::npos) << act;
}

TEST(Analyzer, ABackwardOriginForAnotherSiteOrStepIsIgnored) {
  Analyzer a;
  a.on_step_begin(3);
  a.on_check(check(3, Phase::Backward, "Net/proj", DType::F32, 2, 0, 0, 1.0, Role::Output, "grad_output"));
  a.on_event(event(3, NT_EVENT_BACKWARD_ORIGIN, "backward_origin", R"({"module":"Net/x","seen_at":"Net/other"})"));
  a.on_event(event(2, NT_EVENT_BACKWARD_ORIGIN, "backward_origin", R"({"module":"Net/y","seen_at":"Net/proj"})"));
  a.on_step_begin(4);
  const Finding f = a.finding();
  ASSERT_TRUE(f.found);
  EXPECT_EQ(f.origin.site.module_path, "Net/proj");
  EXPECT_FALSE(f.backward.has_value());
  // Not followed: the kind is still decided from what was seen, and says it was not followed.
  EXPECT_EQ(f.kind, FaultKind::BornInBackward);
  EXPECT_NE(f.explanation.find("not followed"), std::string::npos);
}

TEST(Analyzer, Fp16GradientOverflowInABackwardSkippedByTheScalerStaysBenign) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_check(check(1, Phase::Backward, "Net/fc1", DType::F16, 0, 4, 0, 1.0, Role::Output, "grad_output"));
  a.on_event(event(1, NT_EVENT_BACKWARD_ORIGIN, "backward_origin", R"({"module":"Net/fc2","seen_at":"Net/fc1"})"));
  a.on_event(optimizer_step(1, /*skipped=*/true));
  a.on_event(scaler_update(1, 65536, 32768, true));
  a.on_step_begin(2);
  a.on_check(check(2, Phase::Backward, "Net/fc1", DType::F16, 0, 4, 0, 1.0, Role::Output, "grad_output"));
  a.on_event(event(2, NT_EVENT_BACKWARD_ORIGIN, "backward_origin", R"({"module":"Net/fc2","seen_at":"Net/fc1"})"));
  a.on_step_begin(3);  // no skip at step 2: a fault, in the backward of fc2
  const Report r = a.build_report();
  ASSERT_EQ(r.benign_skips.size(), 1u);
  EXPECT_EQ(r.benign_skips[0].first_site, "Net/fc1 grad_output");
  ASSERT_TRUE(r.finding.found);
  EXPECT_EQ(r.finding.origin.step, 2);
  EXPECT_EQ(r.finding.kind, FaultKind::Fp16Overflow);
  EXPECT_EQ(r.finding.origin.site.module_path, "Net/fc2");
  EXPECT_NE(r.finding.recommendation.headline.find("Scale the loss"), std::string::npos);
}

// An evaluation forward's NaN is its own finding: never the training origin, never evidence.
TEST(Analyzer, ANanSeenOnlyInEvaluationIsNotTheTrainingFault) {
  Analyzer a;
  a.on_step_begin(4);
  a.on_check(finite(4, Phase::Forward, "Net/pool", DType::F32));
  a.on_check(finite(4, Phase::Evaluation, "Net", DType::F32));  // the evaluation batch, finite
  auto out = a.on_check(check(4, Phase::Evaluation, "Net/pool", DType::F32, 16));
  EXPECT_TRUE(out.new_evaluation);
  EXPECT_FALSE(out.new_origin);
  out = a.on_check(check(4, Phase::Evaluation, "Net/head", DType::F32, 3));
  EXPECT_FALSE(out.new_evaluation);  // the first only
  a.finish();
  Report r = a.build_report();
  EXPECT_FALSE(r.finding.found);
  ASSERT_TRUE(r.evaluation.has_value());
  EXPECT_EQ(r.evaluation->site.module_path, "Net/pool");
  EXPECT_EQ(r.evaluation->step, 4);
  EXPECT_EQ(r.evaluation_nonfinite_checks, 2);
  EXPECT_NE(r.finding.recommendation.headline.find("only in evaluation (after training step 4)"), std::string::npos);

  // A training fault later is the finding; the evaluation stays beside it.
  Analyzer b;
  b.on_step_begin(4);
  b.on_check(check(4, Phase::Evaluation, "Net", DType::F32, 1, 0, 0, 1.0, Role::Input, "args[0]"));
  b.on_step_begin(5);
  b.on_check(check(5, Phase::Forward, "Net/enc", DType::F16, 0, 2));
  r = b.build_report();
  ASSERT_TRUE(r.finding.found);
  EXPECT_EQ(r.finding.origin.step, 5);
  EXPECT_EQ(r.finding.origin.site.module_path, "Net/enc");
  ASSERT_TRUE(r.evaluation.has_value());
  EXPECT_EQ(r.evaluation->site.role, Role::Input);
}

TEST(Analyzer, SeriesAreBounded) {
  Analyzer a;
  for (int64_t s = 1; s <= int64_t(Analyzer::kMaxSeriesPoints) + 50; ++s) {
    ScalarRecord r;
    r.step = s;
    r.name = "loss";
    r.value = 1.0;
    a.on_scalar(r);
  }
  EXPECT_EQ(a.build_report().series.at("loss").size(), Analyzer::kMaxSeriesPoints);
}


// ---- ops pinned from the autograd graph of a non-finite loss (nothing re-run) ----------------

namespace {
// A loss computed with plain functions is the first non-finite value: the frontend reads its
// op from the autograd graph and hands it over in a replay window marked "graph" (module "").
Analyzer loss_with_graph_window(const std::string& op, const CheckRecord& input, const CheckRecord& output,
                                const std::string& end_detail) {
  Analyzer a;
  a.on_step_begin(4);
  a.on_check(finite(4, Phase::Forward, "Net/head", DType::F32));
  a.on_check(check(4, Phase::Loss, "", DType::F32, 0, 1, 0, 0.0, Role::Output, "loss"));
  a.on_event(event(4, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module":"","graph":true,"step":4})"));
  a.on_check(check(4, Phase::Loss, "", DType::F32, 0, 0, 0, 0.4, Role::Input, "self", op));
  a.on_check(input);
  a.on_check(output);
  a.on_event(event(4, NT_EVENT_REPLAY_END, "replay", end_detail));
  return a;
}
}  // namespace

TEST(Analyzer, AnOpPinnedInTheGraphOfTheLossNamesItAndItsDivisor) {
  CheckRecord divisor = check(4, Phase::Loss, "", DType::F32, 0, 0, 0, 0.0, Role::Input, "other", "aten::div");
  divisor.stats.zero_count = 1;
  const Analyzer a = loss_with_graph_window(
      "aten::div", divisor, check(4, Phase::Loss, "", DType::F32, 0, 1, 0, 0.0, Role::Replay, "output", "aten::div"),
      R"({"module":"","op":"aten::div","graph":true,"node":"DivBackward0","status":"pinned","reason":""})");
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::DivisionByZero);
  EXPECT_EQ(f.op, "aten::div");
  EXPECT_EQ(f.origin.site.phase, Phase::Loss);
  EXPECT_NE(f.explanation.find("autograd graph"), std::string::npos) << f.explanation;
  EXPECT_NE(f.explanation.find("DivBackward0"), std::string::npos) << f.explanation;
  EXPECT_EQ(f.explanation.find("re-running"), std::string::npos) << f.explanation;
  EXPECT_NE(f.recommendation.headline.find("loss computation"), std::string::npos) << f.recommendation.headline;
}

TEST(Analyzer, AValueThatEnteredTheLossFromOutsideTheGraphIsPropagatedNotAnOverflow) {
  const Analyzer a = loss_with_graph_window(
      "aten::mul", check(4, Phase::Loss, "", DType::F32, 0, 1, 0, 0.0, Role::Input, "other", "aten::mul"),
      check(4, Phase::Loss, "", DType::F32, 0, 1, 0, 0.0, Role::Replay, "output", "aten::mul"),
      R"({"module":"","op":"aten::mul","graph":true,"node":"MulBackward0","status":"untracked",
          "reason":"its input `other` was already non-finite and autograd kept no record of where it was made"})");
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::Propagated);
  EXPECT_NE(f.explanation.find("`other`"), std::string::npos) << f.explanation;
  EXPECT_EQ(f.explanation.find("re-running"), std::string::npos) << f.explanation;
}

TEST(Analyzer, ABatchTensorReachedThroughTheGraphIsBadInput) {
  const Analyzer a = loss_with_graph_window(
      "aten::mse_loss", check(4, Phase::Loss, "", DType::F32, 3, 0, 0, 1.0, Role::Input, "target", "aten::mse_loss"),
      check(4, Phase::Loss, "", DType::F32, 1, 0, 0, 0.0, Role::Replay, "output", "aten::mse_loss"),
      R"({"module":"","op":"aten::mse_loss","graph":true,"node":"MseLossBackward0","status":"data",
          "reason":"its input `target` is a tensor of the batch the DataLoader returned"})");
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::BadInput);
  EXPECT_NE(f.explanation.find("MseLossBackward0"), std::string::npos) << f.explanation;
}

TEST(Analyzer, AGraphThatCouldNotPinTheOpSaysWhyAndGuessesNoKind) {
  Analyzer a;
  a.on_step_begin(4);
  a.on_check(finite(4, Phase::Forward, "Net/head", DType::F32));
  a.on_check(check(4, Phase::Loss, "", DType::F32, 1, 0, 0, 0.0, Role::Output, "loss"));
  a.on_event(event(4, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module":"","graph":true,"step":4})"));
  a.on_event(event(4, NT_EVENT_REPLAY_END, "replay",
                   R"({"module":"","op":null,"graph":true,"node":"SqrtBackward0","status":"undetermined",
                       "reason":"autograd kept no value of its input `self`"})"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::BornInModule);
  EXPECT_TRUE(f.op.empty());
  EXPECT_NE(f.explanation.find("did not pin the op: autograd kept no value"), std::string::npos) << f.explanation;
}

TEST(Analyzer, AGraphWindowForAnotherSiteIsNotEvidence) {
  // A graph window opened for a module that is not the origin's site carries nothing over
  // (once the origin's own evidence has ended, at the next output check).
  Analyzer a;
  a.on_step_begin(4);
  a.on_check(check(4, Phase::Loss, "", DType::F32, 0, 1, 0, 0.0, Role::Output, "loss"));
  a.on_check(finite(4, Phase::Backward, "Net/head", DType::F32));
  a.on_event(event(4, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module":"Net/head","graph":true,"step":4})"));
  a.on_check(check(4, Phase::Forward, "Net/head", DType::F32, 0, 1, 0, 0.0, Role::Replay, "output", "aten::exp"));
  a.on_event(event(4, NT_EVENT_REPLAY_END, "replay", R"({"module":"Net/head","op":"aten::exp","graph":true})"));
  EXPECT_TRUE(a.finding().op.empty());
}
TEST(Analyzer, ABatchTheScriptComputedIsPinnedInItsGraphNotBadData) {
  // A batch entering the second of two models holds Inf; its graph shows exp overflowing in the
  // script's own code between them: not bad data, the op's kind, and advice about that code.
  Analyzer a;
  a.on_step_begin(3);
  a.on_check(finite(3, Phase::Forward, "Encoder", DType::F32));
  a.on_check(check(3, Phase::Input, "Decoder", DType::F32, 0, 4, 0, 1.0, Role::Output, "z"));
  a.on_event(event(3, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module":"Decoder","graph":true,"step":3})"));
  a.on_check(check(3, Phase::Input, "Decoder", DType::F32, 0, 0, 0, 160.0, Role::Input, "self", "aten::exp"));
  a.on_check(check(3, Phase::Input, "Decoder", DType::F32, 0, 4, 0, 1.0, Role::Replay, "output", "aten::exp"));
  a.on_event(event(3, NT_EVENT_REPLAY_END, "replay",
                   R"({"module":"Decoder","op":"aten::exp","graph":true,"node":"ExpBackward0","status":"pinned"})"));
  const Finding f = a.finding();
  EXPECT_EQ(f.kind, FaultKind::Overflow);
  EXPECT_EQ(f.op, "aten::exp");
  EXPECT_NE(f.explanation.find("not data"), std::string::npos) << f.explanation;
  EXPECT_NE(f.recommendation.headline.find("the code that computes `z` for `Decoder`"), std::string::npos)
      << f.recommendation.headline;
}

TEST(Analyzer, ABatchWithoutHistoryStaysBadData) {
  Analyzer a;
  a.on_step_begin(3);
  a.on_check(check(3, Phase::Input, "Decoder", DType::F32, 2, 0, 0, 1.0, Role::Output, "z"));
  a.on_event(event(3, NT_EVENT_REPLAY_BEGIN, "replay_start", R"({"module":"Decoder","graph":true,"step":3})"));
  a.on_event(event(3, NT_EVENT_REPLAY_END, "replay",
                   R"({"module":"Decoder","op":null,"graph":true,"status":"no_graph","reason":"no history"})"));
  EXPECT_EQ(a.finding().kind, FaultKind::BadInput);
}

}  // namespace
}  // namespace nantrace
