// Puts what the analysis consumes back into program order. Every item takes a sequence
// number when it is issued; CPU checks are complete at once, device checks complete later
// (on the collector thread). Items are released strictly in sequence order.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model.h"

namespace nantrace {

struct SequencedItem {
  enum class Kind { StepBegin, Check, Event, Scalar } kind = Kind::Check;
  bool ready = true;
  int64_t step = 0;  // StepBegin
  CheckRecord check;
  EventRecord event;
  ScalarRecord scalar;
};

class Sequencer {
 public:
  uint64_t reserve() { return next_seq_++; }
  // Submit an item under its reserved number. Not thread-safe: callers hold the runtime lock.
  void put(uint64_t seq, SequencedItem item);
  // A device check finished (or failed: stats untouched, checked=false with the reason).
  void complete(uint64_t seq, const TensorStats& stats, std::vector<std::string> kernels);
  void fail(uint64_t seq, const std::string& reason);
  // Release every item that is next in order and ready.
  template <class F>
  void drain(F&& emit) {
    for (auto it = waiting_.begin(); it != waiting_.end() && it->first == next_emit_ && it->second.ready;
         it = waiting_.begin()) {
      SequencedItem item = std::move(it->second);
      waiting_.erase(it);
      ++next_emit_;
      emit(item);
    }
  }
  // At exit: whatever is still pending is released as "not checked".
  void fail_all_pending(const std::string& reason);
  size_t pending() const { return waiting_.size(); }

 private:
  uint64_t next_seq_ = 0;
  uint64_t next_emit_ = 0;
  std::map<uint64_t, SequencedItem> waiting_;
};

}  // namespace nantrace
