#include "runtime/runtime.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/redact.h"
#include "core/scanner.h"
#include "output/file_io.h"
#include "output/report_json.h"
#include "output/report_markdown.h"
#include "output/run_files.h"
#include "output/run_merge.h"
#include "runtime/abi_records.h"
#include "runtime/announcements.h"
#include "runtime/scan_dispatch.h"
#include "runtime/crash_handler.h"
#include "runtime/log.h"
#include "runtime/thread_context.h"

namespace nantrace {
namespace {

void stop_at_exit() { Runtime::instance().stop(); }
void after_fork_in_child() { Runtime::instance().on_fork_child(); }

std::vector<std::string> read_argv() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  std::string cur;
  for (char c : raw) {
    if (c == '\0') {
      argv.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) argv.push_back(cur);
  return redact_argv(argv);
}

std::string read_cmdline() {
  std::string out;
  for (auto& a : read_argv()) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::string base_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// What the process is, as a user would say it: "python train.py", "python -m trainer".
std::string process_label() {
  const std::vector<std::string> argv = read_argv();
  if (argv.empty()) return "python";
  std::string label = base_name(argv[0]);
  if (argv.size() > 2 && (argv[1] == "-m" || argv[1] == "-c")) return label + " " + argv[1] + " " + argv[2].substr(0, 60);
  if (argv.size() > 1 && !argv[1].empty() && argv[1][0] != '-') label += " " + base_name(argv[1]);
  return label;
}

}  // namespace

Runtime& Runtime::instance() {
  // Never destroyed: atexit handlers and late threads may still call in during shutdown.
  static Runtime* r = new Runtime();
  return *r;
}

bool Runtime::start(const char* frontend) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_once_) return active();
  started_once_ = true;
  config_ = config_from_environment(&config_errors_);
  log::set_level(config_.log_level);
  // A child of the run (a rank, a spawned DataLoader worker) inherits the same environment:
  // only the process that chose the run directory reports bad settings on stderr.
  const char* owner = std::getenv("NANTRACE_RUN_DIR_OWNER");
  const bool child_of_run = !config_.run_dir.empty() && owner && std::to_string(::getpid()) != owner;
  if (!child_of_run)
    for (auto& e : config_errors_) log::error(e);
  if (config_.disabled || config_.check_level == CheckLevel::Off) return false;

  dir_ = plan_run_directory(config_.output_root, config_.run_dir, owner ? owner : "");
  // Children of this process (mp.spawn / torchrun ranks) join the same run directory, and
  // know from the owner that they are children (their files are named per process).
  if (!dir_.inherited) {
    ::setenv("NANTRACE_RUN_DIR", dir_.path.c_str(), 1);
    ::setenv("NANTRACE_RUN_DIR_OWNER", std::to_string(::getpid()).c_str(), 1);
  }
  // torchrun tells each rank who it is before torch.distributed is initialised.
  int64_t env_rank = -1, env_world = 0;
  if (const char* r = std::getenv("RANK")) parse_int_in_range(r, 0, 1 << 20, &env_rank);
  if (const char* w = std::getenv("WORLD_SIZE")) parse_int_in_range(w, 1, 1 << 20, &env_world);
  if (env_rank >= 0 && env_world > 1) {
    rank_ = int32_t(env_rank);
    world_size_ = int32_t(env_world);
    meta_["rank"] = std::to_string(rank_);
    meta_["world_size"] = std::to_string(world_size_);
  }
  analyzer_ = Analyzer(AnalyzerOptions{config_.warn_horizon});
  meta_["command"] = read_cmdline();
  start_ns_ = now_ns();
  meta_["pid"] = std::to_string(::getpid());
  meta_["frontend"] = frontend ? frontend : "";
  meta_["nantrace"] = NANTRACE_VERSION;  // project(nantrace VERSION ...) in CMakeLists.txt
  meta_["check_level"] = config_.check_level == CheckLevel::Op ? "op" : "module";
  meta_["every"] = config_.every == kEveryAuto ? std::string("auto") : std::to_string(config_.every);
  for (auto& [k, v] : meta_) analyzer_.on_meta(k, v);
  active_.store(true, std::memory_order_release);
  pthread_atfork(nullptr, nullptr, after_fork_in_child);
  // The final report is written from this atexit handler, which may run after static
  // destruction has begun: every function-local static it uses is heap-allocated and never
  // destroyed (tests/check_exit_statics.py keeps it so).
  std::atexit(stop_at_exit);
  return true;
}

