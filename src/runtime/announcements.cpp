#include "runtime/announcements.h"

#include <sstream>

#include "core/model.h"

namespace nantrace {
namespace announce {

std::string site(const CheckRecord& r) {
  std::ostringstream o;
  o << "step " << r.step << ", " << to_string(r.site.phase);
  if (!r.site.module_path.empty()) o << ", " << r.site.module_path;
  if (!r.site.module_type.empty()) o << " (" << r.site.module_type << ")";
  if (!r.site.op.empty()) o << ", " << r.site.op;
  o << ", " << r.site.tensor_name << " " << to_string(r.dtype) << ": " << r.stats.nan_count << " NaN, "
    << r.stats.posinf_count << " +Inf, " << r.stats.neginf_count << " -Inf of " << r.stats.numel;
  return o.str();
}

std::string first_nonfinite(const CheckRecord& origin) { return "first non-finite value: " + site(origin); }

std::string early_warning(const HeadroomWarning& w) {
  std::ostringstream o;
  o << "early warning at step " << w.step << ": " << w.module_path << " " << to_string(w.dtype)
    << " output reaches |x| = " << w.max_abs << " (" << w.binades_left << " binades below the max): " << w.reason;
  return o.str();
}

std::string finding(const Finding& f) {
  if (!f.found) return "finding: " + f.recommendation.headline;
  std::string line = std::string("finding: ") + describe(f) + " at step " + std::to_string(f.step()) + " (" +
                     to_string(f.origin.site.phase) + ")";
  if (!f.origin.site.module_path.empty()) line += " in " + f.origin.site.module_path;
  if (!f.op.empty()) line += ", op " + f.op;
  return line;
}

std::string origin_located(const Finding& f) {
  const bool same_step = f.first_seen && f.first_seen->step == f.origin.step;
  const char* rerun = f.origin.site.phase == Phase::Backward ? "origin located by re-running the step's forward and backward: "
                                                              : "origin located by re-running the step's forward: ";
  std::string line = (same_step ? std::string(rerun) : std::string("origin located when the value recurred at ")) +
                     site(f.origin);
  if (f.first_seen)
    line += " (first seen at step " + std::to_string(f.first_seen->step) + " in " + to_string(f.first_seen->site.phase) +
            ", on a step whose module outputs were not checked)";
  return line;
}

std::string backward_birth(const Finding& f) {
  const BackwardBirth& b = *f.backward;
  const std::string where = f.origin.site.module_path.empty() ? "the loss computation" : f.origin.site.module_path;
  std::string line = "the first non-finite gradient arrived at " + b.seen_at + "'s output, which did not make it: the "
                     "backward of " + where;
  if (!b.node.empty()) line += " (" + b.node + ")";
  return line + " made it from a finite gradient at its own output";
}

std::string evaluation(const CheckRecord& e, bool training_fault_known) {
  std::string line = "non-finite value in evaluation (eval mode, no_grad), " +
                     (e.step >= 1 ? "after step " + std::to_string(e.step) : std::string("before step 1")) + ": " +
                     (e.site.role == Role::Input ? "the batch entering " + e.site.module_path + " (" + e.site.tensor_name + ")"
                                                 : e.site.module_path + " " + e.site.tensor_name) +
                     " " + to_string(e.dtype) + ": " + std::to_string(e.stats.nan_count) + " NaN, " +
                     std::to_string(e.stats.posinf_count + e.stats.neginf_count) + " Inf of " + std::to_string(e.stats.numel);
  return line + (training_fault_known ? "; not the training fault" : "; training has stayed finite so far");
}

std::string origin_moved(const CheckRecord& seen, const Finding& f) {
  const std::string where = f.origin.site.module_path.empty() ? "the loss computation" : f.origin.site.module_path;
  std::string line = "the first value seen non-finite (" + std::string(to_string(seen.site.phase)) +
                     (seen.site.module_path.empty() ? "" : ", " + seen.site.module_path) +
                     ") is not where it was born: ";
  if (module_path_encloses(f.origin.site.module_path, seen.site.module_path))
    line += "its inputs were already non-finite, and it was born in " + where + "'s own code between its submodules";
  else
    line += "the origin is " + where + " (" + to_string(f.origin.site.phase) + "), see the report's Why";
  return line;
}

std::string loss_blowup(const LossBlowup& b) {
  std::ostringstream o;
  o << "warning: the loss blew up without NaN: from about " << b.baseline << " to about " << b.level << " at step "
    << b.begin_step << ", and it stayed there";
  if (!b.module.empty()) o << "; the largest jump was in " << b.module << " (" << b.module_jump << "x)";
  return o.str();
}

std::string fix(const Finding& f) { return "fix: " + f.recommendation.headline; }


std::string poisoned_checkpoint(const CheckpointSave& c) {
  std::string line = "checkpoint " + c.path + " (step " + std::to_string(c.step) + ") ";
  if (c.nonfinite_tensors > 0)
    line += "holds NaN/Inf in " + std::to_string(c.nonfinite_tensors) + " of " + std::to_string(c.tensors) + " tensors";
  else
    line += "was written after the fault";
  return line + ": do not resume from it";
}

}  // namespace announce
}  // namespace nantrace
