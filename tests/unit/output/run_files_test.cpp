// Run-file names: what the runtime writes, the merge reads back.
#include "output/run_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../temp_files.h"

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

class PromoteTest : public testing::TempDirTest {
 protected:
  void put(const std::string& name, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + name).parent_path());
    std::ofstream(dir_ + "/" + name) << text;
  }
  bool has(const std::string& name) const { return std::filesystem::exists(dir_ + "/" + name); }
};

TEST_F(PromoteTest, TheOnlyProcessOfARunGetsTheSingleProcessNames) {
  put("report.pid77.json", R"({"notes": ["saved: run/repro/origin_module.pid77.pt"]})");
  put("report.pid77.md", "see repro/origin_module.pid77.pt");
  put("trace.pid77.json", "[]");
  put("repro/origin_module.pid77.pt", "blob");
  std::string error;
  const auto p = promote_single_process_files(dir_, &error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->report_md, dir_ + "/report.md");
  for (const char* f : {"report.json", "report.md", "trace.json", "repro/origin_module.pt"}) EXPECT_TRUE(has(f)) << f;
  for (const char* f : {"report.pid77.json", "report.pid77.md", "trace.pid77.json", "repro/origin_module.pid77.pt"})
    EXPECT_FALSE(has(f)) << f;
  EXPECT_EQ(testing::read_all(dir_ + "/report.md"), "see repro/origin_module.pt");
  EXPECT_NE(testing::read_all(dir_ + "/report.json").find("repro/origin_module.pt\""), std::string::npos);
}

TEST_F(PromoteTest, SeveralProcessesKeepTheirOwnFiles) {
  put("report.rank0.json", "{}");
  put("report.rank1.json", "{}");
  std::string error;
  EXPECT_FALSE(promote_single_process_files(dir_, &error));
  EXPECT_TRUE(has("report.rank0.json"));
  EXPECT_TRUE(error.empty());
}

TEST_F(PromoteTest, AnExistingSingleReportIsNeverOverwritten) {
  put("report.json", "mine");
  put("report.pid5.json", "{}");
  std::string error;
  EXPECT_FALSE(promote_single_process_files(dir_, &error));
  EXPECT_EQ(testing::read_all(dir_ + "/report.json"), "mine");
}

}  // namespace
}  // namespace nantrace
