#include "runtime/trace_recorder.h"

#include "nantrace/nantrace.h"

namespace nantrace {

bool TraceRecorder::open(const std::string& path, const TraceOptions& options, int64_t pid, std::string* error) {
  options_ = options;
  pid_ = pid;
  path_ = path;
  if (!writer_.open(path, error)) return false;
  writer_.process_name(pid_, "python (pid " + std::to_string(pid_) + ")");
  writer_.process_sort_index(pid_, 0);
  return true;
}

void TraceRecorder::step_span(int64_t step, int64_t start_ns, int64_t end_ns, uint32_t tid) {
  if (over_budget(1.0)) return;
  writer_.complete("ProfilerStep#" + std::to_string(step), "user_annotation", pid_, tid, start_ns,
                   end_ns - start_ns, {{"step", step}});
}

void TraceRecorder::counter(const std::string& name, int64_t ts_ns, const std::map<std::string, double>& values) {
  if (over_budget(1.0)) return;
  writer_.counter(name, pid_, ts_ns, values);
}

void TraceRecorder::marker(const std::string& name, const std::string& cat, int64_t ts_ns, uint32_t tid, char scope,
                           const nlohmann::json& args) {
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
    writer_.complete(k.name, "kernel", k.device, int64_t(k.stream), k.start_ns, k.end_ns - k.start_ns, args);
    if (k.launch_ns > 0) writer_.flow(k.correlation_id, pid_, k.launch_tid, k.launch_ns, k.device, int64_t(k.stream), k.start_ns);
    return;
  }
  const char* cat = d.kind == NT_SCOPE_OP ? "cpu_op" : d.kind == NT_SCOPE_MODULE ? "python_function" : "user_annotation";
  nlohmann::json args = nullptr;
  if (!d.type.empty()) args = {{"type", d.type}};
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