bool Runtime::materialize_locked() {
  if (run_dir_ready_) return true;
  if (materialize_failed_) return false;
  std::string error;
  if (!create_run_directory(&dir_, &error)) {
    materialize_failed_ = true;
    log::error(error + "; nantrace records nothing in this run (the training is not affected)");
    active_.store(false);
    return false;
  }
  run_dir_ready_ = true;
  TraceOptions to;
  to.detail_steps = config_.warmup_detail_steps;
  to.window = config_.window;
  to.max_bytes = uint64_t(config_.max_trace_mb) << 20;
  trace_file_ = dir_.path + "/" + file_name("trace", "json");
  if (!trace_.open(trace_file_, to, ::getpid(), start_ns_, process_label(), &error)) {
    log::error(error + "; continuing without a trace");
    notes_.push_back("trace not written: " + error);
  }
  trace_.set_error_callback([](const std::string& e) {
    log::warn_once("trace-write", "trace writing stopped: " + e + " (the trace on disk stays loadable)");
  });
  if (rank_ >= 0 && world_size_ > 1) trace_.set_rank(rank_, world_size_);
  install_crash_handlers();
  // Once per run at the start: by the process that made the directory (the first rank to
  // write), or by its owner; the owner says it again at the end.
  if (dir_.made_here || !dir_.inherited) log::info("run directory: " + dir_.path);
  return true;
}

std::string Runtime::file_name(const std::string& stem, const std::string& ext) const {
  RunFileOwner owner;
  if (rank_ >= 0 && world_size_ > 1) owner = {RunFileOwner::Kind::Rank, rank_};
  else if (dir_.inherited) owner = {RunFileOwner::Kind::Pid, int64_t(::getpid())};
  return run_file_name(stem, ext, owner);
}

const char* Runtime::frontend_file_name(const std::string& stem, const std::string& ext) {
  auto all_of = [](const std::string& s, const char* extra) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
      if (!((c >= 'a' && c <= 'z') || (*extra && c == *extra))) return false;
    return true;
  };
  if (!all_of(stem, "_") || !all_of(ext, "")) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  run_file_name_ = file_name(stem, ext);
  return run_file_name_.c_str();
}

int64_t Runtime::config_int(const std::string& key) {
  if (key == "check_level") return active() ? int64_t(config_.check_level) : 0;
  if (key == "every") return config_.every;
  if (key == "window") return config_.window;
  if (key == "warn_horizon") return config_.warn_horizon;
  if (key == "active") return active() ? 1 : 0;
  return -1;
}

void Runtime::set_rank(int32_t rank, int32_t world_size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!active() || rank < 0 || world_size < 1) return;
  if (rank_ == rank && world_size_ == world_size) return;
  rank_ = rank;
  world_size_ = world_size;
  meta_["rank"] = std::to_string(rank);
  meta_["world_size"] = std::to_string(world_size);
  if (run_dir_ready_ && world_size > 1) trace_.set_rank(rank, world_size);
}

void Runtime::set_meta(const std::string& key, const std::string& value) {
  if (!active()) return;
  std::lock_guard<std::mutex> lock(mu_);
  const std::string v = redact(value).substr(0, 4096);
  meta_[key] = v;
  analyzer_.on_meta(key, v);
}

void Runtime::end_step_locked(int64_t ts_ns) {
  const int64_t cur = step_.load();
  if (cur <= 0) return;
  trace_.step_span(cur, step_start_ns_, ts_ns, step_tid_);
  if (step_half_max_ >= 0)
    trace_.counter("fp16/bf16 largest |x|", ts_ns, {{"max_abs", step_half_max_}}, step_tid_, cur);
  step_half_max_ = -1;
}

void Runtime::step_begin(int64_t step) {
  if (!active()) return;
  const int64_t ts = now_ns();
  std::lock_guard<std::mutex> lock(mu_);
  if (!materialize_locked()) return;
  end_step_locked(ts);
  step_.store(step);
  step_start_ns_ = ts;
  step_tid_ = this_thread_context().tid;
  scalars_this_step_.clear();
  trace_.on_step(step);
  SequencedItem item;
  item.kind = SequencedItem::Kind::StepBegin;
  item.step = step;
  sequencer_.put(sequencer_.reserve(), std::move(item));
  drain_locked();
  if (report_dirty_) write_reports_locked(false);
}

