// The names of a run directory's files, formatted and parsed in one place: the runtime names
// what each process writes, the merge finds them again.
//
//   <stem>.<ext>             a single-process run (report.json, trace.json)
//   <stem>.rank<N>.<ext>     rank N of a multi-process run
//   <stem>.pid<P>.<ext>      a process of the run whose rank is not known (yet)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace nantrace {

struct RunFileOwner {
  enum class Kind { Single, Rank, Pid } kind = Kind::Single;
  int64_t number = -1;  // N or P
  std::string tag() const;  // "", "rank1", "pid1234"
};

std::string run_file_name(const std::string& stem, const std::string& ext, const RunFileOwner& owner);

struct ParsedRunFile {
  std::string stem;  // "report", "trace"
  RunFileOwner owner;
};
// The parts of a rank or pid file's name with this extension (N and P of at most 9 digits),
// or nullopt for any other name (single-process names included: callers test those by name).
std::optional<ParsedRunFile> parse_run_file_name(const std::string& name, const std::string& ext);

// A run whose only process wrote per-process files (a one-process mp.spawn: the rank joined
// its launcher's directory before anyone knew it would be the only one): its report, trace
// and repro files take the single-process names, so the run has one report and one trace and
// no merged copy. Does nothing (nullopt) when several processes wrote reports or report.json
// already exists. Returns the paths of the report.md and trace.json it leaves.
struct PromotedFiles {
  std::string report_md, trace_json;
};
std::optional<PromotedFiles> promote_single_process_files(const std::string& dir, std::string* error);

}  // namespace nantrace
