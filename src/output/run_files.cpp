#include "output/run_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string_view>
#include <system_error>
#include <vector>

#include "output/file_io.h"

namespace nantrace {

std::string RunFileOwner::tag() const {
  switch (kind) {
    case Kind::Rank: return "rank" + std::to_string(number);
    case Kind::Pid: return "pid" + std::to_string(number);
    case Kind::Single: break;
  }
  return "";
}

std::string run_file_name(const std::string& stem, const std::string& ext, const RunFileOwner& owner) {
  const std::string tag = owner.tag();
  return stem + (tag.empty() ? "" : "." + tag) + "." + ext;
}

std::optional<ParsedRunFile> parse_run_file_name(const std::string& name, const std::string& ext) {
  const std::string suffix = "." + ext;
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string base = name.substr(0, name.size() - suffix.size());
  const size_t dot = base.find('.');
  if (dot == std::string::npos || dot == 0 || base.find('.', dot + 1) != std::string::npos) return std::nullopt;
  ParsedRunFile out;
  out.stem = base.substr(0, dot);
  std::string tag = base.substr(dot + 1);
  if (tag.rfind("rank", 0) == 0) {
    out.owner.kind = RunFileOwner::Kind::Rank;
    tag = tag.substr(4);
  } else if (tag.rfind("pid", 0) == 0) {
    out.owner.kind = RunFileOwner::Kind::Pid;
    tag = tag.substr(3);
  } else {
    return std::nullopt;
  }
  if (tag.empty() || tag.size() > 9) return std::nullopt;
  for (char c : tag)
    if (c < '0' || c > '9') return std::nullopt;
  for (char c : out.stem)
    if (!((c >= 'a' && c <= 'z') || c == '_')) return std::nullopt;
  out.owner.number = std::stoll(tag);
  return out;
}

namespace {

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A finished pid-named trace whose header has no distributedInfo, copied to `to` with rank 0
// of 1 added after its first line; the source is removed. Anything else: untouched, true.
bool add_single_rank(const std::string& from, const std::string& to, std::string* error) {
  static constexpr char kFirst[] = "{\"schemaVersion\": 1,\n";
  const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return true;
  char head[4096];
  const ssize_t n = ::pread(fd, head, sizeof head, 0);
  const std::string_view h(head, n > 0 ? size_t(n) : 0);
  const size_t first = sizeof kFirst - 1;
  bool ok = true;
  if (h.substr(0, first) == kFirst && h.find("\"distributedInfo\"") == std::string_view::npos) {
    AtomicFile out;
    ok = out.open(to, error) && out.write(kFirst, error) &&
         out.write("\"distributedInfo\": {\"rank\": 0, \"world_size\": 1},\n", error) &&
         out.write_from_fd(fd, error, (long long)first) && out.commit(error);
    if (ok) ::unlink(from.c_str());
  }
  ::close(fd);
  return ok;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); !from.empty() && at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

std::optional<PromotedFiles> promote_single_process_files(const std::string& dir, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir + "/report.json", ec)) return std::nullopt;
  std::set<std::string> owners;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto parsed = parse_run_file_name(e.path().filename().string(), "json");
    if (parsed && parsed->stem == "report") owners.insert(parsed->owner.tag());
  }
  if (ec || owners.size() != 1) return std::nullopt;
  const std::string tag = *owners.begin();
  struct Move {
    std::string from, to;
  };
  std::vector<Move> moves;
  for (const char* f : {"report.json", "report.md", "trace.json"}) {
    const std::string name = f;
    const size_t dot = name.find('.');
    moves.push_back({name.substr(0, dot) + "." + tag + name.substr(dot), name});
  }
  for (const char* f : {"repro/origin_module.pt", "repro/origin_module.json"}) {
    const std::string name = f;
    const size_t dot = name.rfind('.');
    moves.push_back({name.substr(0, dot) + "." + tag + name.substr(dot), name});
  }
  // The reports name the repro file: they follow it to its new name.
  const std::string old_repro = "origin_module." + tag + ".pt";
  for (const auto& m : moves) {
    const std::string from = dir + "/" + m.from, to = dir + "/" + m.to;
    if (!fs::exists(from, ec)) continue;
    if (m.to == "trace.json") {
      // The only process is rank 0 of a world of 1: the finished header says so (HTA needs a
      // rank), as a single-process run's does. Streamed: a trace may be hundreds of MB. A
      // live array, or a header that already has a rank, is only renamed.
      if (!add_single_rank(from, to, error)) return std::nullopt;
      if (fs::exists(from, ec) && ::rename(from.c_str(), to.c_str()) != 0) {
        if (error) *error = "cannot rename '" + from + "' to '" + to + "'";
        return std::nullopt;
      }
      continue;
    }
    if (m.to == "report.json" || m.to == "report.md") {
      auto text = slurp(from);
      if (!text || !write_file_atomic(to, replace_all(*text, old_repro, "origin_module.pt"), error)) return std::nullopt;
      fs::remove(from, ec);
    } else if (::rename(from.c_str(), to.c_str()) != 0) {
      if (error) *error = "cannot rename '" + from + "' to '" + to + "'";
      return std::nullopt;
    }
  }
  return PromotedFiles{dir + "/report.md", dir + "/trace.json"};
}

}  // namespace nantrace