void Runtime::scope_push(int32_t kind, const char* name, const char* type) {
  if (!active()) return;
  ThreadContext& ctx = this_thread_context();
  Scope s;
  s.kind = kind;
  s.name = name ? name : "";
  s.type = type ? type : "";
  s.start_ns = now_ns();
  ctx.scopes.push_back(std::move(s));
}

void Runtime::scope_pop() {
  if (!active()) return;
  ThreadContext& ctx = this_thread_context();
  if (ctx.scopes.empty()) return;
  Scope s = std::move(ctx.scopes.back());
  ctx.scopes.pop_back();
  const int64_t end = now_ns();
  std::lock_guard<std::mutex> lock(mu_);
  if (!materialize_locked()) return;
  trace_.module_span(step_.load(), s.name, s.type, s.kind, ctx.tid, s.start_ns, end);
}

int Runtime::check(const nt_site& site, const nt_tensor& t, nt_stats* out) {
  if (!active()) return NT_SKIPPED;
  if (!abi_tensor_supported(t)) {
    log::warn_once("check-args", "a check was given an unsupported tensor (dtype " + std::to_string(t.dtype) +
                                     ", ndim " + std::to_string(t.ndim) + "); such checks are skipped");
    return NT_SKIPPED;
  }
  ThreadContext& ctx = this_thread_context();
  CheckRecord rec = check_record_from_abi(site, t);
  rec.step = step_.load();
  rec.ts_ns = now_ns();
  rec.tid = ctx.tid;
  const TensorView view = tensor_view_from_abi(t);

  if (rec.device == Device::CUDA) {
#ifdef NANTRACE_HAVE_CUDA
    std::lock_guard<std::mutex> lock(mu_);
    if (!materialize_locked()) return NT_SKIPPED;
    if (!cuda_ready_ && config_.cuda) cuda_ready_ = cuda::initialize(this);
    const uint64_t seq = sequencer_.reserve();
    rec.seq = seq;
    const cuda::ScanRequest req = device_scan_request(t, seq);
    std::string reason;
    SequencedItem item;
    item.kind = SequencedItem::Kind::Check;
    if (cuda_ready_ && cuda::enqueue_scan(req, &reason) == cuda::EnqueueResult::Pending) {
      item.ready = false;
      item.check = std::move(rec);
      sequencer_.put(seq, std::move(item));
      return NT_PENDING;
    }
    rec.checked = false;
    rec.skip_reason = !config_.cuda ? "not checked: NANTRACE_CUDA=off"
                      : reason.empty() ? "not checked: CUDA scan unavailable" : reason;
    item.check = std::move(rec);
    sequencer_.put(seq, std::move(item));
    drain_locked();
    return NT_SKIPPED;
#else
    log::warn_once("no-cuda-build", "CUDA tensors are not checked: this libnantrace.so was built without the CUDA "
                                    "adapter (no CUDA toolkit at build time)");
    return NT_SKIPPED;
#endif
  }

  // CPU: scan in the calling thread, outside the lock.
  // The headroom histogram of a non-finite output is evidence for the first ones (the origin,
  // its relay, the first recurrences); later outputs full of NaN keep their counts only.
  const bool histogram = nonfinite_histograms_left_.load(std::memory_order_relaxed) > 0;
  const std::optional<TensorStats> stats = scan_on_cpu(view, rec.site.role, histogram);
  if (histogram && stats && rec.site.role == Role::Output && has_nonfinite(*stats))
    nonfinite_histograms_left_.fetch_sub(1, std::memory_order_relaxed);
  if (!stats) {
    log::warn_once("check-view", "a tensor view nantrace cannot scan (null data or unusable shape) was skipped");
    return NT_SKIPPED;
  }
  rec.stats = *stats;
  if (out) *out = rec.stats;
  const int result = has_nonfinite(rec.stats) ? NT_NONFINITE : NT_FINITE;

  std::lock_guard<std::mutex> lock(mu_);
  if (!materialize_locked()) return result;
  rec.seq = sequencer_.reserve();
  SequencedItem item;
  item.kind = SequencedItem::Kind::Check;
  const uint64_t seq = rec.seq;
  item.check = std::move(rec);
  sequencer_.put(seq, std::move(item));
  drain_locked();
  return result;
}

