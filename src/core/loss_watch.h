// Watches the loss for what no NaN announces: a blow-up (the loss jumps orders of magnitude
// above its recent level and stays there), and whether the loss came back after GradScaler's
// skipped steps. The trigger is written here and in docs/architecture.md ("Loss blow-up").
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

namespace nantrace {

struct LossBlowup {
  int64_t begin_step = 0;  // the first step of the jump
  double baseline = 0;     // median loss of the steps just before it
  double level = 0;        // median loss of the steps that confirmed it
  int64_t confirmed_step = 0;
  std::string module;      // the module whose largest |x| jumped most at begin_step ("" unknown)
  double module_jump = 0;  // by this factor over its level before
  int64_t module_step = 0;  // the step that was read at: begin_step, or the first checked after it
};

class LossWatch {
 public:
  // A blow-up: a finite loss above kFactor x the median of the (up to) kBaselineSteps finite
  // losses before it (at least kMinBaseline of them), staying above that for kConfirmSteps
  // consecutive recorded steps. A spike that falls back is not one. Reported once per run.
  static constexpr double kFactor = 100.0;
  static constexpr int kConfirmSteps = 3;
  static constexpr size_t kBaselineSteps = 5;
  static constexpr size_t kMinBaseline = 3;
  // "Recovered" after skips: some later finite loss within kRecoveredFactor x the level before.
  static constexpr double kRecoveredFactor = 10.0;

  // One loss value of a step (the first of the step). Returns the blow-up when this value
  // confirms it. Non-finite values are ignored: they are faults, found elsewhere.
  std::optional<LossBlowup> observe(int64_t step, double loss);
  const std::optional<LossBlowup>& blowup() const { return confirmed_; }
  // Whether the loss returned near its level up to `step` (the first skipped step) at some
  // later step: nullopt when there is no finite loss before and after to tell.
  std::optional<bool> recovered_after(int64_t step) const;

 private:
  static double median(std::deque<std::pair<int64_t, double>>::const_iterator b,
                       std::deque<std::pair<int64_t, double>>::const_iterator e);
  std::deque<std::pair<int64_t, double>> finite_;  // recent finite losses, bounded
  std::optional<LossBlowup> candidate_, confirmed_;
  int candidate_count_ = 0;
  double candidate_sum_ = 0;
  static constexpr size_t kMaxKept = 4096;
};

}  // namespace nantrace
