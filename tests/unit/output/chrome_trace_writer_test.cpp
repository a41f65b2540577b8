// The trace writer must produce strict JSON in every case a run can end in: closed, killed
// after a flush (array form without "]"), or stopped by a full disk.
#include "output/chrome_trace_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "temp_files.h"

namespace nantrace {
namespace {

using nlohmann::json;

using nantrace::testing::read_all;

// Strict parse: nlohmann rejects NaN/Infinity literals, bad escapes and invalid UTF-8.
json parse_strict(const std::string& text) { return json::parse(text); }

class TraceTest : public nantrace::testing::TempDirTest {};

TEST_F(TraceTest, ClosedFileIsStrictJsonWithEveryEventKind) {
  ChromeTraceWriter w;
  std::string err;
  ASSERT_TRUE(w.open(path_, &err)) << err;
  w.process_name(1234, "nantrace rank 0");
  w.process_sort_index(1234, 2);
  w.thread_name(1234, 77, "MainThread");
  w.complete("ProfilerStep#3", "user_annotation", 1234, 77, 1'700'000'000'123'456'789, 2'500, json{{"step", 3}});
  w.instant("first NaN", "nantrace", 1234, 77, 1'700'000'000'200'000'000, 'g');
  w.counter("loss_scale", 1234, 1'700'000'000'300'000'000, {{"scale", 65536.0}});
  w.flow(42, 1234, 77, 1'700'000'000'000'001'000, 0, 7, 1'700'000'000'000'009'000);
  w.close();
  w.close();  // idempotent

  const json doc = parse_strict(read_all(path_));
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 8u);
  EXPECT_EQ(w.events_written(), 8u);
  EXPECT_EQ(doc[0]["ph"], "M");
  EXPECT_EQ(doc[0]["args"]["name"], "nantrace rank 0");
  EXPECT_EQ(doc[1]["args"]["sort_index"], 2);
  EXPECT_EQ(doc[2]["tid"], 77);
  const json& x = doc[3];
  EXPECT_EQ(x["ph"], "X");
  EXPECT_EQ(x["cat"], "user_annotation");
  EXPECT_EQ(x["args"]["step"], 3);
  EXPECT_DOUBLE_EQ(x["dur"].get<double>(), 2.5);
  EXPECT_EQ(doc[4]["s"], "g");
  EXPECT_EQ(doc[5]["ph"], "C");
  EXPECT_EQ(doc[5]["args"]["scale"], 65536.0);
  EXPECT_EQ(w.bytes_written(), read_all(path_).size());
}

TEST_F(TraceTest, TimestampsAreRelativeToTheBaseAndExactInNanoseconds) {
  ChromeTraceWriter w;
  const int64_t base = 1'700'000'000'000'000'000;
  ASSERT_TRUE(w.open(path_, nullptr, base));
  EXPECT_EQ(w.base_ns(), base);
  w.complete("a", "cpu_op", 1, 1, base + 123'456'789, 1'002, nullptr);
  w.close();
  const std::string text = read_all(path_);
  // Epoch microseconds (1.7e15 with a fraction) have more digits than a double holds.
  EXPECT_NE(text.find("\"ts\":123456.789"), std::string::npos) << text;
  EXPECT_NE(text.find("\"dur\":1.002"), std::string::npos) << text;
  EXPECT_EQ(text.find("\"args\""), std::string::npos) << "null args are omitted";
  const json doc = parse_strict(text);
  EXPECT_EQ(int64_t(doc[0]["ts"].get<double>() * 1000.0), 123'456'789);
}

TEST_F(TraceTest, KilledRunLoadsAfterFlushWhenClosingBracketIsAppended) {
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  for (int i = 0; i < 5; ++i) w.complete("step", "user_annotation", 1, 1, i * 1000, 500, json{{"i", i}});
  w.flush();
  // The process "dies" here: no close(). What is on disk + "]" must be strict JSON.
  const std::string on_disk = read_all(path_);
  json doc = parse_strict(on_disk + "]");
  ASSERT_EQ(doc.size(), 5u);
  EXPECT_EQ(doc[4]["args"]["i"], 4);
  // And events after the flush extend it without breaking it.
  w.instant("later", "nantrace", 1, 1, 9000, 't');
  w.flush();
  doc = parse_strict(read_all(path_) + "]");
  EXPECT_EQ(doc.size(), 6u);
}

TEST_F(TraceTest, EmptyTraceIsValidBothWays) {
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  w.flush();
  EXPECT_TRUE(parse_strict(read_all(path_) + "]").empty());
  w.close();
  EXPECT_TRUE(parse_strict(read_all(path_)).empty());
}

TEST_F(TraceTest, OddNamesAreEscaped) {
  const std::vector<std::string> names = {
      "quote\"inside", "back\\slash", "new\nline\ttab", "ctrl\x01\x1f", "unicode é 日本 🙂",
      std::string("invalid \xff\xfe utf8 \xc3"), "", "</script>"};
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  for (const auto& n : names) {
    w.thread_name(1, 2, n);
    w.complete(n, n, 1, 2, 0, 1, json{{n, n}});
    w.instant(n, n, 1, 2, 0, 'p', json{{"module", n}});
    w.counter(n, 1, 0, {{n, 1.0}});
  }
  w.close();
  const json doc = parse_strict(read_all(path_));
  ASSERT_EQ(doc.size(), names.size() * 4);
  EXPECT_EQ(doc[1]["name"], "quote\"inside");
  EXPECT_EQ(doc[5]["name"], "back\\slash");
  EXPECT_EQ(doc[9]["name"], "new\nline\ttab");
  EXPECT_EQ(doc[13]["cat"], "ctrl\x01\x1f");
  EXPECT_EQ(doc[17]["name"], "unicode é 日本 🙂");
  // Invalid bytes become U+FFFD, the valid rest survives.
  const std::string replaced = doc[21]["name"];
  EXPECT_NE(replaced.find("invalid "), std::string::npos);
  EXPECT_NE(replaced.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(doc[21]["args"].size(), 1u);
}

TEST_F(TraceTest, NonFiniteArgsBecomeStrings) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  json args = {{"max_abs", inf}, {"loss", nan}, {"nested", {{"list", {1.5, -inf, nan}}, {"ok", 2.0}}}};
  w.complete("op", "cpu_op", 1, 1, 0, 10, args);
  w.instant("i", "c", 1, 1, 0, 't', json::array({nan}));  // non-object args are wrapped
  EXPECT_EQ(w.counter("loss", 1, 0, {{"value", nan}, {"scale", -inf}}), 2u) << "no finite value: no counter event";
  EXPECT_EQ(w.counter("loss", 1, 5, {{"value", 0.5}, {"scale", inf}}), 1u);
  w.close();
  const std::string text = read_all(path_);
  EXPECT_EQ(text.find("NaN"), std::string::npos);
  EXPECT_EQ(text.find("Infinity"), std::string::npos);
  EXPECT_EQ(text.find("null"), std::string::npos) << "nlohmann writes NaN as null: must not happen";
  const json doc = parse_strict(text);
  EXPECT_EQ(doc[0]["args"]["max_abs"], "inf");
  EXPECT_EQ(doc[0]["args"]["loss"], "nan");
  EXPECT_EQ(doc[0]["args"]["nested"]["list"], json::array({1.5, "-inf", "nan"}));
  EXPECT_EQ(doc[0]["args"]["nested"]["ok"], 2.0);
  EXPECT_EQ(doc[1]["args"]["value"], json::array({"nan"}));
  // Counters hold finite numbers only: catapult draws a track flat when one value is NaN.
  ASSERT_EQ(doc.size(), 3u);
  EXPECT_EQ(doc[2]["ph"], "C");
  EXPECT_EQ(doc[2]["args"], json({{"value", 0.5}}));
}

TEST_F(TraceTest, FinishWritesKinetoObjectFormWithRankFirst) {
  ChromeTraceWriter w;
  const int64_t base = 1'700'000'000'000'000'000;
  ASSERT_TRUE(w.open(path_, nullptr, base));
  w.complete("other", "cpu_op", 1, 1, base, 1, json{{"rank", 9}});  // not HTA's match: no space
  w.complete("ProfilerStep#1", "user_annotation", 1, 1, base + 5'000, 1'000);
  TraceHeader h;
  h.rank = 3;
  h.world_size = 4;
  h.backend = "gloo";
  h.trace_name = "python train.py";
  h.extra["nantrace"] = {{"version", "x"}};
  const std::string final_path = dir_ + "/trace.rank3.json";
  std::string err;
  ASSERT_TRUE(w.finish(final_path, h, &err)) << err;
  EXPECT_FALSE(std::ifstream(path_).good()) << "the live file is replaced by the finished one";
  const std::string text = read_all(final_path);
  // HTA reads the file line by line and takes the first "rank":\s+(\d+).
  std::istringstream lines(text);
  std::string line, first_match;
  std::smatch m;
  while (std::getline(lines, line))
    if (std::regex_search(line, m, std::regex(R"("rank":\s+(\d+))"))) {
      first_match = m[1].str();
      break;
    }
  EXPECT_EQ(first_match, "3");
  const json doc = parse_strict(text);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["schemaVersion"], 1);
  EXPECT_EQ(doc["distributedInfo"], json({{"backend", "gloo"}, {"rank", 3}, {"world_size", 4}}));
  EXPECT_EQ(doc["baseTimeNanoseconds"], base);
  EXPECT_EQ(doc["traceName"], "python train.py");
  EXPECT_EQ(doc["nantrace"]["version"], "x");
  EXPECT_TRUE(doc["deviceProperties"].is_array());
  ASSERT_EQ(doc["traceEvents"].size(), 2u);
  EXPECT_EQ(doc["traceEvents"][1]["name"], "ProfilerStep#1");
  EXPECT_DOUBLE_EQ(doc["traceEvents"][1]["ts"].get<double>(), 5.0);
  // HTA stops reading metadata at "traceEvents": every header member comes before it.
  EXPECT_LT(text.find("\"baseTimeNanoseconds\""), text.find("\"traceEvents\""));
}

TEST_F(TraceTest, FinishInPlaceAndFailureKeepsTheArrayForm) {
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  w.instant("i", "c", 1, 1, 0, 'p');
  std::string err;
  ASSERT_TRUE(w.finish(path_, TraceHeader{}, &err)) << err;
  const json doc = parse_strict(read_all(path_));
  EXPECT_FALSE(doc.contains("distributedInfo")) << "rank < 0: no distributedInfo";
  EXPECT_EQ(doc["traceEvents"].size(), 1u);

  // Not opened on a path (a pipe, /dev/full): finishing is refused, nothing thrown.
  int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ChromeTraceWriter w2;
  ASSERT_TRUE(w2.open_fd(fd, "/dev/null", &err));
  EXPECT_FALSE(w2.finish(dir_ + "/never.json", TraceHeader{}, &err));
  EXPECT_NE(err.find("array form"), std::string::npos) << err;
  EXPECT_FALSE(std::ifstream(dir_ + "/never.json").good());

  // The destination cannot be written (a directory is in the way): the live trace stays.
  const std::string live = dir_ + "/live.json", blocked = dir_ + "/blocked";
  ASSERT_EQ(::mkdir((blocked + ".tmp").c_str(), 0755), 0);
  ChromeTraceWriter w3;
  ASSERT_TRUE(w3.open(live, &err));
  w3.instant("kept", "c", 1, 1, 0, 'p');
  EXPECT_FALSE(w3.finish(blocked, TraceHeader{}, &err));
  EXPECT_EQ(parse_strict(read_all(live)).size(), 1u) << "the array form is left, closed";
}

TEST_F(TraceTest, FlowEventsFollowKinetoConvention) {
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  w.flow(123456789012ULL, 4321, 11, 5'000, 0, 7, 8'000);
  w.close();
  const json doc = parse_strict(read_all(path_));
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(w.events_written(), 2u);
  const json& s = doc[0];
  const json& f = doc[1];
  for (const json* e : {&s, &f}) {
    EXPECT_EQ((*e)["cat"], "ac2g");
    EXPECT_EQ((*e)["name"], "ac2g");
    EXPECT_EQ((*e)["id"], 123456789012ULL);
  }
  EXPECT_EQ(s["ph"], "s");
  EXPECT_EQ(s["pid"], 4321);
  EXPECT_EQ(s["tid"], 11);
  EXPECT_DOUBLE_EQ(s["ts"].get<double>(), 5.0);
  EXPECT_FALSE(s.contains("bp"));
  EXPECT_EQ(f["ph"], "f");
  EXPECT_EQ(f["bp"], "e");
  EXPECT_EQ(f["pid"], 0);
  EXPECT_EQ(f["tid"], 7);
  EXPECT_DOUBLE_EQ(f["ts"].get<double>(), 8.0);
}

TEST_F(TraceTest, OpenRefusesExistingFileAndSymlink) {
  { std::ofstream(path_) << "keep"; }
  ChromeTraceWriter w;
  std::string err;
  EXPECT_FALSE(w.open(path_, &err));
  EXPECT_NE(err.find(path_), std::string::npos);
  EXPECT_EQ(read_all(path_), "keep");

  const std::string target = dir_ + "/target", link = dir_ + "/link.json";
  { std::ofstream(target) << "victim"; }
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  ChromeTraceWriter w2;
  EXPECT_FALSE(w2.open(link, &err));
  EXPECT_EQ(read_all(target), "victim");
}

TEST_F(TraceTest, CreatedWithMode0644) {
  const mode_t old = umask(022);
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  umask(old);
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(TraceTest, BufferIsWrittenOnceItExceedsThreshold) {
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  w.complete("small", "c", 1, 1, 0, 1);
  EXPECT_EQ(read_all(path_).size(), 2u) << "only the opening bracket is on disk: one small event stays buffered";
  const std::string big(1000, 'x');
  while (w.bytes_written() < ChromeTraceWriter::kFlushBytes + 2000) w.complete(big, "c", 1, 1, 0, 1);
  const std::string on_disk = read_all(path_);
  EXPECT_GT(on_disk.size(), ChromeTraceWriter::kFlushBytes);
  EXPECT_NO_THROW(parse_strict(on_disk + "]"));
}

TEST_F(TraceTest, StaleBufferIsWrittenAfterAboutOneSecond) {
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  w.complete("first", "c", 1, 1, 0, 1);
  EXPECT_EQ(read_all(path_).size(), 2u) << "only the opening bracket is on disk";
  std::this_thread::sleep_for(ChromeTraceWriter::kFlushInterval + std::chrono::milliseconds(50));
  w.complete("second", "c", 1, 1, 0, 1);  // the check happens on each event
  const json doc = parse_strict(read_all(path_) + "]");
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc[1]["name"], "second");
}

TEST_F(TraceTest, ConcurrentWritersProduceValidJson) {
  ChromeTraceWriter w;
  ASSERT_TRUE(w.open(path_, nullptr));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&w, t] {
      for (int i = 0; i < 2000; ++i) w.complete("op" + std::to_string(i), "cpu_op", 1, t, i, 1, json{{"t", t}});
    });
  for (auto& th : threads) th.join();
  w.close();
  EXPECT_EQ(parse_strict(read_all(path_)).size(), 8000u);
}

