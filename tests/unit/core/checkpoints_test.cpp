// The checkpoints of a run judged against the fault: the last clean one, the poisoned ones, and
// a poisoned file heading a family the script resumes from.
#include <gtest/gtest.h>

#include "analysis_fixtures.h"
#include "core/analyzer.h"
#include "core/checkpoints.h"
#include "nantrace/nantrace.h"

namespace nantrace {
namespace {

using testing::check;
using testing::event;

events::Checkpoint save(const std::string& path, int64_t tensors, int64_t bad, const std::string& pattern = "",
                        bool heads = false, bool resumed = false) {
  events::Checkpoint c;
  c.path = path;
  if (tensors >= 0) c.tensors = tensors;
  if (bad >= 0) c.nonfinite_tensors = bad;
  c.pattern = pattern;
  c.heads_pattern = heads;
  c.resumed_from_pattern = resumed;
  return c;
}

TEST(CheckpointLog, TheLastCleanBeforeTheFaultIsKeptAndLaterOnesArePoisoned) {
  CheckpointLog log;
  log.on_save(save("G_1.pth", 10, 0), 1, false);
  log.on_save(save("G_2.pth", 10, 0), 2, false);
  log.on_save(save("G_3.pth", 10, 7), 3, true);
  log.on_save(save("G_4.pth", -1, -1), 4, true);  // not counted, after the fault
  ASSERT_TRUE(log.last_clean_before_fault());
  EXPECT_EQ(log.last_clean_before_fault()->path, "G_2.pth");
  EXPECT_FALSE(log.saves()[1].poisoned());
  EXPECT_TRUE(log.saves()[2].poisoned());
  EXPECT_TRUE(log.saves()[3].poisoned());
  const auto first = log.take_first_poisoned();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->path, "G_3.pth");
  EXPECT_FALSE(log.take_first_poisoned());  // once
}

TEST(CheckpointLog, AFiniteSaveAfterTheFaultIsNotCalledCleanOrPoisoned) {
  CheckpointLog log;
  log.on_save(save("a.pt", 3, 0), 1, false);
  log.on_save(save("b.pt", 3, 0), 5, true);
  EXPECT_EQ(log.last_clean_before_fault()->path, "a.pt");
  EXPECT_FALSE(log.saves()[1].poisoned());
  const std::string v = checkpoint_verdict(log.saves()[1], log.last_clean_before_fault());
  EXPECT_NE(v.find("after the fault"), std::string::npos) << v;
  EXPECT_EQ(checkpoint_verdict(log.saves()[0], log.last_clean_before_fault()), "clean: resume from this one");
}

TEST(CheckpointLog, ASaveHoldingNanBeforeTheFaultIsNotClean) {
  CheckpointLog log;
  log.on_save(save("a.pt", 3, 1), 1, false);
  EXPECT_FALSE(log.last_clean_before_fault());
  EXPECT_TRUE(log.saves()[0].poisoned());
}

TEST(CheckpointLog, BoundedButTheLastCleanSurvives) {
  CheckpointLog log;
  log.on_save(save("clean.pt", 1, 0), 1, false);
  for (size_t i = 0; i < CheckpointLog::kMaxKept + 5; ++i) log.on_save(save("bad.pt", 1, 1), 2, true);
  EXPECT_EQ(log.saves().size(), CheckpointLog::kMaxKept);
  EXPECT_EQ(log.dropped(), 6);
  EXPECT_EQ(log.last_clean_before_fault()->path, "clean.pt");
}

TEST(CheckpointLog, APoisonedHeadIsOnlyTheNewestOfItsFamily) {
  std::vector<CheckpointSave> saves(3);
  saves[0].path = "G_5.pth", saves[0].pattern = "G_*.pth", saves[0].heads_pattern = true, saves[0].nonfinite_tensors = 2;
  saves[1].path = "D_5.pth", saves[1].pattern = "D_*.pth", saves[1].heads_pattern = true, saves[1].nonfinite_tensors = 2;
  saves[2].path = "G_6.pth", saves[2].pattern = "G_*.pth", saves[2].heads_pattern = true, saves[2].nonfinite_tensors = 0;
  const auto heads = poisoned_heads(saves);
  ASSERT_EQ(heads.size(), 1u);  // G_6 (finite) took the head of G_*.pth since
  EXPECT_EQ(heads[0].path, "D_5.pth");
}

TEST(Analyzer, CheckpointsAreJudgedAgainstTheFaultAndTheAdviceSaysWhichToResumeFrom) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_event(event(1, NT_EVENT_CHECKPOINT, "logs/G_1.pth",
                   R"({"tensors": 8, "nonfinite_tensors": 0, "pattern": "logs/G_*.pth", "heads_pattern": true})"));
  a.on_step_begin(2);
  a.on_check(check(2, Phase::Forward, "Net/dec", DType::F16, 0, 1, 0));
  a.on_event(event(2, NT_EVENT_CHECKPOINT, "logs/G_2.pth",
                   R"({"tensors": 8, "nonfinite_tensors": 6, "nonfinite_names": ["dec.weight"], "pattern": "logs/G_*.pth",
                       "heads_pattern": true, "resumed_from_pattern": true})"));
  const Report r = a.build_report();
  EXPECT_EQ(r.last_checkpoint_before_fault, "logs/G_1.pth");
  ASSERT_EQ(r.checkpoints.size(), 2u);
  EXPECT_EQ(r.checkpoints[1].step, 2);
  EXPECT_TRUE(r.checkpoints[1].after_fault);
  EXPECT_EQ(r.checkpoints[1].nonfinite_names, std::vector<std::string>{"dec.weight"});
  std::string advice;
  for (auto& s : r.finding.recommendation.actions) advice += s + "\n";
  EXPECT_NE(advice.find("Resume from `logs/G_1.pth`"), std::string::npos) << advice;
  EXPECT_NE(advice.find("Do not resume from the 1 poisoned checkpoint(s) saved since (`logs/G_2.pth`)"), std::string::npos)
      << advice;
  EXPECT_NE(advice.find("The newest of `logs/G_*.pth` is now poisoned, and the script resumes from it"), std::string::npos)
      << advice;
}