void Runtime::drain_locked() {
  sequencer_.drain([this](SequencedItem& item) { consume(item); });
}

void Runtime::consume(SequencedItem& item) {
  switch (item.kind) {
    case SequencedItem::Kind::StepBegin:
      analyzer_.on_step_begin(item.step);
      break;
    case SequencedItem::Kind::Check: {
      const CheckOutcome outcome = analyzer_.on_check(item.check);
      after_check(item.check, outcome);
      break;
    }
    case SequencedItem::Kind::Event: {
      const CheckOutcome outcome = analyzer_.on_event(item.event);
      if (outcome.poisoned_checkpoint) {
        log::warn(announce::poisoned_checkpoint(*outcome.poisoned_checkpoint));
        report_dirty_ = true;
      }
      if (outcome.new_benign_skip)
        trace_.marker("GradScaler skipped step (handled)", "nantrace", item.event.ts_ns, this_thread_context().tid, 'p',
                      {{"step", item.event.step}});
      break;
    }
    case SequencedItem::Kind::Scalar:
      if (const auto b = analyzer_.on_scalar(item.scalar)) {
        log::warn(announce::loss_blowup(*b));
        trace_.marker("loss blow-up (no NaN)", "nantrace", item.scalar.ts_ns, this_thread_context().tid, 'p',
                      {{"step", b->begin_step}, {"baseline", b->baseline}, {"level", b->level}, {"module", b->module}});
        report_dirty_ = true;
      }
      break;
  }
}

void Runtime::after_check(const CheckRecord& rec, const CheckOutcome& outcome) {
  if (rec.checked && rec.site.role == Role::Output && rec.site.phase == Phase::Forward && is_half(rec.dtype))
    step_half_max_ = std::max(step_half_max_, rec.stats.max_abs_finite);
  if (outcome.warning) {
    const HeadroomWarning& w = *outcome.warning;
    // One stderr line per warning for the first few; the rest are in the trace and report.
    if (++warnings_printed_ <= kMaxWarningLines)
      log::warn(announce::early_warning(w));
    else if (warnings_printed_ == kMaxWarningLines + 1)
      log::warn("more early warnings are in the report and the trace");
    trace_.marker("headroom warning: " + w.module_path, "nantrace", rec.ts_ns, rec.tid, 'p',
                  {{"step", w.step}, {"max_abs", w.max_abs}, {"binades_left", w.binades_left}, {"reason", w.reason}});
    report_dirty_ = true;
  }
  if (outcome.nonfinite && nonfinite_markers_ < 200) {
    ++nonfinite_markers_;
    trace_.marker("non-finite: " + rec.site.module_path + " " + rec.site.tensor_name, "nantrace", rec.ts_ns, rec.tid, 't',
                  {{"phase", to_string(rec.site.phase)}, {"nan", rec.stats.nan_count},
                   {"posinf", rec.stats.posinf_count}, {"neginf", rec.stats.neginf_count}, {"step", rec.step}});
  }
  if (outcome.new_origin && !origin_reported_) {
    origin_reported_ = true;
    const Finding f = analyzer_.finding();
    log::warn(announce::first_nonfinite(f.origin));
    nlohmann::json extra = nlohmann::json::object();
    if (f.backward) {
      log::warn(announce::backward_birth(f));
      extra = {{"first_seen_at", f.backward->seen_at}, {"backward_node", f.backward->node}};
    }
    mark_origin_locked(f, "NaN/Inf origin: ", extra);
    trace_.on_origin(f.origin.step);
    write_reports_locked(false);  // a crash right after the fault still leaves a report
    report_dirty_ = true;         // rewritten with the evidence that follows
  }
  if (outcome.new_evaluation) {
    // Its own finding: one line, one marker; the training fault (if any) is announced apart.
    log::warn(announce::evaluation(rec, origin_reported_));
    trace_.marker("non-finite in evaluation: " + rec.site.module_path, "nantrace", rec.ts_ns, rec.tid, 'p',
                  {{"step", rec.step}, {"module", rec.site.module_path}, {"tensor", rec.site.tensor_name},
                   {"nan", rec.stats.nan_count}, {"inf", rec.stats.posinf_count + rec.stats.neginf_count}});
    report_dirty_ = true;
  }
  if (outcome.origin_located) {
    const Finding f = analyzer_.finding();
    log::warn(announce::origin_located(f));
    mark_origin_locked(f, "NaN/Inf origin located: ", {{"located_at_step", f.origin.step}});
    report_dirty_ = true;
  }
}

