// merge_run_directory on real rank files (written by the real writers), intact, truncated,
// corrupted, missing, and left by a killed process.
#include "output/run_merge.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "output/chrome_trace_writer.h"
#include "output/report_json.h"
#include "output/sample_report.h"

namespace nantrace {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& a, const std::string& b = "") {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(a) != std::string::npos && l.find(b) != std::string::npos;
  });
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// A rank's report: rank 1 finds the bad batch at step 3 (input); rank 0 the all-reduced NaN
// later in the same step (optimizer_grad).
Report rank_report(int32_t rank) {
  Report r = testing_support::make_fault_report();
  r.rank = rank;
  r.world_size = 2;
  r.finding.origin.step = 3;
  r.finding.origin.seq = rank == 1 ? 500 : 20;
  r.finding.origin.ts_ns = 1'700'000'000'000'000'000 + (rank == 1 ? 9'000'000 : 1'000'000);  // rank 1 later in time
  r.finding.origin.site.phase = rank == 1 ? Phase::Input : Phase::OptimizerGrad;
  r.finding.kind = rank == 1 ? FaultKind::BadInput : FaultKind::InvalidOp;
  r.finding.origin.site.module_path = rank == 1 ? "Net" : "Net/fc1";
  return r;
}

class RunMergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nantrace-run-merge-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  void write_report(const std::string& name, const Report& r) { spit(path(name), report_to_json_text(r)); }

  // A trace as the runtime writes it: process metadata (with the base time and rank in its
  // args), `events` step spans and a counter; finished in the object form, or left as the
  // live array (a killed process). Rank r starts r ms after rank 0.
  static constexpr int64_t kBase = 1'699'999'999'123'456'789;  // before every origin
  void write_trace(const std::string& name, int32_t rank, int64_t os_pid, int events = 3, bool finished = true) {
    ChromeTraceWriter w;
    std::string error;
    const int64_t base = kBase + std::max(rank, 0) * 1'000'000;
    ASSERT_TRUE(w.open(path(name), &error, base)) << error;
    nlohmann::json extra = {{"nantrace_base_time_ns", base}};
    if (rank >= 0) extra["nantrace_rank"] = rank;
    w.process_name(os_pid, rank >= 0 ? "rank " + std::to_string(rank) + " (python train.py)" : "python train.py", extra);
    w.process_sort_index(os_pid, 0);
    for (int i = 1; i <= events; ++i)
      w.complete("ProfilerStep#" + std::to_string(i), "user_annotation", os_pid, 77, base + i, 1000, {{"pid", 5}});
    w.counter("loss_scale", os_pid, base, {{"scale", 65536.0}});
    if (!finished) {
      w.close();
      return;
    }
    TraceHeader h;
    h.rank = rank;
    h.world_size = 2;
    ASSERT_TRUE(w.finish(path(name), h, &error)) << error;
  }

  void write_rank(int32_t rank) {
    write_report("report.rank" + std::to_string(rank) + ".json", rank_report(rank));
    write_trace("trace.rank" + std::to_string(rank) + ".json", rank, 4000 + rank);
  }

  nlohmann::json merged_trace() const {
    const nlohmann::json doc = nlohmann::json::parse(slurp(path("trace.merged.json")));
    EXPECT_TRUE(doc.is_object()) << "the merged trace is in the finished object form";
    return doc.at("traceEvents");
  }
  Report merged_report() const {
    Report r;
    std::string error;
    EXPECT_TRUE(report_from_json_text(slurp(path("report.merged.json")), &r, &error)) << error;
    return r;
  }

  std::string dir_;
};

