#include "runtime/trace_recorder.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>

#include "nantrace/nantrace.h"
#include "output/strict_json.h"

namespace nantrace {

namespace {

// The kernel's name for a thread of this process ("pt_autograd_0", "python3"), "" if unknown.
std::string thread_comm(int64_t tid) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/comm";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[64];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return "";
  std::string s(buf, size_t(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// GPU events use pid = device, tid = stream (Kineto's layout); their tracks sort after the host.
constexpr int64_t kDeviceSortBase = 1000;

}  // namespace

bool TraceRecorder::open(const std::string& path, const TraceOptions& options, int64_t pid, int64_t base_ns,
                         const std::string& label, std::string* error) {
  options_ = options;
  pid_ = pid;
  path_ = path;
  label_ = label.empty() ? "python" : label;
  if (!writer_.open(path, error, base_ns)) return false;
  name_process();
  return true;
}

void TraceRecorder::name_process() {
  // The base time and rank ride in process_name's args: a killed run's trace (the live array
  // form, no header) still says when its time 0 was and which rank wrote it.
  nlohmann::json extra = {{"nantrace_base_time_ns", writer_.base_ns()}};
  if (rank_ >= 0) extra["nantrace_rank"] = rank_;
  writer_.process_name(pid_, rank_ >= 0 ? "rank " + std::to_string(rank_) + " (" + label_ + ")" : label_, extra);
  writer_.process_sort_index(pid_, rank_ >= 0 ? rank_ : 0);
}

void TraceRecorder::set_rank(int32_t rank, int32_t /*world_size*/) {
  if (rank < 0 || rank == rank_) return;
  rank_ = rank;
  name_process();  // a later process_name replaces the earlier one in both viewers
}

void TraceRecorder::name_thread(int64_t pid, int64_t tid) {
  if (!named_threads_.insert({pid, tid}).second) return;
  if (pid != pid_) {  // a GPU: pid = device, tid = stream
    if (named_devices_.insert(pid).second) {
      writer_.process_name(pid, "GPU " + std::to_string(pid));
      writer_.process_sort_index(pid, kDeviceSortBase + pid);
    }
    writer_.thread_name(pid, tid, "stream " + std::to_string(tid));
    writer_.thread_sort_index(pid, tid, tid);
    return;
  }
  const std::string comm = thread_comm(tid);
  std::string name;
  if (tid == pid_) name = "main thread" + (comm.empty() ? std::string() : " (" + comm + ")");
  else name = "thread " + std::to_string(tid) + (comm.empty() ? std::string() : " (" + comm + ")");
  writer_.thread_name(pid, tid, name);
  writer_.thread_sort_index(pid, tid, tid == pid_ ? 0 : int64_t(named_threads_.size()));
}

void TraceRecorder::step_span(int64_t step, int64_t start_ns, int64_t end_ns, uint32_t tid) {
  if (over_budget(1.0)) return;
  name_thread(pid_, tid);
  writer_.complete("ProfilerStep#" + std::to_string(step), "user_annotation", pid_, tid, start_ns,
                   end_ns - start_ns, {{"step", step}});
}

void TraceRecorder::counter(const std::string& name, int64_t ts_ns, const std::map<std::string, double>& values,
                            uint32_t tid, int64_t step) {
  if (over_budget(1.0)) return;
  writer_.counter(name, pid_, ts_ns, values);
  for (const auto& [key, v] : values) {
    if (std::isfinite(v)) continue;
    const std::string text = strict_json::number(v).get<std::string>();
    name_thread(pid_, tid);
    nlohmann::json args = {{"value", text}, {"series", key}};
    if (step > 0) args["step"] = step;
    writer_.instant(name + " = " + text, "nantrace", pid_, tid, ts_ns, 'p', args);
  }
}

void TraceRecorder::marker(const std::string& name, const std::string& cat, int64_t ts_ns, uint32_t tid, char scope,
                           const nlohmann::json& args) {
  name_thread(pid_, tid);
  writer_.instant(name, cat, pid_, tid, ts_ns, scope, args);
}

bool TraceRecorder::detail_now(int64_t step) const {
  if (step <= options_.detail_steps) return true;
  return origin_step_ >= 0 && step >= origin_step_ && step < origin_step_ + options_.window;
}

void TraceRecorder::add_detail(int64_t step, Detail d) {
  if (over_budget(0.9)) {
    ++dropped_detail_;
    return;
  }
  if (detail_now(step)) {
    write_detail(d);
    return;
  }
  if (origin_step_ >= 0) {  // past the window after the fault
    ++dropped_detail_;
    return;
  }
  if (ring_.empty() || ring_.back().first != step) ring_.emplace_back(step, std::vector<Detail>{});
  ring_.back().second.push_back(std::move(d));
  while (ring_.size() > size_t(options_.window)) {
    dropped_detail_ += ring_.front().second.size();
    ring_.pop_front();
  }
}

void TraceRecorder::write_detail(const Detail& d) {
  if (d.is_kernel) {
    const KernelRecord& k = d.k;
    nlohmann::json args = {{"correlation", k.correlation_id}, {"stream", k.stream}, {"device", k.device},
                           {"step", k.step}};
    if (!k.module_path.empty()) args["module"] = k.module_path;
    if (!k.op.empty()) args["op"] = k.op;
    name_thread(k.device, int64_t(k.stream));
    writer_.complete(k.name, "kernel", k.device, int64_t(k.stream), k.start_ns, k.end_ns - k.start_ns, args);
    if (k.launch_ns > 0) name_thread(pid_, int64_t(k.launch_tid));
    if (k.launch_ns > 0) writer_.flow(k.correlation_id, pid_, k.launch_tid, k.launch_ns, k.device, int64_t(k.stream), k.start_ns);
    return;
  }
  const char* cat = d.kind == NT_SCOPE_OP ? "cpu_op" : d.kind == NT_SCOPE_MODULE ? "python_function" : "user_annotation";
  nlohmann::json args = nullptr;
  if (!d.type.empty()) args = {{"type", d.type}};
  name_thread(pid_, d.tid);
  writer_.complete(d.name, cat, pid_, d.tid, d.start_ns, d.end_ns - d.start_ns, args);
}

void TraceRecorder::module_span(int64_t step, const std::string& name, const std::string& type, int32_t kind,
                                uint32_t tid, int64_t start_ns, int64_t end_ns) {
  Detail d;
  d.name = name;
  d.type = type;
  d.kind = kind;
  d.tid = tid;
  d.start_ns = start_ns;
  d.end_ns = end_ns;
  add_detail(step, std::move(d));
}

void TraceRecorder::kernel(const KernelRecord& k) {
  Detail d;
  d.is_kernel = true;
  d.k = k;
  add_detail(k.step, std::move(d));
}

void TraceRecorder::on_step(int64_t step) { step_ = step; }

void TraceRecorder::on_origin(int64_t step) {
  if (origin_step_ >= 0) return;
  origin_step_ = step;
  for (auto& [s, events] : ring_)
    for (auto& d : events) write_detail(d);
  ring_.clear();
  writer_.flush();
}

}  // namespace nantrace
