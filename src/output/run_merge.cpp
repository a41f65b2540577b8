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

#include <nlohmann/json.hpp>

#include "core/merge.h"
#include "output/file_io.h"
#include "output/report_json.h"
#include "output/report_markdown.h"
#include "output/chrome_trace_writer.h"
#include "output/run_files.h"
#include "output/strict_json.h"
#include "output/trace_reader.h"
#include "output/trace_time.h"

namespace nantrace {

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

// What a rank's trace says of itself: its time 0 (baseTimeNanoseconds of the finished form,
// or the live form's process_name args) and its rank (distributedInfo, or those args).
struct TraceIdentity {
  int64_t base_ns = 0;
  int32_t rank = -1;
  std::string process_label;  // the rank's own process_name, for the merged track
};

std::optional<int64_t> json_int(const nlohmann::json& j) {
  if (j.is_number_integer()) return j.get<int64_t>();
  if (j.is_number_unsigned()) return int64_t(j.get<uint64_t>());
  return std::nullopt;
}

void note_identity(std::string_view ev, TraceIdentity* id) {
  if (ev.find("\"process_name\"") == std::string_view::npos) return;
  const nlohmann::json e = nlohmann::json::parse(ev.begin(), ev.end(), nullptr, false);
  if (!e.is_object() || e.value("ph", "") != "M" || e.value("name", "") != "process_name") return;
  const auto args = e.find("args");
  if (args == e.end() || !args->is_object()) return;
  if (auto it = args->find("nantrace_base_time_ns"); it != args->end())
    if (auto v = json_int(*it)) {
      id->base_ns = *v;
      if (auto n = args->find("name"); n != args->end() && n->is_string()) id->process_label = n->get<std::string>();
    }
  if (auto it = args->find("nantrace_rank"); it != args->end())
    if (auto v = json_int(*it)) id->rank = int32_t(*v);
}

void identity_from_header(const nlohmann::json& h, TraceIdentity* id) {
  if (auto it = h.find("baseTimeNanoseconds"); it != h.end())
    if (auto v = json_int(*it)) id->base_ns = *v;
  if (auto it = h.find("distributedInfo"); it != h.end() && it->is_object())
    if (auto r = it->find("rank"); r != it->end())
      if (auto v = json_int(*r)) id->rank = int32_t(*v);
}

// Every rank's events on one time axis: each rank's timestamps are relative to its own
// start, so they are moved by (its base - the earliest base), exactly, in ns.
std::string shifted(const std::string& ev, int64_t shift_ns) {
  if (shift_ns == 0) return ev;
  return rewrite_members(ev, [&](const std::string& key, std::string_view value) -> std::optional<std::string> {
    if (key != "ts") return std::nullopt;
    const auto ns = trace_time::ns_via_text(value);
    if (!ns) return std::nullopt;
    return trace_time::trace_micros(*ns + shift_ns);
  });
}

int32_t rank_in_trace(const std::string& text) {
  TraceIdentity id;
  TraceReadInfo info;
  std::string why;
  if (!read_trace_events(text, [&](std::string_view ev) { note_identity(ev, &id); }, &info, &why)) return -1;
  identity_from_header(info.header, &id);
  return id.rank;
}

std::string rank_of(const Group& g) {
  if (g.rank >= 0) return "rank " + std::to_string(g.rank);
  return g.tag.empty() ? std::string("the process") : "process " + g.tag;
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
    std::map<std::string, Group> by_tag;
    bool plain_report = false, plain_trace = false;
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      const std::optional<ParsedRunFile> f = parse_run_file_name(name, "json");
      if (f && (f->stem == "report" || f->stem == "trace")) {
        Group& g = by_tag[f->owner.tag()];
        g.tag = f->owner.tag();
        g.by_rank = f->owner.kind == RunFileOwner::Kind::Rank;
        g.number = f->owner.number;
        (f->stem == "report" ? g.report_file : g.trace_file) = name;
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

  // One rank's trace, read: its events (pid rewritten to the rank's merged process), what it
  // says of itself, and notes. false (and an error line) when it cannot be used at all.
  struct RankTrace {
    const Group* group = nullptr;
    std::vector<std::string> events;
    TraceIdentity id;
  };

  bool read_rank_trace(const Group& g, RankTrace* out) {
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
    out->group = &g;
    TraceReadInfo info;
    const bool ok = read_trace_events(
        text,
        [&](std::string_view ev) {
          note_identity(ev, &out->id);
          // The rank's own process metadata would rename the merged process: ours wins.
          if (ev.find("\"ph\":\"M\"") != std::string_view::npos &&
              (ev.find("\"name\":\"process_name\"") != std::string_view::npos ||
               ev.find("\"name\":\"process_sort_index\"") != std::string_view::npos))
            return;
          out->events.push_back(with_pid(ev, pid));
        },
        &info, &why);
    if (!ok) {
      error(name + ": " + why + "; " + rank_of(g) + "'s trace is left out");
      return false;
    }
    identity_from_header(info.header, &out->id);
    if (!info.closed) {
      std::string n = name + " is unfinished (the process was killed or was still running): its " +
                      std::to_string(info.events) + " complete events are merged";
      if (info.cut_off_bytes > 0) n += ", a cut-off last event (" + std::to_string(info.cut_off_bytes) + " bytes) is not";
      notes_.push_back(n);
    }
    return true;
  }

  void write_trace(const Report& merged) {
    std::vector<RankTrace> ranks;
    for (const Group& g : groups_) {
      RankTrace t;
      if (read_rank_trace(g, &t)) ranks.push_back(std::move(t));
    }
    if (ranks.empty()) return;
    int64_t base = 0;
    bool have_base = false;
    for (const RankTrace& t : ranks)
      if (t.id.base_ns > 0 && (!have_base || t.id.base_ns < base)) {
        base = t.id.base_ns;
        have_base = true;
      }
    const std::string path = dir_ + "/trace.merged.json";
    const std::string live = dir_ + "/.trace.merged.json.partial";
    struct stat st;
    if (::lstat(live.c_str(), &st) == 0 && S_ISREG(st.st_mode)) ::unlink(live.c_str());  // a stale one of ours
    ChromeTraceWriter w;
    std::string why;
    if (!w.open(live, &why, base)) {
      error(why);
      return;
    }
    std::vector<int32_t> merged_ranks;
    for (const RankTrace& t : ranks) {
      const Group& g = *t.group;
      const int64_t pid = pid_of(g);
      std::string label = rank_of(g);
      if (g.rank < 0 && g.number >= 0) label = "pid " + std::to_string(g.number);
      if (g.rank >= 0 && !t.id.process_label.empty() && t.id.process_label.rfind("rank ", 0) == 0)
        label = t.id.process_label;  // "rank 1 (python train.py)"
      w.process_name(pid, label);
      w.process_sort_index(pid, pid);
      if (g.rank >= 0) merged_ranks.push_back(g.rank);
      // A trace without a base (written before timestamps were relative) is epoch-based.
      const int64_t shift = t.id.base_ns > 0 ? t.id.base_ns - base : -base;
      for (const std::string& ev : t.events) w.raw(shifted(ev, shift));
    }
    if (merged.finding.found && merged.rank >= 0 && merged.finding.origin.ts_ns > 0) {
      nlohmann::json args = {{"rank", merged.rank},
                             {"step", merged.finding.origin.step},
                             {"phase", to_string(merged.finding.origin.site.phase)},
                             {"module", merged.finding.origin.site.module_path},
                             {"kind", to_string(merged.finding.kind)}};
      // The one global marker of the merged trace: drawn across every rank's tracks.
      w.instant("nantrace: the fault began here (rank " + std::to_string(merged.rank) + ")", "nantrace",
                kRankPidBase + merged.rank, merged.finding.origin.tid, merged.finding.origin.ts_ns, 'g', args);
    }
    TraceHeader h;
    h.trace_name = "nantrace merge of " + dir_;
    h.extra["nantrace"] = {{"merged_ranks", merged_ranks}, {"world_size", merged.world_size}};
    if (!w.finish(path, h, &why)) {
      w.close();
      ::unlink(live.c_str());
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