TEST_F(RunMergeTest, MergesTwoRanksIntoOneReportAndOneTrace) {
  write_rank(0);
  write_rank(1);
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_TRUE(m.errors.empty()) << joined(m.errors);
  EXPECT_EQ(m.ranks_merged, 2);
  EXPECT_EQ(m.report_json, path("report.merged.json"));
  EXPECT_EQ(m.report_md, path("report.merged.md"));
  EXPECT_EQ(m.trace_json, path("trace.merged.json"));

  const Report r = merged_report();
  EXPECT_EQ(r.rank, 1);  // earlier phase, although later in wall-clock time
  EXPECT_EQ(r.world_size, 2);
  EXPECT_EQ(r.finding.origin.site.phase, Phase::Input);
  EXPECT_TRUE(any_contains(r.notes, "rank 0: invalid operation", "follows from rank 1 via all-reduce"));
  EXPECT_NE(slurp(path("report.merged.md")).find("at step 3 on rank 1"), std::string::npos);

  // One process per rank, named; the ranks' own process metadata replaced; the rest kept.
  const nlohmann::json t = merged_trace();
  std::map<int64_t, std::string> names;
  std::map<int64_t, int> events_per_pid;
  for (const auto& e : t) {
    events_per_pid[e.at("pid").get<int64_t>()]++;
    if (e.at("name") == "process_name") names[e.at("pid")] = e.at("args").at("name");
    if (e.at("name") == "ProfilerStep#1") {
      EXPECT_EQ(e.at("args").at("pid"), 5);  // args untouched
    }
  }
  EXPECT_EQ(names, (std::map<int64_t, std::string>{{kRankPidBase, "rank 0 (python train.py)"},
                                                   {kRankPidBase + 1, "rank 1 (python train.py)"}}));
  EXPECT_EQ(events_per_pid.size(), 2u);
  // Per rank: process_name, sort_index, 3 steps, 1 counter; plus the marker.
  EXPECT_EQ(events_per_pid[kRankPidBase], 6);
  EXPECT_EQ(events_per_pid[kRankPidBase + 1], 7);
  EXPECT_EQ(t.back().at("name"), "nantrace: the fault began here (rank 1)");
  EXPECT_EQ(t.back().at("s"), "g") << "the merge's marker is the one global marker";

  // One time axis: rank 1 started 1 ms after rank 0, so its events move by exactly 1000 us.
  const nlohmann::json doc = nlohmann::json::parse(slurp(path("trace.merged.json")));
  EXPECT_EQ(doc.at("baseTimeNanoseconds"), kBase);
  const std::string text = slurp(path("trace.merged.json"));
  EXPECT_NE(text.find("\"pid\":1000,\"tid\":77,\"ts\":0.001"), std::string::npos) << text;
  EXPECT_NE(text.find("\"pid\":1001,\"tid\":77,\"ts\":1000.001"), std::string::npos) << text;
  // The fault marker (rank 1's origin, in epoch ns) on the same axis.
  EXPECT_DOUBLE_EQ(t.back().at("ts").get<double>(), (1'700'000'000'009'000'000 - kBase) / 1000.0);
}

TEST_F(RunMergeTest, TruncatedReportIsNamedAndTheOthersMerged) {
  write_rank(0);
  write_rank(1);
  const std::string full = slurp(path("report.rank1.json"));
  spit(path("report.rank1.json"), full.substr(0, full.size() / 2));
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_EQ(m.ranks_merged, 1);
  ASSERT_EQ(m.errors.size(), 1u) << joined(m.errors);
  EXPECT_TRUE(any_contains(m.errors, "report.rank1.json: not valid JSON")) << joined(m.errors);
  EXPECT_TRUE(any_contains(m.errors, "left out"));
  const Report r = merged_report();
  EXPECT_EQ(r.rank, 0);
  EXPECT_TRUE(any_contains(r.notes, "not merged: report.rank1.json"));
  // Rank 1's trace is still merged.
  EXPECT_NE(slurp(path("trace.merged.json")).find("\"rank 1 ("), std::string::npos);
}

TEST_F(RunMergeTest, WrongTypeIsNamedWithItsField) {
  write_rank(0);
  write_rank(1);
  nlohmann::json j = nlohmann::json::parse(slurp(path("report.rank0.json")));
  j["finding"]["step"] = "three";
  spit(path("report.rank0.json"), j.dump());
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_EQ(m.ranks_merged, 1);
  EXPECT_TRUE(any_contains(m.errors, "report.rank0.json: ", "finding.step")) << joined(m.errors);
  EXPECT_EQ(merged_report().rank, 1);
}

