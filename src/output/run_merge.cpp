// Reading a run directory's rank files and writing the merged report and trace.
#include "output/run_merge.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

#include "core/merge.h"
#include "output/file_io.h"
#include "output/report_json.h"
#include "output/report_markdown.h"
#include "output/strict_json.h"

namespace nantrace {

// ---------------------------------------------------------------------------------------
// Trace reading

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// End (index of the closing '}') of the JSON object starting at s[begin] == '{', or npos when
// the text ends first. Strings are skipped so braces inside names do not count.
size_t object_end(std::string_view s, size_t begin) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = begin; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth;
    else if ((c == '}' || c == ']') && --depth == 0) return i;
  }
  return std::string_view::npos;
}

std::string byte_at(size_t i, size_t size) {
  return "at byte " + std::to_string(i) + " of " + std::to_string(size);
}

std::string char_text(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", unsigned(static_cast<unsigned char>(c)));
  return buf;
}

}  // namespace

bool read_trace_events(std::string_view text, const std::function<void(std::string_view)>& on_event,
                       TraceReadInfo* info, std::string* error) {
  TraceReadInfo local;
  TraceReadInfo& inf = info ? *info : local;
  inf = TraceReadInfo{};
  auto fail = [&](const std::string& what) {
    if (error) *error = what;
    return false;
  };
  size_t i = skip_space(text, 0);
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") i = skip_space(text, 3);
  if (i >= text.size()) return fail(text.empty() ? "empty file" : "holds only white space");

  if (text[i] == '{') {
    // Object form: small by nature (written whole), so parse it whole.
    nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return fail("not valid JSON (truncated or corrupted?): a trace object must be complete");
    auto it = j.find("traceEvents");
    if (!j.is_object() || it == j.end() || !it->is_array())
      return fail("not a Chrome trace: an object without a \"traceEvents\" array");
    for (const auto& e : *it) {
      if (!e.is_object()) return fail("not a Chrome trace: a \"traceEvents\" element is not an object");
    }
    for (const auto& e : *it) {
      on_event(strict_json::dump(e));
      ++inf.events;
    }
    inf.closed = true;
    return true;
  }
  if (text[i] != '[')
    return fail("not a Chrome trace: expected '[' or '{', found " + char_text(text[i]) + " " + byte_at(i, text.size()));

  i = skip_space(text, i + 1);
  bool need_separator = false;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ']') {
      const size_t after = skip_space(text, i + 1);
      if (after < text.size())
        return fail("unexpected " + char_text(text[after]) + " after the closing ']' " + byte_at(after, text.size()));
      inf.closed = true;
      return true;
    }
    if (need_separator) {
      if (c != ',')
        return fail("expected ',' or ']' between events, found " + char_text(c) + " " + byte_at(i, text.size()));
      i = skip_space(text, i + 1);
      need_separator = false;
      continue;
    }
    if (c != '{')
      return fail("event " + std::to_string(inf.events + 1) + ": expected '{', found " + char_text(c) + " " +
                  byte_at(i, text.size()));
    const size_t end = object_end(text, i);
    if (end == std::string_view::npos) {
      // A writer killed part-way through an event: what came before it still counts.
      inf.cut_off_bytes = text.size() - i;
      return true;
    }
    const std::string_view event = text.substr(i, end + 1 - i);
    if (!nlohmann::json::accept(event.begin(), event.end()))
      return fail("event " + std::to_string(inf.events + 1) + " " + byte_at(i, text.size()) + " is not valid JSON");
    on_event(event);
    ++inf.events;
    i = skip_space(text, end + 1);
    need_separator = true;
  }
  return true;  // no closing ']': the array form allows it (a killed or still running writer)
}

namespace {

// The text of a key as JSON means it ("p\u0069d" is "pid").
bool key_is_pid(std::string_view raw_with_quotes) {
  if (raw_with_quotes.find('\\') == std::string_view::npos) return raw_with_quotes == "\"pid\"";
  const auto j = nlohmann::json::parse(raw_with_quotes.begin(), raw_with_quotes.end(), nullptr, false);
  return j.is_string() && j.get<std::string>() == "pid";
}

}  // namespace

