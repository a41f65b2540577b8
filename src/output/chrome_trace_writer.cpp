// Chrome trace streaming: events are formatted here by hand around nlohmann-dumped strings
// and args, because timestamps must be exact (see output/trace_time.h) and the
// distributedInfo line must keep the "rank": N spacing HTA looks for.
#include "output/chrome_trace_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "output/file_io.h"
#include "output/strict_json.h"
#include "output/trace_time.h"

namespace nantrace {

namespace {

using strict_json::quote;

// ',"args":{...}' or '' for null args; a non-object is wrapped as {"value": ...}.
std::string args_field(const nlohmann::json& args) {
  if (args.is_null()) return "";
  if (args.is_object()) return ",\"args\":" + strict_json::dump(args);
  return ",\"args\":" + strict_json::dump(nlohmann::json{{"value", args}});
}

std::string ids(int64_t pid, int64_t tid) {
  return ",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid);
}

}  // namespace

ChromeTraceWriter::~ChromeTraceWriter() {
  close();
  if (read_fd_ >= 0) ::close(read_fd_);
}

// Perfetto drops events with a negative timestamp (trace_sorter_negative_timestamp_dropped):
// anything stamped before the base (a clock read just before the run's start) is put at 0.
std::string ChromeTraceWriter::ts(int64_t ts_ns) const {
  return trace_time::trace_micros(ts_ns > base_ns_ ? ts_ns - base_ns_ : 0);
}

bool ChromeTraceWriter::open(const std::string& path, std::string* error, int64_t base_ns) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ >= 0 || closed_) {  // checked first so a refused open creates no file
      if (error) *error = "cannot open trace " + path + ": writer already used";
      return false;
    }
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = "cannot create trace " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!open_fd(fd, path, error, base_ns)) {
    ::close(fd);
    return false;
  }
  // A second descriptor on the same file, read by finish(): the path may be renamed meanwhile.
  const int rfd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  std::lock_guard<std::mutex> lock(mu_);
  read_fd_ = rfd;
  return true;
}

bool ChromeTraceWriter::open_fd(int fd, const std::string& label, std::string* error, int64_t base_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd < 0 || fd_ >= 0 || closed_) {
    if (error) *error = "cannot open trace " + label + (fd < 0 ? ": bad descriptor" : ": writer already used");
    return false;
  }
  fd_ = fd;
  base_ns_ = base_ns;
  label_ = label;
  buffer_ = "[\n";
  bytes_ = buffer_.size();
  last_write_ = std::chrono::steady_clock::now();
  // The opening bracket reaches the disk at once: a run killed (or a disk filled) before the
  // first flush still leaves a trace that loads.
  write_buffer_locked();
  return true;
}

bool ChromeTraceWriter::is_open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fd_ >= 0;
}

void ChromeTraceWriter::set_error_callback(std::function<void(const std::string&)> cb) {
  std::lock_guard<std::mutex> lock(mu_);
  on_error_ = std::move(cb);
}

std::string ChromeTraceWriter::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

uint64_t ChromeTraceWriter::bytes_written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

uint64_t ChromeTraceWriter::events_written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

void ChromeTraceWriter::process_name(int64_t pid, const std::string& name, const nlohmann::json& extra) {
  nlohmann::json args = extra.is_object() ? extra : nlohmann::json::object();
  args["name"] = name;
  emit("{\"name\":\"process_name\",\"ph\":\"M\"" + ids(pid, 0) + ",\"args\":" + strict_json::dump(args) + "}", 1);
}

void ChromeTraceWriter::process_sort_index(int64_t pid, int64_t index) {
  emit("{\"name\":\"process_sort_index\",\"ph\":\"M\"" + ids(pid, 0) +
                  ",\"args\":{\"sort_index\":" + std::to_string(index) + "}}",
              1);
}

void ChromeTraceWriter::thread_name(int64_t pid, int64_t tid, const std::string& name) {
  emit("{\"name\":\"thread_name\",\"ph\":\"M\"" + ids(pid, tid) + ",\"args\":{\"name\":" + quote(name) + "}}",
              1);
}

