// Streams a Chrome Trace Event Format file to disk while the run goes on, and finishes it in
// Kineto's object form.
//
// Live, the file is the JSON array form, because its closing "]" is optional for Perfetto UI
// and chrome://tracing: whatever reached the disk before a SIGKILL still loads. Every event is
// written as "[\n" first / ",\n" between / "\n]\n" at close, so the bytes on disk always end
// at an event boundary and `file + "]"` is strict JSON too (what our tests and `nantrace merge`
// rely on). finish() then rewrites the file as {"schemaVersion": 1, "distributedInfo": {...},
// "baseTimeNanoseconds": N, ..., "traceEvents": [...]}: the form Holistic Trace Analysis reads
// and torch.profiler writes. Timestamps are relative to the base time given at open (see
// output/trace_time.h for why). Conventions are in docs/outputs.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace nantrace {

// The top-level members of a finished trace, written before "traceEvents" (HTA reads the
// metadata only up to there). rank < 0: no distributedInfo.
struct TraceHeader {
  int32_t rank = -1;
  int32_t world_size = 1;
  std::string backend;                                     // "nccl", "gloo", ... ("" = unknown)
  nlohmann::json device_properties = nlohmann::json::array();  // Kineto's deviceProperties
  std::string trace_name;                                  // what the trace is of (the command)
  nlohmann::json extra = nlohmann::json::object();         // more members, e.g. "nantrace": {...}
};

class ChromeTraceWriter {
 public:
  ChromeTraceWriter() = default;
  ~ChromeTraceWriter();
  ChromeTraceWriter(const ChromeTraceWriter&) = delete;
  ChromeTraceWriter& operator=(const ChromeTraceWriter&) = delete;

  // Creates the file with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode 0644 (less the umask):
  // an existing file or a planted symlink is refused. false + *error on failure.
  // base_ns: the epoch ns that the trace's time 0 stands for (the run's start); every ts is
  // written relative to it and the finished file records it as baseTimeNanoseconds.
  bool open(const std::string& path, std::string* error, int64_t base_ns = 0);
  // Takes ownership of an already open, writable descriptor (a pipe, /dev/full in tests).
  // `label` names it in error messages. false + *error when fd < 0 or already open.
  bool open_fd(int fd, const std::string& label, std::string* error, int64_t base_ns = 0);
  bool is_open() const;
  int64_t base_ns() const { return base_ns_; }

  // Metadata ("ph":"M") naming processes / threads in the viewer. `extra` adds members to
  // process_name's args (the live file's record of the base time and rank: a killed run's
  // trace has no header).
  void process_name(int64_t pid, const std::string& name, const nlohmann::json& extra = nullptr);
  void process_sort_index(int64_t pid, int64_t index);
  void thread_name(int64_t pid, int64_t tid, const std::string& name);
  void thread_sort_index(int64_t pid, int64_t tid, int64_t index);

  // ph "X". ts/dur in epoch ns on input, written relative to the base (trace_time::trace_micros).
  void complete(const std::string& name, const std::string& cat, int64_t pid, int64_t tid,
                int64_t ts_ns, int64_t dur_ns, const nlohmann::json& args = nullptr);
  // ph "i"; scope 'g' (global), 'p' (process) or 't' (thread; anything else becomes 't').
  void instant(const std::string& name, const std::string& cat, int64_t pid, int64_t tid,
               int64_t ts_ns, char scope, const nlohmann::json& args = nullptr);
  // ph "C": one counter track per name, one series per key. Only finite values are written
  // (catapult draws a whole track flat when one value is NaN); returns how many were left
  // out. Nothing is written when none is finite.
  size_t counter(const std::string& name, int64_t pid, int64_t ts_ns, const std::map<std::string, double>& values);
  // Kineto flow convention: cat = name = "ac2g", id = correlation id; "ph":"s" at the launch,
  // "ph":"f" with "bp":"e" at the kernel. Two events.
  void flow(uint64_t id, int64_t pid_from, int64_t tid_from, int64_t ts_from_ns, int64_t pid_to,
            int64_t tid_to, int64_t ts_to_ns);

  // One already formatted event (a JSON object whose ts is already relative to this base):
  // the merge's way of copying events from rank traces.
  void raw(const std::string& event_json);

  // Writes buffered bytes to the file now.
  void flush();
  // Appends "]" and closes; idempotent. Also done by the destructor. The file stays in the
  // array form.
  void close();
  // Closes, then writes the finished object form to final_path (atomically: temp + rename;
  // final_path may be the live path itself) and removes the live file when final_path is
  // another name. false + *error when that fails (the array form is left as it was, so the
  // trace still loads) or when the writer was not opened on a path.
  bool finish(const std::string& final_path, const TraceHeader& header, std::string* error);

  // Bytes of the trace accepted so far (on disk or buffered), and events accepted.
  uint64_t bytes_written() const;
  uint64_t events_written() const;

  // Write errors (ENOSPC, EFBIG, EIO...) are reported once through this callback (called
  // outside the writer's lock; also kept for last_error()); the writer then drops further
  // events without throwing, and truncates the file back to the last complete write so what
  // is on disk stays loadable.
  void set_error_callback(std::function<void(const std::string&)> cb);
  std::string last_error() const;

  // Buffering policy: bytes are written when the buffer holds more than kFlushBytes or when
  // the last write is older than kFlushInterval (checked on each event).
  static constexpr size_t kFlushBytes = 64 * 1024;
  static constexpr std::chrono::milliseconds kFlushInterval{1000};

 private:
  template <class F>
  void locked(F f);
  std::string ts(int64_t ts_ns) const;  // relative to the base
  void emit(const std::string& event_json, uint64_t count);
  void emit_locked(const std::string& event_json, uint64_t count);
  void write_buffer_locked();
  void fail_locked(const std::string& what, int err);

  mutable std::mutex mu_;
  int fd_ = -1;
  int read_fd_ = -1;  // the same file, kept open for finish() (-1 for open_fd)
  int64_t base_ns_ = 0;
  std::string label_;
  std::string buffer_;
  bool failed_ = false;
  bool error_pending_ = false;  // a failure not yet reported through on_error_
  bool closed_ = false;
  uint64_t events_ = 0;
  uint64_t bytes_ = 0;     // accepted, including buffered
  uint64_t on_disk_ = 0;   // bytes known complete on disk
  std::chrono::steady_clock::time_point last_write_{};
  std::function<void(const std::string&)> on_error_;
  std::string last_error_;
};

}  // namespace nantrace
