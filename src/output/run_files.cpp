#include "output/run_files.h"

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

}  // namespace nantrace