std::string with_pid(std::string_view ev, int64_t pid) {
  const std::string value = std::to_string(pid);
  const size_t open = ev.find('{');
  if (open == std::string_view::npos) return std::string(ev);
  // Walk the top-level members: a key is a string at depth 1 before ':'; its value runs to
  // the next ',' or the closing '}' at depth 1. Every "pid" member is rewritten (a duplicate
  // key would otherwise win in some readers).
  std::vector<std::pair<size_t, size_t>> spans;
  int depth = 0;
  bool in_string = false, escaped = false, expect_key = true, in_pid = false;
  size_t str_begin = 0, value_begin = std::string_view::npos;
  for (size_t i = open; i < ev.size() && depth >= 0; ++i) {
    const char c = ev[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') {
        in_string = false;
        if (depth == 1 && expect_key) {
          in_pid = key_is_pid(ev.substr(str_begin, i + 1 - str_begin));
          expect_key = false;
        }
      }
      continue;
    }
    const bool ends_value = depth == 1 && (c == ',' || c == '}');
    if (ends_value && in_pid && value_begin != std::string_view::npos) {
      size_t b = value_begin, e = i;
      while (b < e && is_space(ev[b])) ++b;
      while (e > b && is_space(ev[e - 1])) --e;
      spans.emplace_back(b, e);
    }
    switch (c) {
      case '"': in_string = true; str_begin = i; break;
      case '{': case '[': ++depth; break;
      case '}': case ']': --depth; break;
      case ':': if (depth == 1) value_begin = in_pid ? i + 1 : std::string_view::npos; break;
      case ',':
        if (depth == 1) {
          expect_key = true;
          in_pid = false;
          value_begin = std::string_view::npos;
        }
        break;
      default: break;
    }
    if (depth == 0) break;
  }
  if (spans.empty()) {
    // No pid: add one right after the opening brace.
    const size_t first = skip_space(ev, open + 1);
    const bool empty = first < ev.size() && ev[first] == '}';
    return std::string(ev.substr(0, open + 1)) + "\"pid\":" + value + (empty ? "" : ",") +
           std::string(ev.substr(open + 1));
  }
  std::string out;
  size_t at = 0;
  for (const auto& [b, e] : spans) {
    out.append(ev.substr(at, b - at));
    out += value;
    at = e;
  }
  out.append(ev.substr(at));
  return out;
}

// ---------------------------------------------------------------------------------------
// The run directory

namespace {

constexpr size_t kMaxReportBytes = 64u << 20;

// Reads a whole regular file. false + *error naming what is wrong (not the path: callers do).
bool read_whole(const std::string& path, size_t max_bytes, std::string* out, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = errno == ENOENT ? "missing" : std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    *error = "not a regular file";
    return false;
  }
  if (size_t(st.st_size) > max_bytes) {
    ::close(fd);
    *error = "too large (" + std::to_string(st.st_size) + " bytes)";
    return false;
  }
  out->clear();
  out->reserve(size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::string("read error: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, size_t(n));
  }
  ::close(fd);
  return true;
}

// A file written in pieces to NAME.tmp and renamed over NAME at commit (the same guarantees
// as write_file_atomic, for a trace too large to hold twice in memory).
class StreamedFile {
 public:
  ~StreamedFile() { abandon(); }
  bool open(const std::string& path, std::string* error) {
    path_ = path;
    tmp_ = path + ".tmp";
    fd_ = create();
    if (fd_ < 0 && errno == EEXIST) {
      struct stat st;
      if (::lstat(tmp_.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        *error = "refusing to write " + path + ": " + tmp_ + " is a symbolic link";
        return false;
      }
      if (::unlink(tmp_.c_str()) != 0) return fail("cannot remove stale " + tmp_, error);
      fd_ = create();
    }
    if (fd_ < 0) return fail("cannot create " + tmp_, error);
    return true;
  }
  bool write(std::string_view data, std::string* error) {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail("cannot write " + tmp_, error);
      data.remove_prefix(size_t(n));
    }
    return true;
  }
  bool commit(std::string* error) {
    if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) return fail("cannot write " + tmp_, error);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return fail("cannot write " + tmp_, error);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const bool ok = fail("cannot rename " + tmp_ + " to " + path_, error);
      ::unlink(tmp_.c_str());
      return ok;
    }
    return true;
  }
  void abandon() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
  }

 private:
  int create() { return ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644); }
  static bool fail(const std::string& what, std::string* error) {
    *error = what + ": " + std::strerror(errno);
    return false;
  }
  std::string path_, tmp_;
  int fd_ = -1;
};

