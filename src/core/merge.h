// Merging the reports of the ranks of one multi-process run into one report.
//
// One rank's NaN reaches every rank through all-reduce, so every per-rank report shows a
// fault; only the earliest of them, in training order, is where it began. Wall-clock time
// alone cannot order them (clocks of ranks differ, and a rank that sees the NaN through
// all-reduce may record it before the rank that caused it has flushed), so the order is the
// training's own: step, then phase, then the rank's program order.
//
// Pure: no files. src/output/run_merge reads the rank files and writes the merged outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"

namespace nantrace {

struct RankReport {
  int32_t rank;        // -1: unknown (a process whose rank never became known)
  std::string source;  // where it came from, for messages ("report.rank1.json")
  Report report;
};

// Position of a phase in one training iteration: input < forward < loss < backward < unscale
// < optimizer_grad < optimizer_param; Unknown sorts after all of them.
int phase_order(Phase p);

// True when finding a happened before finding b in training order: (step, phase order, seq,
// ts_ns). seq and ts_ns are each rank's own and only break ties within one step and phase.
bool finding_before(const Finding& a, const Finding& b);

// The merged report:
// - finding: the earliest origin across ranks (finding_before; equal keys: lower rank), with
//   rank = that rank and the evidence, explanation and advice of that rank's report;
// - notes: one line per other rank with a finding, "rank R: <kind> at step S (<phase>) in
//   <module> - follows from rank X via all-reduce" (input-phase faults, which all-reduce
//   cannot cause, are named as faults of their own), one line per rank without a finding,
//   then every rank's own notes prefixed with its rank;
// - benign skips and warnings of all ranks, each naming its rank; series as "rank R: name";
// - culprit history, checkpoint and environment of the origin rank (or of the first rank when
//   none found a fault); steps_seen the largest, checks summed;
// - world_size = the number of ranks merged, or the ranks' own world_size when larger (a rank
//   whose report is missing still counted) - the missing ranks are named in a note.
Report merge_reports(const std::vector<RankReport>& ranks);

// "rank 1", or the source for a rank that is not known.
std::string rank_label(const RankReport& r);

}  // namespace nantrace
