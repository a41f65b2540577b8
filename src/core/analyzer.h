// The analysis: consumes checks, events and scalars in program order and keeps the first
// fault origin, the loss scaler's handled skips, early warnings and the histories the report
// shows. Bounded: per-step series and per-module histories are capped.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/advisor.h"
#include "core/checkpoints.h"
#include "core/frontend_events.h"
#include "core/headroom.h"
#include "core/model.h"

namespace nantrace {

struct AnalyzerOptions {
  int64_t warn_horizon = 20;
};

// What one check meant, for the caller's side effects (stderr line, trace marker).
struct CheckOutcome {
  bool nonfinite = false;
  bool new_origin = false;       // this check is (or settled) the first fault origin
  bool new_benign_skip = false;
  bool origin_located = false;   // a recurrence located the origin that was first seen unchecked
  bool new_evaluation = false;   // the first non-finite value seen in an evaluation forward
  std::optional<CheckpointSave> poisoned_checkpoint;  // the run's first poisoned save, once
  std::optional<HeadroomWarning> warning;
};

class Analyzer {
 public:
  explicit Analyzer(AnalyzerOptions options = {});

  void on_step_begin(int64_t step);
  CheckOutcome on_check(const CheckRecord& rec);
  CheckOutcome on_event(const EventRecord& ev);
  // A scalar; returns the loss blow-up this value confirmed, if any (for the stderr line).
  std::optional<LossBlowup> on_scalar(const ScalarRecord& s);
  void on_meta(const std::string& key, const std::string& value);
  // End of the run: a pending candidate (non-finite gradient not yet settled) is decided.
  CheckOutcome finish();

  bool origin_found() const { return origin_.has_value(); }
  uint64_t checks() const { return checks_; }
  uint64_t nonfinite_checks() const { return nonfinite_checks_; }
  // The module whose inputs the frontend should capture when the fault recurs (device tensors
  // are checked asynchronously, so the origin is known only after its forward returned): the
  // origin's module for a value born in a forward, "" when capturing cannot add evidence (no
  // origin yet, another phase, bad input data, a value that arrived already non-finite).
  std::string capture_target() const;
  int64_t current_step() const { return step_; }
  // The finding with its kind, explanation and recommendation, as known now.
  Finding finding() const;
  Report build_report() const;

  static constexpr size_t kMaxSeriesPoints = 20000;
  static constexpr size_t kMaxEvidence = 64;
  static constexpr size_t kMaxSkipsKept = 1000;

 private:
  struct StepScaler {
    bool skipped = false;     // GradScaler skipped an optimizer step in this step
    bool found_inf = false;   // scaler.update() saw inf
    double scale_before = 0, scale_after = 0;
  };
  void settle_candidate_as_fault();
  void settle_candidate_as_benign(int64_t step);
  void attach_evidence(const CheckRecord& rec);
  void move_origin_to_enclosing(const events::OriginInCode& e);
  void attribute_to_backward(const events::BackwardOrigin& e, int64_t step);
  void mark_unlocated_if_sampled_out();
  void locate_origin_at(const CheckRecord& rec);
  void note_recurrence(const CheckRecord& rec, CheckOutcome* out);
  int64_t fault_step() const;
  void add_series(const std::string& name, int64_t step, double value);
  int consecutive_skips_from(int64_t step) const;
  double recent_growth() const;
  // The largest update-to-weight ratio of the updates in the steps before `step` (up to 3 back)
  // and the step it was measured at; {0, -1} when none was recorded.
  std::pair<double, int64_t> update_ratio_before(int64_t step) const;
  AdviceContext advice_context(const Finding& f) const;

  AnalyzerOptions options_;
  int64_t step_ = 0;
  int64_t max_step_ = 0;
  uint64_t checks_ = 0, nonfinite_checks_ = 0;