TEST_F(RunMergeTest, EmptyAndGarbageReports) {
  write_rank(0);
  write_rank(1);
  write_rank(2);
  spit(path("report.rank1.json"), "");
  spit(path("report.rank2.json"), std::string("\x7f" "ELF\x01\x02\x00garbage", 14));
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_EQ(m.ranks_merged, 1);
  EXPECT_TRUE(any_contains(m.errors, "report.rank1.json: empty file")) << joined(m.errors);
  EXPECT_TRUE(any_contains(m.errors, "report.rank2.json: not valid JSON")) << joined(m.errors);
  EXPECT_EQ(merged_report().rank, 0);
}

TEST_F(RunMergeTest, MissingTraceIsNamedAndTheReportStillMerged) {
  write_rank(0);
  write_rank(1);
  fs::remove(path("trace.rank1.json"));
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_EQ(m.ranks_merged, 2);
  EXPECT_TRUE(any_contains(m.errors, "trace.rank1.json: missing")) << joined(m.errors);
  EXPECT_EQ(merged_report().rank, 1);
  const std::string text = slurp(path("trace.merged.json"));
  EXPECT_NE(text.find("\"rank 0 ("), std::string::npos);
  EXPECT_EQ(text.find("\"rank 1"), std::string::npos);
}

TEST_F(RunMergeTest, KilledRunTraceWithoutClosingBracketIsMerged) {
  write_rank(0);
  write_report("report.rank1.json", rank_report(1));
  write_trace("trace.rank1.json", 1, 4001, 3, /*finished=*/false);
  // What SIGKILL leaves: the live array form, no "]" and a last event cut off part-way.
  std::string t = slurp(path("trace.rank1.json"));
  t = t.substr(0, t.rfind(']'));
  while (!t.empty() && (t.back() == '\n')) t.pop_back();
  t += ",\n{\"name\":\"ProfilerStep#4\",\"ph\":\"X\",\"pid\":4001,\"ts\":17000";
  spit(path("trace.rank1.json"), t);
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_TRUE(m.errors.empty()) << joined(m.errors);
  const nlohmann::json merged = merged_trace();
  int steps_of_rank1 = 0;
  for (const auto& e : merged)
    if (e.at("pid") == kRankPidBase + 1 && e.at("name").get<std::string>().rfind("ProfilerStep#", 0) == 0)
      ++steps_of_rank1;
  EXPECT_EQ(steps_of_rank1, 3);
  EXPECT_TRUE(any_contains(merged_report().notes, "trace.rank1.json is unfinished", "cut-off last event"));
  // Its base time came from the live file's process_name args: still on the common axis.
  EXPECT_NE(slurp(path("trace.merged.json")).find("\"pid\":1001,\"tid\":77,\"ts\":1000.001"), std::string::npos);
}

TEST_F(RunMergeTest, CorruptedTraceIsLeftOutAndNamed) {
  write_rank(0);
  write_rank(1);
  std::string t = slurp(path("trace.rank0.json"));
  t.insert(t.find("ProfilerStep#2") - 8, "@@@");
  spit(path("trace.rank0.json"), t);
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_EQ(m.ranks_merged, 2);
  EXPECT_TRUE(any_contains(m.errors, "trace.rank0.json: ", "rank 0's trace is left out")) << joined(m.errors);
  const std::string text = slurp(path("trace.merged.json"));
  EXPECT_EQ(text.find("\"rank 0 ("), std::string::npos);
  EXPECT_NE(text.find("\"rank 1 ("), std::string::npos);
  EXPECT_TRUE(nlohmann::json::parse(text).is_object());  // still strict JSON
}

TEST_F(RunMergeTest, NothingMergeableWritesNoReport) {
  EXPECT_EQ(merge_run_directory(dir_).ranks_merged, 0);
  EXPECT_TRUE(any_contains(merge_run_directory(dir_).errors, "no rank files"));
  spit(path("report.rank0.json"), "{\"nantrace_report_version\": 1");
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_EQ(m.ranks_merged, 0);
  EXPECT_TRUE(m.report_json.empty());
  EXPECT_FALSE(fs::exists(path("report.merged.json")));
  EXPECT_EQ(merge_run_directory(dir_ + "/nope").ranks_merged, 0);
}

