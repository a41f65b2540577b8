#include "core/checkpoints.h"

namespace nantrace {

void CheckpointLog::on_save(const events::Checkpoint& e, int64_t step, bool after_fault) {
  CheckpointSave s;
  s.path = e.path;
  s.step = step;
  s.tensors = e.tensors.value_or(-1);
  s.nonfinite_tensors = e.nonfinite_tensors.value_or(-1);
  s.nonfinite_names = e.nonfinite_names;
  s.after_fault = after_fault;
  s.pattern = e.pattern;
  s.heads_pattern = e.heads_pattern;
  s.resumed_from = e.resumed_from_pattern;
  if (!after_fault && s.nonfinite_tensors == 0) last_clean_ = s;
  if (s.poisoned() && !poisoned_announced_) {
    poisoned_announced_ = true;
    pending_poisoned_ = s;
  }
  saves_.push_back(std::move(s));
  if (saves_.size() > kMaxKept) {
    saves_.erase(saves_.begin());
    ++dropped_;
  }
}

std::optional<CheckpointSave> CheckpointLog::take_first_poisoned() {
  std::optional<CheckpointSave> p = std::move(pending_poisoned_);
  pending_poisoned_.reset();
  return p;
}

std::vector<CheckpointSave> poisoned_heads(const std::vector<CheckpointSave>& saves) {
  std::vector<CheckpointSave> out;
  for (size_t i = 0; i < saves.size(); ++i) {
    const CheckpointSave& c = saves[i];
    if (!c.poisoned() || !c.heads_pattern || c.pattern.empty()) continue;
    bool later = false;
    for (size_t j = i + 1; j < saves.size(); ++j) later |= saves[j].pattern == c.pattern && saves[j].heads_pattern;
    if (!later) out.push_back(c);
  }
  return out;
}

std::string checkpoint_verdict(const CheckpointSave& s, const std::optional<CheckpointSave>& last_clean) {
  if (s.poisoned()) {
    if (s.nonfinite_tensors > 0) return "poisoned: do not resume from it";
    return "written after the fault, not counted: do not resume from it";
  }
  if (s.after_fault) return "written after the fault; its tensors are finite, but the fault's cause is still there";
  if (s.nonfinite_tensors < 0) return "not counted";
  if (last_clean && last_clean->path == s.path && last_clean->step == s.step) return "clean: resume from this one";
  return "clean";
}

}  // namespace nantrace