void ChromeTraceWriter::thread_sort_index(int64_t pid, int64_t tid, int64_t index) {
  emit("{\"name\":\"thread_sort_index\",\"ph\":\"M\"" + ids(pid, tid) +
           ",\"args\":{\"sort_index\":" + std::to_string(index) + "}}",
       1);
}

void ChromeTraceWriter::complete(const std::string& name, const std::string& cat, int64_t pid, int64_t tid,
                                 int64_t ts_ns, int64_t dur_ns, const nlohmann::json& args) {
  std::string e = "{\"name\":" + quote(name) + ",\"cat\":" + quote(cat) + ",\"ph\":\"X\"" + ids(pid, tid) +
                  ",\"ts\":" + ts(ts_ns) + ",\"dur\":" + trace_time::trace_micros(dur_ns < 0 ? 0 : dur_ns) + args_field(args) +
                  "}";
  emit(e, 1);
}

void ChromeTraceWriter::instant(const std::string& name, const std::string& cat, int64_t pid, int64_t tid,
                                int64_t ts_ns, char scope, const nlohmann::json& args) {
  if (scope != 'g' && scope != 'p') scope = 't';
  std::string e = "{\"name\":" + quote(name) + ",\"cat\":" + quote(cat) + ",\"ph\":\"i\",\"s\":\"" +
                  std::string(1, scope) + "\"" + ids(pid, tid) + ",\"ts\":" + ts(ts_ns) + args_field(args) + "}";
  emit(e, 1);
}

size_t ChromeTraceWriter::counter(const std::string& name, int64_t pid, int64_t ts_ns,
                                  const std::map<std::string, double>& values) {
  nlohmann::json args = nlohmann::json::object();
  size_t dropped = 0;
  for (const auto& [k, v] : values) {
    if (std::isfinite(v)) args[k] = v;
    else ++dropped;
  }
  if (args.empty()) return dropped;
  std::string e = "{\"name\":" + quote(name) + ",\"ph\":\"C\"" + ids(pid, 0) + ",\"ts\":" + ts(ts_ns) +
                  ",\"args\":" + strict_json::dump(args) + "}";
  emit(e, 1);
  return dropped;
}

void ChromeTraceWriter::raw(const std::string& event_json) { emit(event_json, 1); }

void ChromeTraceWriter::flow(uint64_t id, int64_t pid_from, int64_t tid_from, int64_t ts_from_ns, int64_t pid_to,
                             int64_t tid_to, int64_t ts_to_ns) {
  const std::string common = "{\"name\":\"ac2g\",\"cat\":\"ac2g\",\"id\":" + std::to_string(id);
  std::string e = common + ",\"ph\":\"s\"" + ids(pid_from, tid_from) + ",\"ts\":" + ts(ts_from_ns) + "},\n" +
                  common + ",\"ph\":\"f\",\"bp\":\"e\"" + ids(pid_to, tid_to) + ",\"ts\":" + ts(ts_to_ns) + "}";
  emit(e, 2);
}

// Runs f under the lock, then reports a write error it caused, outside the lock so the
// callback may log or even call back into the writer.
template <class F>
void ChromeTraceWriter::locked(F f) {
  std::function<void(const std::string&)> cb;
  std::string message;
  {
    std::lock_guard<std::mutex> lock(mu_);
    f();
    if (error_pending_) {
      error_pending_ = false;
      cb = on_error_;
      message = last_error_;
    }
  }
  if (cb) {
    try {
      cb(message);
    } catch (...) {  // never throw into the training thread
    }
  }
}

void ChromeTraceWriter::emit(const std::string& event_json, uint64_t count) {
  locked([&] { emit_locked(event_json, count); });
}