// The evidence that came after the first announcement moved the origin (followed back into an
// enclosing module's code): stderr says in one line why, and the trace marks the origin the
// report names, so that stderr, the report and the trace tell one story.
void Runtime::announce_origin_moved_locked() {
  if (!announced_origin_) return;
  const Finding f = analyzer_.finding();
  if (!f.found || (f.origin.site.module_path == announced_origin_->site.module_path &&
                   f.origin.site.phase == announced_origin_->site.phase))
    return;
  log::warn(announce::origin_moved(*announced_origin_, f));
  mark_origin_locked(f, "NaN/Inf origin: ",
                     {{"op", f.op}, {"kind", to_string(f.kind)}, {"first_seen_at", announced_origin_->site.module_path}});
}

// The trace marker of the origin as it is now named (first seen, located later, or moved into
// an enclosing module), with the fault's step; the origin stderr and the trace last named.
// Process-scoped: in a merged trace only the merge's "the fault began here" is global.
void Runtime::mark_origin_locked(const Finding& f, const std::string& label, nlohmann::json extra) {
  nlohmann::json args = {{"step", f.step()}, {"phase", to_string(f.origin.site.phase)},
                         {"module", f.origin.site.module_path}, {"tensor", f.origin.site.tensor_name}};
  for (auto& [k, v] : extra.items()) args[k] = v;
  trace_.marker(label + f.origin.site.module_path, "nantrace", f.origin.ts_ns, f.origin.tid, 'p', args);
  announced_origin_ = f.origin;
}

void Runtime::scalar(const std::string& name, double value, int64_t step) {
  if (!active()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!materialize_locked()) return;
  SequencedItem item;
  item.kind = SequencedItem::Kind::Scalar;
  item.scalar.step = step >= 1 ? step : step_.load();
  item.scalar.ts_ns = now_ns();
  item.scalar.value = value;
  // Several values of one name in a step (a GAN's D and G losses) are separate series, in the
  // trace and the report alike: "loss", "loss #2", ... in the order the step reports them.
  const int nth = ++scalars_this_step_[name + '\x1f' + std::to_string(item.scalar.step)];  // per step it belongs to
  const std::string series = nth == 1 ? name : name + " #" + std::to_string(nth);
  item.scalar.name = series;
  trace_.counter(series, item.scalar.ts_ns, {{series, value}}, this_thread_context().tid, item.scalar.step);
  sequencer_.put(sequencer_.reserve(), std::move(item));
  drain_locked();
}

void Runtime::event(int32_t kind, const std::string& name, const std::string& detail) {
  if (!active()) return;
  std::lock_guard<std::mutex> lock(mu_);
  // Configuration facts alone do not make a run worth a directory; anything else does.
  if (kind != NT_EVENT_CONFIG && !materialize_locked()) return;
  SequencedItem item;
  item.kind = SequencedItem::Kind::Event;
  item.event.step = step_.load();
  item.event.ts_ns = now_ns();
  item.event.kind = kind;
  item.event.name = redacted_name_locked(name);
  item.event.detail_json = detail;
  if (kind == NT_EVENT_CHECKPOINT || kind == NT_EVENT_CHECK_MODE || kind == NT_EVENT_WARNING || kind == NT_EVENT_CONFIG) {
    nlohmann::json args = nlohmann::json::parse(detail.empty() ? "{}" : detail, nullptr, false);
    if (args.is_discarded()) args = {{"detail", detail}};
    trace_.marker(item.event.name, "nantrace", item.event.ts_ns, this_thread_context().tid, 't', args);
  }
  sequencer_.put(sequencer_.reserve(), std::move(item));
  drain_locked();
}

// Event names repeat every step ("AdamW#0", "GradScaler"): redaction (regular expressions,
// several microseconds) is done once per distinct name.
const std::string& Runtime::redacted_name_locked(const std::string& name) {
  auto it = redacted_names_.find(name);
  if (it != redacted_names_.end()) return it->second;
  if (redacted_names_.size() >= 4096) redacted_names_.clear();
  return redacted_names_.emplace(name, redact(name)).first->second;
}

int64_t Runtime::stat(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (key == "checks") return int64_t(analyzer_.checks());
  if (key == "nonfinite_checks") return int64_t(analyzer_.nonfinite_checks());
  return -1;
}

