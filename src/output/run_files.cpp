#include "output/run_files.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
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
      // rank), as a single-process run's does; a live array is left as it is.
      auto text = slurp(from);
      const std::string first = "{\"schemaVersion\": 1,\n";
      if (text && text->rfind(first, 0) == 0 && text->find("\"distributedInfo\"") == std::string::npos) {
        text->insert(first.size(), "\"distributedInfo\": {\"rank\": 0, \"world_size\": 1},\n");
        if (!write_file_atomic(to, *text, error)) return std::nullopt;
        fs::remove(from, ec);
        continue;
      }
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