// The files of one process: report.<tag>.json and trace.<tag>.json. A rank killed before
// its end leaves its report rank-named (written once the rank was known) next to its trace
// still pid-named (renamed only at exit): the two are joined by the rank in the trace.
struct Group {
  std::string tag;     // "rank1", "pid1234", "" (report.json / trace.json)
  bool by_rank = false;
  int64_t number = -1;  // N of rankN / P of pidP
  std::string report_file, trace_file;  // names in the directory; "" = absent
  std::string report_name() const {
    return !report_file.empty() ? report_file : tag.empty() ? "report.json" : "report." + tag + ".json";
  }
  std::string trace_name() const {
    return !trace_file.empty() ? trace_file : tag.empty() ? "trace.json" : "trace." + tag + ".json";
  }
  int32_t rank = -1;
  std::optional<Report> report;
};

// The rank in a trace's distributedInfo event, without parsing the whole file.
int32_t rank_in_trace(const std::string& text) {
  const size_t at = text.find("\"distributedInfo\"");
  if (at == std::string::npos) return -1;
  static const std::regex kRank(R"re("rank":\s+(\d+))re");
  std::smatch m;
  const std::string window = text.substr(at, 400);
  if (!std::regex_search(window, m, kRank)) return -1;
  try {
    return int32_t(std::stol(m[1].str()));
  } catch (...) {
    return -1;
  }
}

std::string rank_of(const Group& g) {
  if (g.rank >= 0) return "rank " + std::to_string(g.rank);
  return g.tag.empty() ? std::string("the process") : "process " + g.tag;
}

std::string meta_event(const char* name, int64_t pid, const std::string& args_json) {
  return std::string("{\"name\":\"") + name + "\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) +
         ",\"tid\":0,\"args\":" + args_json + "}";
}

int64_t pid_of(const Group& g) {
  if (g.rank >= 0) return kRankPidBase + g.rank;
  return kUnknownRankPidBase + std::max<int64_t>(g.number, 0);
}

class Merger {
 public:
  explicit Merger(std::string dir) : dir_(std::move(dir)) {}

  MergeResult run() {
    if (!find_groups()) return std::move(result_);
    read_reports();
    std::vector<RankReport> ranks;
    for (const Group& g : groups_)
      if (g.report) ranks.push_back(RankReport{g.rank, g.report_name(), *g.report});
    result_.ranks_merged = int(ranks.size());
    Report merged = merge_reports(ranks);
    merged.run_dir = dir_;
    write_trace(merged);
    if (result_.ranks_merged > 0) write_reports(merged);
    return std::move(result_);
  }

 private:
  void error(const std::string& line) { result_.errors.push_back(line); }

