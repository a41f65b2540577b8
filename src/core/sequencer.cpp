#include "core/sequencer.h"

namespace nantrace {

void Sequencer::put(uint64_t seq, SequencedItem item) {
  if (seq < next_emit_) return;  // already released as failed
  waiting_[seq] = std::move(item);
}

void Sequencer::complete(uint64_t seq, const TensorStats& stats, std::vector<std::string> kernels) {
  auto it = waiting_.find(seq);
  if (it == waiting_.end()) return;
  it->second.check.stats = stats;
  it->second.check.kernels = std::move(kernels);
  it->second.ready = true;
}

void Sequencer::fail(uint64_t seq, const std::string& reason) {
  auto it = waiting_.find(seq);
  if (it == waiting_.end()) return;
  it->second.check.checked = false;
  it->second.check.skip_reason = reason;
  it->second.ready = true;
}

void Sequencer::fail_all_pending(const std::string& reason) {
  for (auto& [seq, item] : waiting_) {
    if (item.ready) continue;
    item.check.checked = false;
    item.check.skip_reason = reason;
    item.ready = true;
  }
  // Anything left behind a gap (never submitted) is skipped over.
  if (!waiting_.empty() && waiting_.begin()->first > next_emit_) next_emit_ = waiting_.begin()->first;
}

}  // namespace nantrace