bool Runtime::origin_found() {
  if (!active()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return analyzer_.origin_found();
}

const char* Runtime::finding_json() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!run_dir_ready_) {
    finding_json_ = "{}";
  } else {
    Report r = analyzer_.build_report();
    nlohmann::json f = report_to_json(r)["finding"];
    f["capture_module"] = analyzer_.capture_target();  // the library decides; the frontend captures
    finding_json_ = f.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return finding_json_.c_str();
}

void Runtime::note_locked(const std::string& note) {
  if (notes_.size() < 100) notes_.push_back(note);
}

void Runtime::write_reports_locked(bool final) {
  if (!run_dir_ready_) return;
  Report r = analyzer_.build_report();
  for (const auto& [k, v] : meta_)
    if (k.rfind("trace.", 0) != 0) r.environment[k] = v;  // "trace.*" facts are for the trace header
  r.rank = rank_;
  r.world_size = world_size_;
  r.run_dir = dir_.path;
  for (auto& n : notes_) r.notes.push_back(n);
  for (auto& e : config_errors_) r.notes.push_back("configuration: " + e);
  if (trace_.dropped_detail() > 0)
    r.notes.push_back(std::to_string(trace_.dropped_detail()) +
                      " detail trace events (module spans, kernels) outside the window around the fault were not "
                      "written; step spans and counters cover every step");
  if (!final) r.notes.push_back("provisional report: the run was still going when this was written");
  std::string error;
  if (!write_file_atomic(dir_.path + "/" + file_name("report", "json"), report_to_json_text(r), &error) ||
      !write_file_atomic(dir_.path + "/" + file_name("report", "md"), render_markdown(r), &error))
    log::warn_once("report-write", "cannot write the report: " + error);
  report_dirty_ = false;
}

void Runtime::stop() {
  if (forked_child_.load() || !active() || stopped_.exchange(true)) return;
#ifdef NANTRACE_HAVE_CUDA
  if (cuda_ready_) {
    cuda::flush(2000);
    cuda::shutdown();
  }
#endif
  std::lock_guard<std::mutex> lock(mu_);
  if (!run_dir_ready_) {
    // This process never trained (an mp.spawn / torchrun launcher, a script that only imports
    // torch): it writes nothing, but merges what its child ranks wrote into its directory.
    active_.store(false);
    merge_children_locked();
    return;
  }
  sequencer_.fail_all_pending("not checked: the device result did not arrive before exit");
  drain_locked();
  const CheckOutcome outcome = analyzer_.finish();
  if (outcome.new_origin) {
    after_check(analyzer_.finding().origin, outcome);
  }
  announce_origin_moved_locked();
  end_step_locked(now_ns());
  finish_trace_locked();
  if (dir_.inherited && rank_ >= 0 && world_size_ > 1) {
    // Provisional pid-named reports of this process are superseded by the rank-named ones.
    const RunFileOwner self{RunFileOwner::Kind::Pid, int64_t(::getpid())};
    ::unlink((dir_.path + "/" + run_file_name("report", "json", self)).c_str());
    ::unlink((dir_.path + "/" + run_file_name("report", "md", self)).c_str());
  }
  write_reports_locked(true);
  active_.store(false);
  const Finding f = analyzer_.finding();
  if (f.found) {
    log::warn(announce::finding(f));
    log::warn(announce::fix(f));
  } else {
    log::info(announce::finding(f));
  }
  // A child whose rank is not known writes pid-named files that its launcher renames (the
  // only process) or merges: the launcher names the files that stay.
  const bool pid_named = dir_.inherited && !(rank_ >= 0 && world_size_ > 1);
  if (!pid_named) {
    log::info("report: " + dir_.path + "/" + file_name("report", "md"));
    log::info("trace: " + trace_file_ + " (open in https://ui.perfetto.dev or chrome://tracing)");
  }
  if (!dir_.inherited) log::info("run directory: " + dir_.path);
}

void Runtime::on_fatal_signal(int sig, const std::string& backtrace) {
  if (forked_child_.load() || !active()) return;
  // Inside a signal handler: never wait for the lock (the interrupted code may hold it).
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  note_locked("the process received signal " + std::to_string(sig) + " (" + strsignal(sig) + ")" +
              (backtrace.empty() ? std::string() : "; native backtrace:\n" + backtrace));
  end_step_locked(now_ns());
  trace_.flush();
  write_reports_locked(true);
  finish_trace_locked();
  stopped_.store(true);
  active_.store(false);
}

