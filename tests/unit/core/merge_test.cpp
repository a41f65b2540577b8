// merge_reports: which rank's finding is where the fault began, and what the other ranks add.
#include "core/merge.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace nantrace {
namespace {

// A rank's report with a finding at (step, phase, seq, ts).
RankReport with_finding(int32_t rank, int64_t step, Phase phase, uint64_t seq, int64_t ts_ns = 0,
                        FaultKind kind = FaultKind::Propagated, const std::string& module = "Net/fc1") {
  RankReport r{rank, "report.rank" + std::to_string(rank) + ".json", Report{}};
  r.report.rank = rank;
  r.report.world_size = 2;
  Finding& f = r.report.finding;
  f.found = true;
  f.kind = kind;
  f.origin.step = step;
  f.origin.seq = seq;
  f.origin.ts_ns = ts_ns;
  f.origin.site.phase = phase;
  f.origin.site.module_path = module;
  f.origin.stats.nan_count = 1;
  f.explanation = "rule of rank " + std::to_string(rank);
  f.recommendation.headline = "advice of rank " + std::to_string(rank);
  r.report.checks = 100;
  r.report.steps_seen = 6;
  return r;
}

RankReport healthy(int32_t rank) {
  RankReport r{rank, "report.rank" + std::to_string(rank) + ".json", Report{}};
  r.report.rank = rank;
  r.report.world_size = 2;
  r.report.checks = 50;
  r.report.steps_seen = 4;
  return r;
}

bool has_note(const Report& r, const std::string& needle) {
  return std::any_of(r.notes.begin(), r.notes.end(),
                     [&](const std::string& n) { return n.find(needle) != std::string::npos; });
}

TEST(PhaseOrder, FollowsOneTrainingIteration) {
  const Phase order[] = {Phase::Input,    Phase::Forward,       Phase::Loss,          Phase::Backward,
                         Phase::Unscale,  Phase::OptimizerGrad, Phase::OptimizerParam, Phase::Unknown};
  for (size_t i = 1; i < std::size(order); ++i) EXPECT_LT(phase_order(order[i - 1]), phase_order(order[i])) << i;
}

TEST(MergeReports, EarlierStepWinsOverEarlierWallClock) {
  // Rank 0's NaN is at step 5 but was recorded first in wall-clock time; rank 1's at step 4.
  const auto r0 = with_finding(0, 5, Phase::Input, 10, /*ts*/ 1000, FaultKind::BadInput, "Net");
  const auto r1 = with_finding(1, 4, Phase::OptimizerParam, 900, /*ts*/ 5000, FaultKind::Divergence);
  const Report m = merge_reports({r0, r1});
  ASSERT_TRUE(m.finding.found);
  EXPECT_EQ(m.rank, 1);
  EXPECT_EQ(m.finding.origin.step, 4);
  EXPECT_EQ(m.finding.kind, FaultKind::Divergence);
  EXPECT_EQ(m.finding.recommendation.headline, "advice of rank 1");
  EXPECT_EQ(m.world_size, 2);
  // The other rank's input fault is no consequence of all-reduce: named as its own.
  EXPECT_TRUE(has_note(m, "rank 0: bad input data at step 5 (input) in Net - a fault of its own"));
}

TEST(MergeReports, SameStepEarlierPhaseWins) {
  // Step 3: rank 0 sees NaN in backward (all-reduced), rank 1 in its input batch.
  const auto r0 = with_finding(0, 3, Phase::Backward, 5, 100);
  const auto r1 = with_finding(1, 3, Phase::Input, 500, 900, FaultKind::BadInput, "Net");
  for (const auto& order : {std::vector<RankReport>{r0, r1}, std::vector<RankReport>{r1, r0}}) {
    const Report m = merge_reports(order);
    EXPECT_EQ(m.rank, 1);
    EXPECT_EQ(m.finding.origin.site.phase, Phase::Input);
    EXPECT_EQ(m.finding.kind, FaultKind::BadInput);
    EXPECT_TRUE(has_note(m, "rank 0: propagated non-finite value at step 3 (backward) in Net/fc1 - follows from "
                            "rank 1 via all-reduce"))
        << testing::PrintToString(m.notes);
    EXPECT_NE(m.finding.explanation.find("rule of rank 1"), std::string::npos);
    EXPECT_NE(m.finding.explanation.find("rank 1 saw the first non-finite value"), std::string::npos);
  }
}

TEST(MergeReports, SameStepAndPhaseLowerSeqWins) {
  const auto r0 = with_finding(0, 3, Phase::Forward, 42, 9000);
  const auto r1 = with_finding(1, 3, Phase::Forward, 41, 9999);
  EXPECT_EQ(merge_reports({r0, r1}).rank, 1);
  const auto r1_later = with_finding(1, 3, Phase::Forward, 43, 1);
  EXPECT_EQ(merge_reports({r0, r1_later}).rank, 0);
}

TEST(MergeReports, IdenticalKeysKeepTheLowerRank) {
  const auto r2 = with_finding(2, 3, Phase::Forward, 42, 7);
  const auto r0 = with_finding(0, 3, Phase::Forward, 42, 7);
  const auto r1 = with_finding(1, 3, Phase::Forward, 42, 7);
  const Report m = merge_reports({r2, r1, r0});
  EXPECT_EQ(m.rank, 0);
  EXPECT_EQ(m.world_size, 3);
}

TEST(MergeReports, TimestampBreaksTiesOnlyAfterSeq) {
  const auto r0 = with_finding(0, 3, Phase::Forward, 42, 2000);
  const auto r1 = with_finding(1, 3, Phase::Forward, 42, 1000);
  EXPECT_EQ(merge_reports({r0, r1}).rank, 1);
}

TEST(MergeReports, HealthyRanksAreNamedAndTheFaultyOneWins) {
  const Report m = merge_reports({healthy(0), with_finding(1, 2, Phase::Loss, 3)});
  EXPECT_EQ(m.rank, 1);
  EXPECT_TRUE(has_note(m, "rank 0: no NaN or Inf seen (50 checks over 4 steps)"));
  EXPECT_EQ(m.checks, 150u);
  EXPECT_EQ(m.steps_seen, 6);
}

TEST(MergeReports, HandledSkipsAreNotCalledClean) {
  RankReport r0 = healthy(0);
  r0.report.nonfinite_checks = 12;
  r0.report.benign_skips.push_back({3, 65536, 32768, "D/body grad"});
  const Report m = merge_reports({r0, with_finding(1, 3, Phase::Input, 1, 0, FaultKind::BadInput, "G")});
  EXPECT_EQ(m.rank, 1);
  EXPECT_FALSE(has_note(m, "rank 0: no NaN or Inf seen"));
  EXPECT_TRUE(has_note(m, "rank 0: no fault of its own; 12 of 50 checks held non-finite values, GradScaler skipped "
                          "step 3 and recovered (handled)"))
      << testing::PrintToString(m.notes);
}

TEST(MergeReports, NoFaultAnywhere) {
  const Report m = merge_reports({healthy(1), healthy(0)});
  EXPECT_FALSE(m.finding.found);
  EXPECT_EQ(m.rank, 0);  // the first rank's context
  EXPECT_EQ(m.world_size, 2);
}

TEST(MergeReports, SkipsWarningsSeriesAndNotesNameTheirRank) {
  auto r0 = with_finding(0, 4, Phase::Backward, 9);
  auto r1 = with_finding(1, 3, Phase::Input, 1, 0, FaultKind::BadInput, "Net");
  r0.report.benign_skips.push_back({2, 65536, 32768, "Net/fc2 grad_output[0]"});
  r1.report.benign_skips.push_back({1, 65536, 32768, ""});
  r0.report.warnings.push_back({2, "Net/fc1", DType::F16, 40000, 0.7, "within 2x of max"});
  r0.report.series["loss_scale"] = {{1, 65536.0}, {2, 32768.0}};
  r1.report.series["loss_scale"] = {{1, 65536.0}};
  r1.report.notes.push_back("provisional report: the run was still going when this was written");
  r1.report.culprit_magnitude = {{3, 1.5}};
  r0.report.culprit_magnitude = {{4, 99.0}};
  const Report m = merge_reports({r0, r1});
  ASSERT_EQ(m.benign_skips.size(), 2u);
  EXPECT_EQ(m.benign_skips[0].step, 1);  // in step order
  EXPECT_EQ(m.benign_skips[0].first_site, "rank 1");
  EXPECT_EQ(m.benign_skips[1].first_site, "rank 0: Net/fc2 grad_output[0]");
  ASSERT_EQ(m.warnings.size(), 1u);
  EXPECT_EQ(m.warnings[0].reason, "rank 0: within 2x of max");
  EXPECT_EQ(m.series.count("rank 0: loss_scale"), 1u);
  EXPECT_EQ(m.series.at("rank 1: loss_scale").size(), 1u);
  EXPECT_TRUE(has_note(m, "rank 1: provisional report"));
  EXPECT_EQ(m.culprit_magnitude, r1.report.culprit_magnitude);  // the origin rank's history
}

TEST(MergeReports, MissingRanksOfTheWorldAreNamed) {
  auto r0 = with_finding(0, 3, Phase::Forward, 1);
  auto r3 = healthy(3);
  r0.report.world_size = r3.report.world_size = 4;
  const Report m = merge_reports({r0, r3});
  EXPECT_EQ(m.world_size, 4);
  EXPECT_TRUE(has_note(m, "no report merged for rank(s) 1, 2 of world size 4")) << testing::PrintToString(m.notes);
}

TEST(MergeReports, UnknownRankIsNamedBySource) {
  RankReport p = with_finding(-1, 2, Phase::Forward, 1);
  p.source = "report.pid4242.json";
  const Report m = merge_reports({healthy(0), p});
  EXPECT_EQ(m.rank, -1);
  EXPECT_TRUE(has_note(m, "merged from 2 report(s): report.rank0.json, report.pid4242.json"));
  EXPECT_EQ(rank_label(p), "report.pid4242.json");
}

TEST(MergeReports, Empty) {
  const Report m = merge_reports({});
  EXPECT_FALSE(m.finding.found);
  EXPECT_TRUE(has_note(m, "no rank report"));
}

}  // namespace
}  // namespace nantrace
