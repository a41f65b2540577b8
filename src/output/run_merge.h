// `nantrace merge DIR`: combines the per-rank files of a multi-process run directory into one
// report and one trace. Called by the nantrace-merge tool and by the runtime at the end of a
// launcher process. Never throws; never touches the rank files themselves.
//
// Inputs in DIR: report.rank<N>.json + trace.rank<N>.json per rank, and report.pid<P>.json +
// trace.pid<P>.json of processes whose rank was not known (or whose world size was 1). A pid
// file whose rank also has a rank-named file is superseded by it. report.json / trace.json
// (a single-process run) are read only when there is no rank or pid file.
//
// Outputs in DIR: report.merged.json, report.merged.md (core/merge.h decides the finding),
// trace.merged.json: every rank's events with their pid rewritten to one process per rank
// (kRankPidBase + rank, named "rank N", sorted by rank), the rank's own process metadata
// dropped, its distributedInfo event kept byte for byte (HTA's "rank":\s+(\d+) still
// matches), and a global instant marker where the fault began.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "output/trace_reader.h"

namespace nantrace {

struct MergeResult {
  int ranks_merged = 0;             // rank reports merged
  std::vector<std::string> errors;  // one line each, naming the file and what is wrong
  std::string report_md, report_json, trace_json;  // paths written ("" = not written)
};

MergeResult merge_run_directory(const std::string& dir);

// Process id of rank N in the merged trace; ranks not known get kUnknownRankPidBase + OS pid.
inline constexpr int64_t kRankPidBase = 1000;
inline constexpr int64_t kUnknownRankPidBase = 10'000'000;

}  // namespace nantrace
