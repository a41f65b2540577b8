// Concurrency contracts that ThreadSanitizer checks (tools/sanitize.sh runs this under TSan):
// - ChromeTraceWriter is thread-safe: training threads, the CUPTI collector and the flush
//   timer all write into one writer at once, and the file must still be strict JSON with
//   every event exactly once and each thread's events in the order that thread wrote them;
// - the Sequencer is not thread-safe by itself; the runtime drives it under one lock from the
//   training thread (reserve/put/drain) and the device collector (complete/drain). Driven so,
//   it must release every item exactly once, in sequence order.
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "temp_files.h"

#include "core/sequencer.h"
#include "output/chrome_trace_writer.h"

namespace nantrace {
namespace {

using nlohmann::json;

using nantrace::testing::read_all;

class ConcurrentTraceTest : public nantrace::testing::TempDirTest {};

TEST_F(ConcurrentTraceTest, EventsFromManyThreadsAllArriveOnceAndInPerThreadOrder) {
  constexpr int kThreads = 4;
  constexpr int kEventsPerThread = 500;
  ChromeTraceWriter w;
  std::string err;
  ASSERT_TRUE(w.open(path_, &err)) << err;

  std::atomic<bool> go{false};
  std::atomic<int> writers_done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kEventsPerThread; ++i) {
        // ts encodes the per-thread order; the name carries characters that need escaping.
        const int64_t ts_ns = int64_t(i) * 1000;
        switch (i % 4) {
          case 0: w.complete("mod \"" + std::to_string(t) + "\"\n", "module", 1, t, ts_ns, 10, json{{"i", i}}); break;
          case 1: w.instant("mark", "nantrace", 1, t, ts_ns, 't', json{{"i", i}}); break;
          case 2: w.counter("scale" + std::to_string(t), 1, ts_ns, {{"i", double(i)}}); break;
          case 3: w.complete("op", "cpu_op", 1, t, ts_ns, 5, json{{"i", i}}); break;
        }
      }
      writers_done.fetch_add(1);
    });
  }
  // A flusher and a reader racing the writers, as the runtime's timer and stats do.
  std::thread flusher([&] {
    while (!go.load()) std::this_thread::yield();
    while (writers_done.load() < kThreads) {
      w.flush();
      (void)w.bytes_written();
      (void)w.events_written();
      (void)w.is_open();
      std::this_thread::yield();
    }
  });
  go.store(true);
  for (auto& th : threads) th.join();
  flusher.join();
  EXPECT_EQ(w.events_written(), uint64_t(kThreads) * kEventsPerThread);
  w.close();
  EXPECT_EQ(w.last_error(), "");

  const std::string text = read_all(path_);
  EXPECT_EQ(text.size(), w.bytes_written());
  json events = json::parse(text);  // throws on anything garbled by a race
  ASSERT_TRUE(events.is_array());
  ASSERT_EQ(events.size(), size_t(kThreads) * kEventsPerThread);

  // Per writer thread: every i exactly once, in increasing order. Counters carry the thread
  // in their name (they have no tid); the others carry it in tid.
  std::map<int, std::vector<int>> seen;
  for (const auto& e : events) {
    int t = e.at("ph") == "C" ? std::stoi(e.at("name").get<std::string>().substr(5)) : e.at("tid").get<int>();
    seen[t].push_back(e.at("args").at("i").get<int>());
  }
  ASSERT_EQ(seen.size(), size_t(kThreads));
  for (const auto& [t, is] : seen) {
    ASSERT_EQ(is.size(), size_t(kEventsPerThread)) << "thread " << t;
    for (int i = 0; i < kEventsPerThread; ++i) ASSERT_EQ(is[i], i) << "thread " << t;
  }
}

TEST_F(ConcurrentTraceTest, CloseRacingWritersLeavesStrictJson) {
  ChromeTraceWriter w;
  std::string err;
  ASSERT_TRUE(w.open(path_, &err)) << err;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load() && i < 100000; ++i) w.instant("late", "nantrace", 1, t, i, 'g');
    });
  }
  while (w.events_written() < 200) std::this_thread::yield();
  w.close();  // the run ends while other threads still record (atexit vs. a DataLoader thread)
  stop.store(true);
  for (auto& th : threads) th.join();
  const uint64_t accepted = w.events_written();
  json events = json::parse(read_all(path_));
  ASSERT_TRUE(events.is_array());
  EXPECT_EQ(events.size(), accepted);  // nothing accepted after close, nothing lost before it
}

TEST(ConcurrentSequencer, TrainingAndCollectorThreadsReleaseEveryItemOnceInOrder) {
  constexpr int kItems = 4000;
  Sequencer s;
  std::mutex mu;  // the runtime lock
  std::vector<uint64_t> released;
  auto emit = [&](SequencedItem& i) { released.push_back(i.check.seq); };

  // Device checks travel from the training thread to the collector as "in flight" seqs.
  std::mutex flight_mu;
  std::vector<uint64_t> in_flight;
  std::atomic<bool> training_done{false};

  std::thread collector([&] {
    for (;;) {
      std::vector<uint64_t> batch;
      {
        std::lock_guard<std::mutex> l(flight_mu);
        batch.swap(in_flight);
      }
      if (batch.empty()) {
        if (training_done.load()) {
          std::lock_guard<std::mutex> l(flight_mu);
          if (in_flight.empty()) return;
          continue;
        }
        std::this_thread::yield();
        continue;
      }
      // Results come back out of order, as streams finish.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        std::lock_guard<std::mutex> l(mu);
        TensorStats st{};
        st.numel = 1;
        if (*it % 7 == 0) s.fail(*it, "stream capture");
        else s.complete(*it, st, {"kernel"});
        s.drain(emit);
      }
    }
  });

  for (int i = 0; i < kItems; ++i) {
    const bool device = i % 3 != 0;
    uint64_t seq;
    {
      std::lock_guard<std::mutex> l(mu);
      seq = s.reserve();
      SequencedItem item;
      item.kind = SequencedItem::Kind::Check;
      item.ready = !device;
      item.check.seq = seq;
      s.put(seq, std::move(item));
      s.drain(emit);
    }
    if (device) {
      std::lock_guard<std::mutex> l(flight_mu);
      in_flight.push_back(seq);
    }
  }
  training_done.store(true);
  collector.join();
  {
    std::lock_guard<std::mutex> l(mu);
    s.drain(emit);
    EXPECT_EQ(s.pending(), 0u);
  }
  ASSERT_EQ(released.size(), size_t(kItems));
  for (int i = 0; i < kItems; ++i) ASSERT_EQ(released[i], uint64_t(i));
}

}  // namespace
}  // namespace nantrace
