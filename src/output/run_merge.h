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

// --- building blocks, exposed for tests and fuzzing -------------------------------------

struct TraceReadInfo {
  uint64_t events = 0;        // complete events passed to the callback
  bool closed = false;        // the closing "]" was present
  uint64_t cut_off_bytes = 0; // bytes of an incomplete last event that were dropped
};

// Reads a Chrome trace in array form, event by event, tolerating what a killed writer leaves:
// no closing "]", a trailing ",", a last event cut off part-way (dropped). Each complete event
// is checked to be a valid JSON object and handed over as its exact text (numbers keep their
// digits: timestamps have more than a double holds). The object form {"traceEvents": [...]}
// is accepted too (its events re-serialised). false + *error (one line: what and at which
// byte) for an empty file, text that is not a trace, or a corrupted event before the end.
bool read_trace_events(std::string_view text, const std::function<void(std::string_view)>& on_event,
                       TraceReadInfo* info, std::string* error);

// event_json with its top-level "pid" value replaced by pid (added when absent). The rest of
// the text is unchanged. event_json must be one JSON object (as read_trace_events gives).
std::string with_pid(std::string_view event_json, int64_t pid);

}  // namespace nantrace
