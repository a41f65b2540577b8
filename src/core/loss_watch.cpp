#include "core/loss_watch.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nantrace {

double LossWatch::median(std::deque<std::pair<int64_t, double>>::const_iterator b,
                         std::deque<std::pair<int64_t, double>>::const_iterator e) {
  std::vector<double> v;
  for (auto it = b; it != e; ++it) v.push_back(it->second);
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

std::optional<LossBlowup> LossWatch::observe(int64_t step, double loss) {
  if (!std::isfinite(loss)) return std::nullopt;
  std::optional<LossBlowup> out;
  const double magnitude = std::fabs(loss);
  if (!confirmed_) {
    if (candidate_) {
      if (magnitude > kFactor * candidate_->baseline) {
        ++candidate_count_;
        candidate_sum_ += magnitude;
        if (candidate_count_ >= kConfirmSteps) {
          candidate_->level = candidate_sum_ / candidate_count_;
          candidate_->confirmed_step = step;
          confirmed_ = candidate_;
          out = confirmed_;
        }
      } else {
        candidate_.reset();  // a spike that fell back
      }
    }
    if (!candidate_ && !confirmed_ && finite_.size() >= kMinBaseline) {
      const size_t n = std::min(kBaselineSteps, finite_.size());
      const double base = median(finite_.end() - long(n), finite_.end());
      if (base > 0 && magnitude > kFactor * base) {
        LossBlowup b;
        b.begin_step = step;
        b.baseline = base;
        b.level = magnitude;
        candidate_ = b;
        candidate_count_ = 1;
        candidate_sum_ = magnitude;
      }
    }
  }
  finite_.emplace_back(step, magnitude);
  if (finite_.size() > kMaxKept) finite_.pop_front();
  return out;
}

std::optional<bool> LossWatch::recovered_after(int64_t step) const {
  // The level: the losses up to and including the first skipped step (its forward was fine;
  // the Inf was in the scaled gradients), so a run that skips from step 1 has one too.
  auto first_at = std::find_if(finite_.begin(), finite_.end(), [&](const auto& p) { return p.first > step; });
  const size_t before = size_t(first_at - finite_.begin());
  if (before == 0) return std::nullopt;
  const size_t n = std::min(kBaselineSteps, before);
  const double base = median(first_at - long(n), first_at);
  bool any_after = false;
  for (auto it = first_at; it != finite_.end(); ++it) {
    if (it->first <= step) continue;
    any_after = true;
    if (it->second <= kRecoveredFactor * std::max(base, 1e-30)) return true;
  }
  return any_after ? std::optional<bool>(false) : std::nullopt;
}

}  // namespace nantrace
