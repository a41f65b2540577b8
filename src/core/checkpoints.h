// The checkpoints a run wrote (every torch.save to a file), each judged against the fault: the
// last clean one to resume from, and the poisoned ones (holding NaN/Inf, or written after the
// fault without a count) not to. Bounded: the most recent kMaxKept saves are listed, and the
// last clean save before the fault is kept whatever came after it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/frontend_events.h"
#include "core/model.h"

namespace nantrace {

class CheckpointLog {
 public:
  static constexpr size_t kMaxKept = 128;

  // A save in `step`; `after_fault`: the fault had been seen when it was written.
  void on_save(const events::Checkpoint& e, int64_t step, bool after_fault);

  const std::vector<CheckpointSave>& saves() const { return saves_; }
  const std::optional<CheckpointSave>& last_clean_before_fault() const { return last_clean_; }
  int64_t dropped() const { return dropped_; }
  // The first poisoned save of the run, once (for the stderr line): nullopt afterwards.
  std::optional<CheckpointSave> take_first_poisoned();

 private:
  std::vector<CheckpointSave> saves_;
  std::optional<CheckpointSave> last_clean_;
  int64_t dropped_ = 0;
  bool poisoned_announced_ = false;
  std::optional<CheckpointSave> pending_poisoned_;
};

// The poisoned saves that head their numbered family at the end of the run (no later save of
// the family became its newest): what a script resuming from "the latest" would load.
std::vector<CheckpointSave> poisoned_heads(const std::vector<CheckpointSave>& saves);

// The verdict on one save, in words for the report's table ("poisoned: do not resume from it").
std::string checkpoint_verdict(const CheckpointSave& s, const std::optional<CheckpointSave>& last_clean);

}  // namespace nantrace
