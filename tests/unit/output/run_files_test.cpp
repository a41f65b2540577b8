// Run-file names: what the runtime writes, the merge reads back.
#include "output/run_files.h"

#include <gtest/gtest.h>

namespace nantrace {
namespace {

using Kind = RunFileOwner::Kind;

TEST(RunFiles, NamesAndTheirParsingAgree) {
  EXPECT_EQ(run_file_name("report", "json", {}), "report.json");
  EXPECT_EQ(run_file_name("trace", "json", {Kind::Rank, 3}), "trace.rank3.json");
  EXPECT_EQ(run_file_name("report", "md", {Kind::Pid, 4242}), "report.pid4242.md");
  for (const RunFileOwner o : {RunFileOwner{Kind::Rank, 0}, RunFileOwner{Kind::Rank, 17}, RunFileOwner{Kind::Pid, 999999999}}) {
    const auto p = parse_run_file_name(run_file_name("trace", "json", o), "json");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->stem, "trace");
    EXPECT_EQ(p->owner.kind, o.kind);
    EXPECT_EQ(p->owner.number, o.number);
  }
}

TEST(RunFiles, OtherNamesAreNotRunFiles) {
  for (const char* n : {"report.json", "trace.merged.json", "trace.rank.json", "trace.rank1x.json", "trace.rank1.md",
                        "trace.rank1234567890.json", ".rank1.json", "trace.rank1.json.tmp", "Trace.rank1.json",
                        "report.rank-1.json", "a.b.rank1.json"})
    EXPECT_FALSE(parse_run_file_name(n, "json")) << n;
}

}  // namespace
}  // namespace nantrace
