// Decides what reaches the Chrome trace. Summaries (step spans, counters, markers) are always
// written; detail (module spans, kernels) is written for the first steps and for a window
// around the fault: the last `window` steps are held in memory and written when the fault is
// found, so a run of days keeps a small trace with full detail where it matters.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "output/chrome_trace_writer.h"

namespace nantrace {

struct TraceOptions {
  int64_t detail_steps = 3;   // full detail for steps 1..detail_steps
  int64_t window = 8;         // steps of detail kept before the fault and written after it
  uint64_t max_bytes = 256ull << 20;
};

class TraceRecorder {
 public:
  // base_ns: the run's start, time 0 of the trace. label: what the process is ("python
  // train.py"), its track's name.
  bool open(const std::string& path, const TraceOptions& options, int64_t pid, int64_t base_ns,
            const std::string& label, std::string* error);
  bool is_open() const { return writer_.is_open(); }
  const std::string& path() const { return path_; }

  // The rank became known: the process track is renamed "rank N (label)" and sorted by rank.
  void set_rank(int32_t rank, int32_t world_size);
  void step_span(int64_t step, int64_t start_ns, int64_t end_ns, uint32_t tid);
  // Finite values go to the counter track; a non-finite one is left out of the series and
  // drawn as an instant marker on the process ("loss = nan") with the value as text in args.
  void counter(const std::string& name, int64_t ts_ns, const std::map<std::string, double>& values,
               uint32_t tid, int64_t step);
  void marker(const std::string& name, const std::string& cat, int64_t ts_ns, uint32_t tid, char scope,
              const nlohmann::json& args);

  void module_span(int64_t step, const std::string& name, const std::string& type, int32_t kind, uint32_t tid,
                   int64_t start_ns, int64_t end_ns);
  void kernel(const KernelRecord& k);

  void on_step(int64_t step);
  void on_origin(int64_t step);
  void flush() { writer_.flush(); }
  void close() { writer_.close(); }
  // Writes the finished object form to final_path (see ChromeTraceWriter::finish).
  bool finish(const std::string& final_path, const TraceHeader& header, std::string* error) {
    return writer_.finish(final_path, header, error);
  }
  uint64_t dropped_detail() const { return dropped_detail_; }
  void set_error_callback(std::function<void(const std::string&)> cb) { writer_.set_error_callback(std::move(cb)); }

 private:
  struct Detail {
    bool is_kernel = false;
    std::string name, type;
    int32_t kind = 0;
    uint32_t tid = 0;
    int64_t start_ns = 0, end_ns = 0;
    KernelRecord k;
  };
  bool detail_now(int64_t step) const;
  void add_detail(int64_t step, Detail d);
  void write_detail(const Detail& d);
  bool over_budget(double share) const { return writer_.bytes_written() >= uint64_t(double(options_.max_bytes) * share); }
  void name_process();
  void name_thread(int64_t pid, int64_t tid);  // once per (pid, tid), before its first event

  ChromeTraceWriter writer_;
  std::string path_;
  TraceOptions options_;
  int64_t pid_ = 0;
  std::string label_;
  int32_t rank_ = -1;
  std::set<std::pair<int64_t, int64_t>> named_threads_;
  std::set<int64_t> named_devices_;
  int64_t step_ = 0;
  int64_t origin_step_ = -1;
  std::deque<std::pair<int64_t, std::vector<Detail>>> ring_;
  uint64_t dropped_detail_ = 0;
  bool budget_noted_ = false;
};

}  // namespace nantrace