TEST_F(TraceTest, DevFullReportsOneErrorAndDoesNotThrow) {
  int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ChromeTraceWriter w;
  std::vector<std::string> errors;
  w.set_error_callback([&](const std::string& e) { errors.push_back(e); });
  std::string err;
  ASSERT_TRUE(w.open_fd(fd, "/dev/full", &err)) << err;
  EXPECT_NO_THROW({
    w.complete("a", "c", 1, 1, 0, 1);
    w.flush();
    for (int i = 0; i < 100; ++i) w.complete("b", "c", 1, 1, 0, 1);
    w.flush();
    w.close();
  });
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/dev/full"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("No space left"), std::string::npos) << errors[0];
  EXPECT_EQ(w.last_error(), errors[0]);
  // The opening bracket is written at open, so on a full disk the failure comes first and
  // every event is dropped.
  EXPECT_EQ(w.events_written(), 0u) << "events after the failure are dropped";
}

TEST_F(TraceTest, FileLimitMidWriteLeavesLoadableFile) {
  // RLIMIT_FSIZE makes write() stop part-way (EFBIG), as a disk filling up would: the writer
  // must cut the file back to the last complete write so it still loads.
  ChromeTraceWriter w;
  int errors = 0;
  w.set_error_callback([&](const std::string&) { ++errors; });
  ASSERT_TRUE(w.open(path_, nullptr));
  for (int i = 0; i < 10; ++i) w.complete("early", "c", 1, 1, i, 1);
  w.flush();
  const size_t good = read_all(path_).size();

  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = good + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  for (int i = 0; i < 50; ++i) w.complete("late event with a long enough name", "c", 1, 1, i, 1);
  w.flush();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, old_handler);
  w.close();

  EXPECT_EQ(errors, 1);
  const std::string on_disk = read_all(path_);
  EXPECT_EQ(on_disk.size(), good);
  EXPECT_EQ(parse_strict(on_disk + "]").size(), 10u);
}

TEST_F(TraceTest, EventsBeforeOpenOrAfterCloseAreIgnored) {
  ChromeTraceWriter w;
  w.complete("nothing", "c", 1, 1, 0, 1);
  EXPECT_FALSE(w.is_open());
  EXPECT_EQ(w.events_written(), 0u);
  ASSERT_TRUE(w.open(path_, nullptr));
  EXPECT_TRUE(w.is_open());
  w.close();
  EXPECT_FALSE(w.is_open());
  w.complete("late", "c", 1, 1, 0, 1);
  EXPECT_EQ(parse_strict(read_all(path_)).size(), 0u);
  std::string err;
  EXPECT_FALSE(w.open(dir_ + "/again.json", &err)) << "a writer is used once";
}

}  // namespace
}  // namespace nantrace