void ChromeTraceWriter::emit_locked(const std::string& event_json, uint64_t count) {
  if (fd_ < 0 || failed_) return;
  const char* sep = events_ == 0 ? "" : ",\n";
  buffer_ += sep;
  buffer_ += event_json;
  bytes_ += std::strlen(sep) + event_json.size();
  events_ += count;
  if (buffer_.size() > kFlushBytes || std::chrono::steady_clock::now() - last_write_ >= kFlushInterval)
    write_buffer_locked();
}

void ChromeTraceWriter::write_buffer_locked() {
  last_write_ = std::chrono::steady_clock::now();
  if (fd_ < 0 || failed_ || buffer_.empty()) return;
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_locked("write", errno);
      return;
    }
    if (n == 0) {  // not expected from a regular file; treat as "no space"
      fail_locked("write", ENOSPC);
      return;
    }
    done += size_t(n);
  }
  on_disk_ += buffer_.size();
  buffer_.clear();
}

void ChromeTraceWriter::fail_locked(const std::string& what, int err) {
  failed_ = true;
  buffer_.clear();
  buffer_.shrink_to_fit();
  // A partial write may have left half an event: cut back to the last complete write so the
  // file still loads. (Fails harmlessly on pipes and devices.)
  if (::ftruncate(fd_, off_t(on_disk_)) == 0) ::lseek(fd_, off_t(on_disk_), SEEK_SET);
  last_error_ = "trace " + label_ + ": " + what + " failed: " + std::strerror(err) +
                "; further trace events are dropped (the file keeps what was written before)";
  error_pending_ = true;
}

void ChromeTraceWriter::flush() {
  locked([&] { write_buffer_locked(); });
}

void ChromeTraceWriter::close() {
  locked([&] {
    if (fd_ < 0) return;
    if (!failed_) {
      buffer_ += "\n]\n";
      bytes_ += 3;
      write_buffer_locked();
    }
    ::close(fd_);
    fd_ = -1;
    closed_ = true;
  });
}

namespace {

// The members before "traceEvents", one per line; distributedInfo keeps a space after each
// colon ("rank": N) because HTA finds the rank with the regex "rank":\s+(\d+), line by line.
std::string header_text(const TraceHeader& h, int64_t base_ns) {
  std::string out = "{\"schemaVersion\": 1,\n";
  if (h.rank >= 0) {
    out += "\"distributedInfo\": {";
    if (!h.backend.empty()) out += "\"backend\": " + quote(h.backend) + ", ";
    out += "\"rank\": " + std::to_string(h.rank) + ", \"world_size\": " + std::to_string(std::max(h.world_size, 1)) +
           "},\n";
  }
  out += "\"deviceProperties\": " +
         strict_json::dump(h.device_properties.is_array() ? h.device_properties : nlohmann::json::array()) + ",\n";
  out += "\"baseTimeNanoseconds\": " + std::to_string(base_ns) + ",\n";
  if (!h.trace_name.empty()) out += "\"traceName\": " + quote(h.trace_name) + ",\n";
  if (h.extra.is_object())
    for (const auto& [k, v] : h.extra.items())
      if (k != "traceEvents") out += quote(k) + ": " + strict_json::dump(v) + ",\n";
  return out + "\"traceEvents\": ";
}

}  // namespace

bool ChromeTraceWriter::finish(const std::string& final_path, const TraceHeader& header, std::string* error) {
  close();
  int rfd;
  bool failed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rfd = read_fd_;
    failed = failed_;
  }
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  if (rfd < 0) return fail("trace " + label_ + ": not opened on a path; left in the array form");
  if (failed) return fail("trace " + label_ + ": writing had failed; left in the array form (it still loads)");
  AtomicFile out;
  std::string why;
  if (!out.open(final_path, &why) || !out.write(header_text(header, base_ns_), &why) ||
      !out.write_from_fd(rfd, &why) || !out.write("}\n", &why) || !out.commit(&why))
    return fail(why + "; the trace is left in the array form (it still loads)");
  {
    std::lock_guard<std::mutex> lock(mu_);
    ::close(read_fd_);
    read_fd_ = -1;
  }
  if (final_path != label_) ::unlink(label_.c_str());
  return true;
}

}  // namespace nantrace