TEST(Analyzer, TheFirstPoisonedSaveIsAnnouncedOnce) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_check(check(1, Phase::Forward, "Net/dec", DType::F16, 0, 1, 0));
  const auto o1 = a.on_event(event(1, NT_EVENT_CHECKPOINT, "x_1.pt", R"({"tensors": 2, "nonfinite_tensors": 2})"));
  const auto o2 = a.on_event(event(2, NT_EVENT_CHECKPOINT, "x_2.pt", R"({"tensors": 2, "nonfinite_tensors": 2})"));
  ASSERT_TRUE(o1.poisoned_checkpoint);
  EXPECT_EQ(o1.poisoned_checkpoint->path, "x_1.pt");
  EXPECT_FALSE(o2.poisoned_checkpoint);
}

TEST(Analyzer, TheFaultsEpochIsThePassItsStepBelongsTo) {
  Analyzer a;
  a.on_step_begin(1);
  a.on_event(event(1, NT_EVENT_EPOCH, "Clips", R"({"epoch": 1, "batches": 3, "batch": 1})"));
  a.on_step_begin(4);
  a.on_event(event(4, NT_EVENT_EPOCH, "Clips", R"({"epoch": 2, "batches": 3, "batch": 1})"));
  a.on_step_begin(5);
  a.on_check(check(5, Phase::Input, "Net", DType::F32, 1, 0, 0, 1.0, Role::Output, "x"));
  a.on_step_begin(7);
  a.on_event(event(7, NT_EVENT_EPOCH, "Clips", R"({"epoch": 3})"));
  const Report r = a.build_report();
  ASSERT_TRUE(r.fault_epoch);
  EXPECT_EQ(r.fault_epoch->epoch, 2);
  EXPECT_EQ(r.fault_epoch->begin_step, 4);
  EXPECT_EQ(r.fault_epoch->batches.value_or(-1), 3);
}

TEST(FrontendEvents, AnEpochWithoutItsNumberIsRefused) {
  std::string why;
  EventRecord e = event(1, NT_EVENT_EPOCH, "Clips", R"({"batches": 3})");
  EXPECT_FALSE(events::decode(e, &why));
  EXPECT_NE(why.find("epoch"), std::string::npos) << why;
}

}  // namespace
}  // namespace nantrace