  bool find_groups() {
    DIR* d = ::opendir(dir_.c_str());
    if (!d) {
      error(dir_ + ": cannot read the run directory: " + std::strerror(errno));
      return false;
    }
    static const std::regex kName(R"re(^(report|trace)\.(rank|pid)(\d{1,9})\.json$)re");
    std::map<std::string, Group> by_tag;
    bool plain_report = false, plain_trace = false;
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      std::smatch m;
      if (std::regex_match(name, m, kName)) {
        Group& g = by_tag[m[2].str() + m[3].str()];
        g.tag = m[2].str() + m[3].str();
        g.by_rank = m[2] == "rank";
        g.number = std::stoll(m[3].str());
        (m[1] == "report" ? g.report_file : g.trace_file) = name;
      } else if (name == "report.json") {
        plain_report = true;
      } else if (name == "trace.json") {
        plain_trace = true;
      }
    }
    ::closedir(d);
    for (auto& [tag, g] : by_tag) {
      if (g.by_rank) g.rank = int32_t(g.number);
      groups_.push_back(g);
    }
    // A single-process run (or a launcher's own files) only when no process wrote rank files.
    if (groups_.empty() && (plain_report || plain_trace)) {
      Group g;
      if (plain_report) g.report_file = "report.json";
      if (plain_trace) g.trace_file = "trace.json";
      groups_.push_back(g);
    }
    if (groups_.empty()) {
      error(dir_ + ": no rank files (report.rank<N>.json, trace.rank<N>.json, report.pid<P>.json) to merge");
      return false;
    }
    return true;
  }

  void read_reports() {
    for (Group& g : groups_) {
      if (g.report_file.empty()) continue;  // named once the groups are joined
      std::string text, why;
      if (!read_whole(dir_ + "/" + g.report_file, kMaxReportBytes, &text, &why)) {
        error(g.report_file + ": " + why + "; " + rank_of(g) + "'s report is left out");
        continue;
      }
      if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
        error(g.report_file + ": " + (text.empty() ? "empty file" : "holds only white space") + "; " + rank_of(g) +
              "'s report is left out");
        continue;
      }
      Report r;
      if (!report_from_json_text(text, &r, &why)) {
        error(g.report_file + ": " + why + "; " + rank_of(g) + "'s report is left out");
        continue;
      }
      if (g.by_rank && r.rank >= 0 && r.rank != g.rank)
        notes_.push_back(g.report_file + " says rank " + std::to_string(r.rank) + "; its file name is taken");
      if (!g.by_rank) g.rank = r.rank;
      g.report = std::move(r);
    }
    // A pid-named trace without a usable report: its distributedInfo tells the rank.
    for (Group& g : groups_) {
      if (g.by_rank || g.rank >= 0 || g.trace_file.empty()) continue;
      std::string text, why;
      if (read_whole(dir_ + "/" + g.trace_file, SIZE_MAX, &text, &why)) g.rank = rank_in_trace(text);
    }
    join_pid_groups();
    for (const Group& g : groups_) {
      if (g.report_file.empty())
        error(g.report_name() + ": missing; " + rank_of(g) +
              (g.trace_file.empty() ? "'s report is left out" : "'s trace is merged without its report"));
    }
    std::stable_sort(groups_.begin(), groups_.end(), [](const Group& a, const Group& b) {
      if ((a.rank >= 0) != (b.rank >= 0)) return a.rank >= 0;
      return a.rank != b.rank ? a.rank < b.rank : a.number < b.number;
    });
  }

  // A pid-named group whose rank also has rank-named files: its files fill what the rank
  // lacks (a killed rank's trace), the rest is superseded by the rank-named ones.
  void join_pid_groups() {
    std::vector<Group> kept;
    for (Group& g : groups_) {
      Group* owner = nullptr;
      if (!g.by_rank && g.rank >= 0)
        for (Group& o : groups_)
          if (o.by_rank && o.rank == g.rank) owner = &o;
      if (!owner) {
        kept.push_back(std::move(g));
        continue;
      }
      std::vector<std::string> used, superseded;
      if (!g.trace_file.empty()) {
        if (owner->trace_file.empty()) {
          owner->trace_file = g.trace_file;
          used.push_back(g.trace_file);
        } else {
          superseded.push_back(g.trace_file);
        }
      }
      if (!g.report_file.empty()) {
        if (!owner->report && g.report) {
          owner->report_file = g.report_file;
          owner->report = std::move(g.report);
          used.push_back(g.report_file);
        } else {
          superseded.push_back(g.report_file);
        }
      }
      const std::string who = "rank " + std::to_string(g.rank);
      for (const auto& f : used) notes_.push_back(f + " is " + who + "'s (the process ended before renaming it)");
      for (const auto& f : superseded) notes_.push_back(f + " is superseded by " + who + "'s rank-named file");
    }
    groups_ = std::move(kept);
  }

  // One rank's events, pid rewritten, into out; false (and an error line) when its trace
  // cannot be used at all.
  bool rank_events(const Group& g, std::string* out) {
    const std::string name = g.trace_name();
    if (g.trace_file.empty()) {
      error(name + ": missing; " + rank_of(g) + "'s report is merged without its trace");
      return false;
    }
    std::string text, why;
    if (!read_whole(dir_ + "/" + name, SIZE_MAX, &text, &why)) {
      error(name + ": " + why + "; " + rank_of(g) + "'s trace is left out");
      return false;
    }
    const int64_t pid = pid_of(g);
    std::string label = rank_of(g);
    if (g.rank < 0 && g.number >= 0) label = "pid " + std::to_string(g.number);
    std::string events = meta_event("process_name", pid, "{\"name\":" + strict_json::quote(label) + "}");
    events += ",\n" + meta_event("process_sort_index", pid, "{\"sort_index\":" + std::to_string(pid) + "}");
    TraceReadInfo info;
    const bool ok = read_trace_events(
        text,
        [&](std::string_view ev) {
          // The rank's own process metadata would rename the merged process: ours wins.
          if (ev.find("\"ph\":\"M\"") != std::string_view::npos &&
              (ev.find("\"name\":\"process_name\"") != std::string_view::npos ||
               ev.find("\"name\":\"process_sort_index\"") != std::string_view::npos))
            return;
          events += ",\n";
          events += with_pid(ev, pid);
        },
        &info, &why);
    if (!ok) {
      error(name + ": " + why + "; " + rank_of(g) + "'s trace is left out");
      return false;
    }
    if (!info.closed) {
      std::string n = name + " has no closing ']' (the process was killed or was still running): its " +
                      std::to_string(info.events) + " complete events are merged";
      if (info.cut_off_bytes > 0) n += ", a cut-off last event (" + std::to_string(info.cut_off_bytes) + " bytes) is not";
      notes_.push_back(n);
    }
    *out = std::move(events);
    return true;
  }

  void write_trace(const Report& merged) {
    const std::string path = dir_ + "/trace.merged.json";
    StreamedFile file;
    bool opened = false, any = false;
    std::string why;
    for (const Group& g : groups_) {
      std::string events;
      if (!rank_events(g, &events)) continue;
      if (!opened) {
        if (!file.open(path, &why)) {
          error(why);
          return;
        }
        opened = true;
        if (!file.write("[\n", &why)) break;
      }
      if (!file.write(any ? ",\n" : "", &why) || !file.write(events, &why)) break;
      any = true;
    }
    if (!opened) return;
    if (why.empty() && merged.finding.found && merged.rank >= 0 && merged.finding.origin.ts_ns > 0) {
      nlohmann::json args = {{"rank", merged.rank},
                             {"step", merged.finding.origin.step},
                             {"phase", to_string(merged.finding.origin.site.phase)},
                             {"module", merged.finding.origin.site.module_path},
                             {"kind", to_string(merged.finding.kind)}};
      const std::string marker = "{\"name\":" + strict_json::quote("nantrace: the fault began here (rank " +
                                                                   std::to_string(merged.rank) + ")") +
                                 ",\"cat\":\"nantrace\",\"ph\":\"i\",\"s\":\"g\",\"pid\":" +
                                 std::to_string(kRankPidBase + merged.rank) +
                                 ",\"tid\":" + std::to_string(merged.finding.origin.tid) +
                                 ",\"ts\":" + strict_json::micros(merged.finding.origin.ts_ns) +
                                 ",\"args\":" + strict_json::dump(args) + "}";
      file.write(",\n" + marker, &why);
    }
    if (why.empty()) file.write("\n]\n", &why);
    if (!why.empty() || !file.commit(&why)) {
      file.abandon();
      error(why);
      return;
    }
    result_.trace_json = path;
  }

  void write_reports(Report merged) {
    for (auto& n : notes_) merged.notes.push_back(n);
    for (auto& e : result_.errors) merged.notes.push_back("not merged: " + e);
    const std::string json_path = dir_ + "/report.merged.json", md_path = dir_ + "/report.merged.md";
    std::string why;
    if (write_file_atomic(json_path, report_to_json_text(merged), &why)) result_.report_json = json_path;
    else error(why);
    if (write_file_atomic(md_path, render_markdown(merged), &why)) result_.report_md = md_path;
    else error(why);
  }

  std::string dir_;
  std::vector<Group> groups_;
  std::vector<std::string> notes_;
  MergeResult result_;
};

}  // namespace

MergeResult merge_run_directory(const std::string& dir) {
  try {
    return Merger(dir).run();
  } catch (const std::exception& e) {
    MergeResult r;
    r.errors.push_back(dir + ": merge failed: " + e.what());
    return r;
  }
}

}  // namespace nantrace
