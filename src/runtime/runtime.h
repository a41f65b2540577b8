// The runtime: one per process. Wires the C ABI to the core (scanner, sequencer, analyzer),
// the writers (trace, report) and, when built, the CUDA adapter. Every entry point is
// exception-safe at the ABI layer (abi.cpp); here we keep state consistent under one mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/analyzer.h"
#include "core/config.h"
#include "core/sequencer.h"
#include "nantrace/nantrace.h"
#include "runtime/run_directory.h"
#include "runtime/trace_recorder.h"

#ifdef NANTRACE_HAVE_CUDA
#include "cuda/cuda_adapter.h"
#endif

namespace nantrace {

class Runtime
#ifdef NANTRACE_HAVE_CUDA
    : public cuda::Host
#endif
{
 public:
  static Runtime& instance();

  bool start(const char* frontend);
  void stop();
  bool active() const { return active_.load(std::memory_order_acquire); }
  int64_t config_int(const std::string& key);
  // The run directory's path once started (created on the first record, so it may not exist yet).
  const char* run_dir() const { return active() || run_dir_ready_ ? dir_.path.c_str() : nullptr; }
  // nantrace_run_file_name: file_name() for the frontend, validated.
  const char* frontend_file_name(const std::string& stem, const std::string& ext);
  void set_rank(int32_t rank, int32_t world_size);
  void set_meta(const std::string& key, const std::string& value);
  void step_begin(int64_t step);
  void scope_push(int32_t kind, const char* name, const char* type);
  void scope_pop();
  int check(const nt_site& site, const nt_tensor& tensor, nt_stats* out);
  // step < 1: the current step.
  void scalar(const std::string& name, double value, int64_t step = -1);
  void event(int32_t kind, const std::string& name, const std::string& detail);
  bool origin_found();
  int64_t stat(const std::string& key);  // nantrace_stat
  const char* finding_json();
  // After fork() in the child: this process records nothing (the parent owns the files).
  void on_fork_child();
  // From the fatal-signal handler: best effort, never blocks.
  void on_fatal_signal(int sig, const std::string& backtrace);
  // Called from the CUDA injection entry point.
  void initialize_cuda_injection();

#ifdef NANTRACE_HAVE_CUDA
  cuda::LaunchContext launch_context() override;
  void on_kernel(KernelRecord rec) override;
  void on_scan_result(uint64_t seq, const TensorStats& stats, std::vector<std::string> kernels) override;
  void on_scan_failed(uint64_t seq, const std::string& reason) override;
  void log_once(const std::string& key, const std::string& message) override;
#endif

 private:
  Runtime() = default;
  void consume(SequencedItem& item);  // in program order, lock held
  void drain_locked();
  void after_check(const CheckRecord& rec, const CheckOutcome& outcome);
  void write_reports_locked(bool final);
  void end_step_locked(int64_t ts_ns);
  std::string file_name(const std::string& stem, const std::string& ext) const;
  void note_locked(const std::string& note);
  // Creates the run directory and the trace on the first record; false when that failed.
  bool materialize_locked();
  void merge_children_locked();
  void announce_origin_moved_locked();
  void mark_origin_locked(const Finding& f, const std::string& label, nlohmann::json extra);
  // Ends the trace: the finished object form under its final (rank-)name, or the array form
  // renamed when finishing fails.
  void finish_trace_locked();

  const std::string& redacted_name_locked(const std::string& name);
  std::unordered_map<std::string, std::string> redacted_names_;  // event name -> redacted (bounded)
  std::mutex mu_;
  std::atomic<bool> active_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> forked_child_{false};
  std::atomic<int64_t> step_{0};
  // Non-finite CPU outputs still given the headroom histogram (a second read of the tensor).
  std::atomic<int> nonfinite_histograms_left_{256};
  bool started_once_ = false;
  bool run_dir_ready_ = false;
  bool materialize_failed_ = false;
  Config config_;
  std::vector<std::string> config_errors_;
  RunDirectory dir_;
  int32_t rank_ = -1, world_size_ = 1;
  std::map<std::string, std::string> meta_;
  std::vector<std::string> notes_;
  Sequencer sequencer_;
  Analyzer analyzer_;
  TraceRecorder trace_;
  std::string trace_file_;
  int64_t start_ns_ = 0;                       // time 0 of the trace
  std::map<std::string, int> scalars_this_step_;  // how often each (scalar name, step) came since the step began
  int64_t step_start_ns_ = 0;
  uint32_t step_tid_ = 0;
  double step_half_max_ = -1;   // largest |x| of fp16/bf16 forward outputs in the current step
  bool origin_reported_ = false;
  std::optional<CheckRecord> announced_origin_;  // the origin as stderr and the trace first named it
  bool report_dirty_ = false;
  uint64_t nonfinite_markers_ = 0;
  int warnings_printed_ = 0;
  static constexpr int kMaxWarningLines = 3;
  std::string finding_json_;
  std::string run_file_name_;  // nantrace_run_file_name's answer
  bool cuda_ready_ = false;
};

}  // namespace nantrace
