#include "core/merge.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace nantrace {

int phase_order(Phase p) {
  switch (p) {
    case Phase::Input: return 0;
    case Phase::Forward: return 1;
    case Phase::Loss: return 2;
    case Phase::Backward: return 3;
    case Phase::Unscale: return 4;
    case Phase::OptimizerGrad: return 5;
    case Phase::OptimizerParam: return 6;
    case Phase::Evaluation: return 7;
    case Phase::Unknown: break;
  }
  return 8;
}

bool finding_before(const Finding& a, const Finding& b) {
  // Training order is that of the first sightings (a finding located later keeps its first).
  const CheckRecord& x = a.first_seen ? *a.first_seen : a.origin;
  const CheckRecord& y = b.first_seen ? *b.first_seen : b.origin;
  if (x.step != y.step) return x.step < y.step;
  const int px = phase_order(x.site.phase), py = phase_order(y.site.phase);
  if (px != py) return px < py;
  if (x.seq != y.seq) return x.seq < y.seq;
  return x.ts_ns < y.ts_ns;
}

std::string rank_label(const RankReport& r) {
  if (r.rank >= 0) return "rank " + std::to_string(r.rank);
  return r.source.empty() ? std::string("rank ?") : r.source;
}

namespace {

std::string where_text(const CheckRecord& c) {
  if (!c.site.module_path.empty()) return " in " + c.site.module_path;
  if (!c.site.tensor_name.empty()) return " in " + c.site.tensor_name;
  return "";
}

std::string finding_text(const Finding& f) {
  return describe(f) + " at step " + std::to_string(f.step()) + " (" +
         to_string(f.origin.site.phase) + ")" + where_text(f.origin);
}

// A rank without a finding: clean, or non-finite values that were handled (GradScaler
// skipped the step) - "no NaN seen" would be false there.
std::string no_fault_text(const RankReport& r) {
  const Report& rep = r.report;
  const std::string who = rank_label(r);
  if (rep.nonfinite_checks == 0)
    return who + ": no NaN or Inf seen (" + std::to_string(rep.checks) + " checks over " +
           std::to_string(rep.steps_seen) + " steps)";
  std::string line = who + ": no fault of its own; " + std::to_string(rep.nonfinite_checks) + " of " +
                     std::to_string(rep.checks) + " checks held non-finite values";
  if (!rep.benign_skips.empty()) {
    line += ", GradScaler skipped step";
    line += rep.benign_skips.size() > 1 ? "s " : " ";
    for (size_t i = 0; i < rep.benign_skips.size() && i < 10; ++i)
      line += (i ? ", " : "") + std::to_string(rep.benign_skips[i].step);
    if (rep.benign_skips.size() > 10) line += ", ...";
    line += " and recovered (handled)";
  }
  return line;
}

// Ranks in a stable order: known ranks ascending, then unknown ones in the order given.
std::vector<const RankReport*> ordered(const std::vector<RankReport>& ranks) {
  std::vector<const RankReport*> out;
  for (const auto& r : ranks) out.push_back(&r);
  std::stable_sort(out.begin(), out.end(), [](const RankReport* a, const RankReport* b) {
    const bool ka = a->rank >= 0, kb = b->rank >= 0;
    if (ka != kb) return ka;
    return ka && a->rank < b->rank;
  });
  return out;
}

}  // namespace