  std::optional<CheckRecord> origin_;
  std::optional<CheckRecord> candidate_;  // non-finite gradient awaiting the scaler's verdict
  bool collecting_evidence_ = false;
  // Between the frontend's "replay_start" and "replay" notes for the origin's module: the
  // checks of a replay of the culprit, which for device tensors runs at a later recurrence.
  bool replay_open_ = false;
  // The op was read from the autograd graph (nothing re-run): its node and, when it was not
  // pinned there, why (events::ReplayEnd).
  void clear_graph_pin();
  bool replay_graph_ = false;
  std::string graph_node_, graph_status_, graph_reason_;
  std::map<std::string, std::string> graph_input_ops_;
  int64_t replay_captured_step_ = -1;  // step of the recurrence whose inputs were replayed
  // Set when the first non-finite module output had non-finite inputs and the frontend traced
  // the value back to the code of an enclosing module: the origin was moved there; this is
  // the module whose output was the first one seen non-finite.
  std::string first_seen_at_;
  std::string replayed_inside_;  // the compiled module a replay looked inside to name the origin
  std::optional<BackwardBirth> backward_;  // the pending or settled backward gradient, followed back
  std::vector<CheckRecord> inputs_, params_, replay_;
  std::vector<CheckRecord> candidate_inputs_;

  std::map<int64_t, StepScaler> scaler_;  // bounded to recent steps
  bool scaler_seen_ = false;
  bool optimizer_stepped_before_origin_ = false;  // a real (not skipped) update happened before the fault
  std::vector<ScalerSkip> benign_skips_;
  int64_t benign_skip_total_ = 0;
  std::vector<HeadroomWarning> warnings_;
  HeadroomTracker headroom_;
  std::map<std::string, std::map<int64_t, double>> series_;
  LossWatch loss_watch_;
  std::optional<LossBlowup> blowup_;  // with the module that jumped
  void name_blowup_module();
  std::optional<CheckRecord> evaluation_;  // the first non-finite value of an evaluation forward
  int64_t evaluation_nonfinite_ = 0;       // evaluation checks that were non-finite
  CheckpointLog checkpoints_;
  std::vector<EpochSpan> epochs_;  // where each pass over the training loader began (bounded)
  std::map<std::string, std::string> meta_;
  // Training config seen on the command line.
  std::string config_path_;
  std::optional<bool> config_fp16_;  // the training config's fp16 switch, and its key
  std::string config_fp16_key_, config_lr_key_;
  std::optional<double> config_lr_;
  std::optional<double> default_lr_;  // the known trainer's default learning rate
  std::string trainer_;               // the known trainer's name ("GPT-SoVITS s2_train.py")
  std::string step_counter_;
  int64_t step_counter_offset_ = 0;
  std::optional<bool> fp32_replay_finite_;
  double fp32_replay_max_abs_ = 0;
  std::vector<std::string> notes_;
  // After the origin: the first non-finite output of each later step (bounded), and how the
  // check level changed, so the report can say which step was seen at which precision.
  std::map<int64_t, CheckRecord> recurrences_;
  // Locating an origin first seen where the code before it was not checked: a step whose
  // module checks were sampled out (the frontend's full-checks switch names it) and whose
  // first non-finite value was a loss or gradient. The next recurrence in a forward module
  // locates it, unless an optimizer update ran since (the weights may then carry the value).
  int64_t forward_outputs_in_step_ = 0;
  int64_t last_recurrence_step_ = -1;
  int64_t sampled_out_step_ = -1;
  bool unlocated_ = false;
  bool updated_since_origin_ = false;
  std::optional<CheckRecord> first_seen_;
  int64_t located_step_ = -1;
  // A step replay (the sampled-out step's root forwards re-run at once, every module output
  // checked) is running: its first non-finite forward output locates the origin at that step.
  bool step_replay_open_ = false;
  bool located_by_step_replay_ = false;
  // The first op-level check inside the origin's module, at a later step, that was that
  // step's first non-finite value: pins the op when the origin's own moment did not.
  std::optional<CheckRecord> op_recurrence_;
  std::vector<std::string> check_mode_changes_;
  static constexpr size_t kMaxRecurrences = 8;
};

}  // namespace nantrace