TEST_F(RunMergeTest, PidFilesMergeAndRankFilesSupersedeThem) {
  write_rank(0);
  // A process whose rank never became known, and a stale pid pair of rank 0.
  Report unknown = rank_report(1);
  unknown.rank = -1;
  unknown.world_size = 1;
  write_report("report.pid777.json", unknown);
  write_trace("trace.pid777.json", -1, 777);
  write_report("report.pid555.json", rank_report(0));
  write_trace("trace.pid555.json", 0, 555);
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_TRUE(m.errors.empty()) << joined(m.errors);
  EXPECT_EQ(m.ranks_merged, 2);
  const Report r = merged_report();
  EXPECT_TRUE(any_contains(r.notes, "report.pid555.json is superseded by rank 0's rank-named file"));
  EXPECT_TRUE(any_contains(r.notes, "trace.pid555.json is superseded by rank 0's rank-named file"));
  EXPECT_EQ(r.rank, -1);  // the unknown process found the earlier fault
  const std::string text = slurp(path("trace.merged.json"));
  EXPECT_NE(text.find("\"pid 777\""), std::string::npos);
  EXPECT_NE(text.find("\"pid\":" + std::to_string(kUnknownRankPidBase + 777)), std::string::npos);
}

TEST_F(RunMergeTest, KilledRanksPidNamedTraceJoinsItsRankNamedReport) {
  // SIGKILL: the provisional report was already rank-named, the trace not yet renamed.
  write_rank(0);
  write_report("report.rank1.json", rank_report(1));
  write_trace("trace.pid4321.json", 1, 4321);
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_TRUE(m.errors.empty()) << joined(m.errors);
  EXPECT_EQ(m.ranks_merged, 2);
  EXPECT_TRUE(any_contains(merged_report().notes, "trace.pid4321.json is rank 1's"));
  int rank1_events = 0;
  for (const auto& e : merged_trace()) rank1_events += e.at("pid") == kRankPidBase + 1;
  EXPECT_EQ(rank1_events, 7);
}

TEST_F(RunMergeTest, SingleProcessRunIsReadWhenNoRankFiles) {
  Report r = rank_report(1);
  r.rank = -1;
  r.world_size = 1;
  write_report("report.json", r);
  write_trace("trace.json", -1, 99);
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_EQ(m.ranks_merged, 1);
  EXPECT_TRUE(m.errors.empty()) << joined(m.errors);
}

TEST_F(RunMergeTest, PlantedSymlinkIsNotFollowed) {
  write_rank(0);
  const std::string victim = path("victim");
  spit(victim, "keep");
  ASSERT_EQ(::symlink(victim.c_str(), path("trace.merged.json.tmp").c_str()), 0);
  const MergeResult m = merge_run_directory(dir_);
  EXPECT_TRUE(any_contains(m.errors, "trace.merged.json.tmp is a symbolic link")) << joined(m.errors);
  EXPECT_EQ(slurp(victim), "keep");
  EXPECT_EQ(m.ranks_merged, 1);
}

// --- the trace reader ------------------------------------------------------------------

std::vector<std::string> events_of(const std::string& text, TraceReadInfo* info, std::string* error, bool* ok) {
  std::vector<std::string> out;
  *ok = read_trace_events(text, [&](std::string_view e) { out.emplace_back(e); }, info, error);
  return out;
}

TEST(ReadTraceEvents, ToleratesWhatAKilledWriterLeaves) {
  struct Case {
    std::string text;
    size_t events;
    bool closed;
  } cases[] = {
      {"[\n{\"a\":1},\n{\"b\":\"}{\"}\n]\n", 2, true},
      {"[\n{\"a\":1},\n{\"b\":2}", 2, false},
      {"[\n{\"a\":1},\n", 1, false},
      {"[\n{\"a\":1},\n{\"b\":\"cut", 1, false},
      {"[", 0, false},
      {"{\"traceEvents\":[{\"a\":1}],\"displayTimeUnit\":\"ns\"}", 1, true},
      {"{\"schemaVersion\": 1,\n\"traceEvents\": [\n{\"a\":1},\n{\"b\":2}\n]\n}\n", 2, true},
      {"{\"schemaVersion\": 1, \"traceEvents\": [\n{\"a\":1},\n{\"b\":", 1, false},
      {"{\"traceEvents\":[", 0, false},
  };
  for (const auto& c : cases) {
    TraceReadInfo info;
    std::string error;
    bool ok = false;
    const auto ev = events_of(c.text, &info, &error, &ok);
    EXPECT_TRUE(ok) << c.text << ": " << error;
    EXPECT_EQ(ev.size(), c.events) << c.text;
    EXPECT_EQ(info.closed, c.closed) << c.text;
  }
}