Report merge_reports(const std::vector<RankReport>& ranks) {
  Report out;
  out.world_size = int32_t(ranks.size());
  if (ranks.empty()) {
    out.notes.push_back("no rank report to merge");
    return out;
  }
  const std::vector<const RankReport*> all = ordered(ranks);

  // The origin: the earliest finding in training order; equal keys keep the lower rank
  // because `all` is in rank order and only a strictly earlier finding replaces it.
  const RankReport* origin = nullptr;
  for (const RankReport* r : all)
    if (r->report.finding.found && (!origin || finding_before(r->report.finding, origin->report.finding))) origin = r;
  const RankReport* base = origin ? origin : all.front();

  out.finding = base->report.finding;
  out.culprit_magnitude = base->report.culprit_magnitude;
  out.culprit_dtype = base->report.culprit_dtype;
  out.blowup = base->report.blowup;
  out.skips_recovered = base->report.skips_recovered;
  out.step_counter = base->report.step_counter;
  out.step_counter_offset = base->report.step_counter_offset;
  out.last_checkpoint_before_fault = base->report.last_checkpoint_before_fault;
  out.checkpoints = base->report.checkpoints;
  out.fault_epoch = base->report.fault_epoch;
  out.checkpoints_dropped = base->report.checkpoints_dropped;
  out.environment = base->report.environment;
  out.run_dir = base->report.run_dir;
  out.rank = base->rank;

  std::set<int32_t> seen_ranks;
  int32_t declared_world = 1;
  for (const RankReport* r : all) {
    if (r->rank >= 0) seen_ranks.insert(r->rank);
    declared_world = std::max(declared_world, r->report.world_size);
    out.steps_seen = std::max(out.steps_seen, r->report.steps_seen);
    out.checks += r->report.checks;
    out.nonfinite_checks += r->report.nonfinite_checks;
  }
  out.world_size = std::max<int32_t>(int32_t(ranks.size()), declared_world);
  if (out.world_size > 1) {
    out.environment["rank"] = std::to_string(out.rank);
    out.environment["world_size"] = std::to_string(out.world_size);
  }

  std::vector<std::string> later;
  for (const RankReport* r : all) {
    const std::string who = rank_label(*r);
    if (r == origin) continue;
    const Finding& f = r->report.finding;
    if (!f.found) {
      out.notes.push_back(no_fault_text(*r));
      continue;
    }
    std::string line = who + ": " + finding_text(f) + " - ";
    // Input data are loaded by each rank on its own: all-reduce cannot put a NaN there.
    if (f.origin.site.phase == Phase::Input)
      line += "a fault of its own (input data do not pass through all-reduce), later than " + rank_label(*origin) + "'s";
    else
      line += "follows from " + rank_label(*origin) + " via all-reduce";
    out.notes.push_back(line);
    later.push_back(who + " at step " + std::to_string(f.step()) + " (" + to_string(f.origin.site.phase) + ")");
  }
  if (origin && all.size() > 1) {
    std::ostringstream o;
    o << "Of " << all.size() << " ranks, " << rank_label(*origin)
      << " saw the first non-finite value in training order (step, then phase: gradients are checked before "
         "all-reduce).";
    if (!later.empty()) {
      o << " Later findings (";
      for (size_t i = 0; i < later.size(); ++i) o << (i ? ", " : "") << later[i];
      o << ") follow from it.";
    }
    std::string& ex = out.finding.explanation;
    if (!ex.empty() && ex.back() != '.') ex += '.';
    ex += (ex.empty() ? "" : " ") + o.str();
  }

  for (const RankReport* r : all) {
    const std::string who = rank_label(*r);
    for (ScalerSkip s : r->report.benign_skips) {
      s.first_site = s.first_site.empty() ? who : who + ": " + s.first_site;
      out.benign_skips.push_back(s);
    }
    for (HeadroomWarning w : r->report.warnings) {
      w.reason = who + ": " + w.reason;
      out.warnings.push_back(w);
    }
    for (const auto& [name, points] : r->report.series) out.series[who + ": " + name] = points;
    for (const auto& n : r->report.notes) out.notes.push_back(who + ": " + n);
  }
  std::stable_sort(out.benign_skips.begin(), out.benign_skips.end(),
                   [](const ScalerSkip& a, const ScalerSkip& b) { return a.step < b.step; });
  std::stable_sort(out.warnings.begin(), out.warnings.end(),
                   [](const HeadroomWarning& a, const HeadroomWarning& b) { return a.step < b.step; });

  if (declared_world > int32_t(seen_ranks.size())) {
    std::string missing;
    for (int32_t k = 0; k < declared_world; ++k)
      if (!seen_ranks.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
    if (!missing.empty())
      out.notes.push_back("no report merged for rank(s) " + missing + " of world size " +
                          std::to_string(declared_world));
  }
  std::string sources;
  for (const RankReport* r : all) sources += (sources.empty() ? "" : ", ") + r->source;
  out.notes.push_back("merged from " + std::to_string(all.size()) + " report(s): " + sources);
  return out;
}

}  // namespace nantrace