void Runtime::finish_trace_locked() {
  if (!trace_.is_open()) return;
  // Rank-named files: the rank may only have become known after the trace was opened.
  const std::string final_trace = dir_.path + "/" + file_name("trace", "json");
  TraceHeader h;
  h.rank = rank_ >= 0 ? rank_ : (world_size_ <= 1 && !dir_.inherited ? 0 : -1);
  h.world_size = rank_ >= 0 ? world_size_ : 1;
  if (auto it = meta_.find("distributed_backend"); it != meta_.end()) h.backend = it->second;
  if (auto it = meta_.find("command"); it != meta_.end()) h.trace_name = it->second;
  if (auto it = meta_.find("trace.device_properties"); it != meta_.end()) {
    nlohmann::json props = nlohmann::json::parse(it->second, nullptr, false);
    if (props.is_array()) h.device_properties = props;
  }
  h.extra["nantrace"] = {{"version", meta_["nantrace"]}, {"pid", int64_t(::getpid())}};
  std::string error;
  if (trace_.finish(final_trace, h, &error)) {
    trace_file_ = final_trace;
    return;
  }
  log::warn_once("trace-finish", error);
  if (final_trace != trace_file_ && ::rename(trace_file_.c_str(), final_trace.c_str()) == 0) trace_file_ = final_trace;
}

void Runtime::merge_children_locked() {
  // Only the process that chose the run directory merges, and only what its children wrote.
  if (dir_.inherited) return;
  struct stat st {};
  if (::stat(dir_.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  std::string error;
  if (const auto single = promote_single_process_files(dir_.path, &error)) {
    log::info("report: " + single->report_md);
    log::info("trace: " + single->trace_json + " (open in https://ui.perfetto.dev or chrome://tracing)");
    log::info("run directory: " + dir_.path);
    return;
  }
  if (!error.empty()) log::warn("cannot give the one process's files their single-process names: " + error);
  const MergeResult m = merge_run_directory(dir_.path);
  for (auto& e : m.errors) log::warn("merge: " + e);
  if (m.ranks_merged == 0) return;
  log::info("merged " + std::to_string(m.ranks_merged) + " rank report(s)");
  if (!m.report_md.empty()) log::info("report: " + m.report_md);
  if (!m.trace_json.empty()) log::info("trace: " + m.trace_json + " (open in https://ui.perfetto.dev or chrome://tracing)");
  log::info("run directory: " + dir_.path);
}

void Runtime::on_fork_child() {
  // The parent owns the run's files; a forked child (DataLoader worker) stays silent.
  forked_child_.store(true);
  active_.store(false);
}

void Runtime::initialize_cuda_injection() {
#ifdef NANTRACE_HAVE_CUDA
  // CUDA initialised before torch hooks started nantrace: tracing starts now, checks later.
  if (!active()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!cuda_ready_ && config_.cuda) cuda_ready_ = cuda::initialize(this);
#endif
}

#ifdef NANTRACE_HAVE_CUDA
cuda::LaunchContext Runtime::launch_context() {
  cuda::LaunchContext c;
  c.step = step_.load(std::memory_order_relaxed);
  const ThreadContext& ctx = this_thread_context();
  if (const Scope* m = ctx.innermost(NT_SCOPE_MODULE)) c.module_path = m->name;
  if (const Scope* o = ctx.innermost(NT_SCOPE_OP)) c.op = o->name;
  return c;
}

void Runtime::on_kernel(KernelRecord rec) {
  if (!active()) return;
  std::lock_guard<std::mutex> lock(mu_);
  trace_.kernel(rec);
}

void Runtime::on_scan_result(uint64_t seq, const TensorStats& stats, std::vector<std::string> kernels) {
  if (!active()) return;
  std::lock_guard<std::mutex> lock(mu_);
  sequencer_.complete(seq, stats, std::move(kernels));
  drain_locked();
}

void Runtime::on_scan_failed(uint64_t seq, const std::string& reason) {
  if (!active()) return;
  std::lock_guard<std::mutex> lock(mu_);
  sequencer_.fail(seq, reason);
  drain_locked();
}

void Runtime::log_once(const std::string& key, const std::string& message) { log::warn_once(key, message); }
#endif

}  // namespace nantrace