TEST(ReadTraceEvents, RejectsWhatIsNotATrace) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty file"},
      {"  \n", "only white space"},
      {"garbage", "not a Chrome trace"},
      {"[{\"a\":1} {\"b\":2}]", "expected ',' or ']'"},
      {"[{\"a\":1},{\"b\":tru}]", "event 2"},
      {"[{\"a\":1}] trailing", "after the closing ']'"},
      {"[1,2]", "expected '{'"},
      {"{\"x\":1}", "traceEvents"},
      {"{\"x\":tru, \"traceEvents\":[]}", "\"x\""},
      {"{\"traceEvents\":5}", "not an array"},
      {"{\"traceEvents\":[]} x", "after the closing '}'"},
  };
  for (const auto& [text, needle] : cases) {
    std::string error;
    bool ok = true;
    events_of(text, nullptr, &error, &ok);
    EXPECT_FALSE(ok) << text;
    EXPECT_NE(error.find(needle), std::string::npos) << text << " -> " << error;
  }
}

TEST(ReadTraceEvents, ObjectFormHeaderIsKept) {
  const std::string text =
      "{\"schemaVersion\": 1,\n\"distributedInfo\": {\"rank\": 2, \"world_size\": 4},\n"
      "\"baseTimeNanoseconds\": 1700000000000000000,\n\"traceEvents\": [\n{\"a\":1}\n],\n\"after\": \"x\"}\n";
  TraceReadInfo info;
  std::string error;
  bool ok = false;
  const auto ev = events_of(text, &info, &error, &ok);
  ASSERT_TRUE(ok) << error;
  EXPECT_TRUE(info.object_form);
  EXPECT_TRUE(info.closed);
  EXPECT_EQ(ev, std::vector<std::string>{"{\"a\":1}"}) << "events keep their exact text";
  EXPECT_EQ(info.header["distributedInfo"]["rank"], 2);
  EXPECT_EQ(info.header["baseTimeNanoseconds"], 1700000000000000000LL);
  EXPECT_EQ(info.header["after"], "x");
}

TEST(RewriteMembers, EditsAndAddsTopLevelMembersOnly) {
  const auto ts_plus_one = [](const std::string& k, std::string_view v) -> std::optional<std::string> {
    if (k == "ts") return std::string(v) + "1";
    return std::nullopt;
  };
  EXPECT_EQ(rewrite_members(R"({"ts":1.5,"args":{"ts":2}})", ts_plus_one), R"({"ts":1.51,"args":{"ts":2}})");
  EXPECT_EQ(rewrite_members(R"({"name":"ts"})", ts_plus_one, {{"ts", "0"}}), R"({"ts":0,"name":"ts"})");
}

TEST(WithPid, ReplacesOnlyTheTopLevelPid) {
  EXPECT_EQ(with_pid(R"({"name":"x","args":{"pid":5},"pid":4001,"tid":7})", 1001),
            R"({"name":"x","args":{"pid":5},"pid":1001,"tid":7})");
  EXPECT_EQ(with_pid(R"({"pid" : 3 })", 9), R"({"pid" : 9 })");
  EXPECT_EQ(with_pid(R"({"name":"pid","ph":"M"})", 9), R"({"pid":9,"name":"pid","ph":"M"})");
  EXPECT_EQ(with_pid(R"({})", 9), R"({"pid":9})");
  EXPECT_EQ(with_pid(R"({"s":"a\"pid\":1","pid":2})", 9), R"({"s":"a\"pid\":1","pid":9})");
  // Duplicate and escaped keys: every spelling of the top-level pid is rewritten.
  EXPECT_EQ(with_pid(R"({"pid":1,"x":[1,{"pid":3}],"pid":2})", 9), R"({"pid":9,"x":[1,{"pid":3}],"pid":9})");
  EXPECT_EQ(with_pid(R"({"p\u0069d":1})", 9), R"({"p\u0069d":9})");
  EXPECT_EQ(with_pid(R"({"pid":{"a":1}})", 9), R"({"pid":9})");
}

}  // namespace
}  // namespace nantrace
