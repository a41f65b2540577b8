#include "core/analyzer.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/classifier.h"
#include "core/frontend_events.h"

namespace nantrace {
namespace {

bool same_site(const CheckRecord& a, const CheckRecord& b) {
  return a.site.module_path == b.site.module_path && a.site.phase == b.site.phase;
}

}  // namespace

Analyzer::Analyzer(AnalyzerOptions options) : options_(options), headroom_(options.warn_horizon) {}

void Analyzer::on_step_begin(int64_t step) {
  name_blowup_module();
  // A non-finite gradient that neither reached an optimizer nor was skipped by a scaler
  // in its own step is still a fault (no loss scaler handled it).
  if (candidate_ && step != candidate_->step) {
    auto it = scaler_.find(candidate_->step);
    if (it != scaler_.end() && (it->second.skipped || it->second.found_inf))
      settle_candidate_as_benign(candidate_->step);
    else
      settle_candidate_as_fault();
  }
  if (step != step_) forward_outputs_in_step_ = 0;
  step_ = step;
  max_step_ = std::max(max_step_, step);
  collecting_evidence_ = collecting_evidence_ && origin_ && origin_->step == step;
  while (scaler_.size() > 4096) scaler_.erase(scaler_.begin());
}

CheckOutcome Analyzer::on_check(const CheckRecord& rec) {
  CheckOutcome out;
  ++checks_;
  if (!rec.checked) return out;
  const bool bad = has_nonfinite(rec.stats);
  out.nonfinite = bad;
  if (bad) ++nonfinite_checks_;
  if (rec.site.phase == Phase::Evaluation) {
    // An evaluation forward changes nothing in training: what it shows is its own finding,
    // never the training fault, and never evidence of one.
    if (bad) {
      ++evaluation_nonfinite_;
      if (!evaluation_) {
        evaluation_ = rec;
        out.new_evaluation = true;
      }
    }
    return out;
  }

  if (rec.site.role != Role::Output) {
    // Evidence for the site just found (inputs, parameters, replayed ops), or from a replay
    // of it on inputs captured at a later recurrence.
    if (collecting_evidence_ || (replay_open_ && origin_ && rec.site.module_path == origin_->site.module_path))
      attach_evidence(rec);
    else if (candidate_ && same_site(rec, *candidate_) && candidate_inputs_.size() < kMaxEvidence)
      candidate_inputs_.push_back(rec);
    return out;
  }
  collecting_evidence_ = false;
  if (rec.site.phase == Phase::Forward && rec.step == step_) ++forward_outputs_in_step_;

  if (!bad) {
    if (rec.site.phase == Phase::Forward && !origin_) {
      out.warning = headroom_.observe(rec.step, rec.site.module_path, rec.dtype, rec.stats.max_abs_finite);
      if (out.warning) warnings_.push_back(*out.warning);
    } else if (rec.site.phase == Phase::Forward) {
      headroom_.observe(rec.step, rec.site.module_path, rec.dtype, rec.stats.max_abs_finite);
    }
    if (rec.site.phase == Phase::Backward && is_half(rec.dtype) && rec.stats.numel > 0) {
      const double share = double(rec.stats.zero_count + rec.stats.subnormal_count) / double(rec.stats.numel);
      auto& s = series_["grad_underflow_share"];
      auto it = s.find(rec.step);
      if (it == s.end() || it->second < share) add_series("grad_underflow_share", rec.step, share);
    }
    return out;
  }
  if (origin_) {
    note_recurrence(rec, &out);
    return out;
  }

  switch (rec.site.phase) {
    case Phase::Backward:
    case Phase::Unscale:
      // Inf in (scaled) gradients: benign if the loss scaler skips this step, a fault otherwise.
      if (!candidate_) {
        candidate_ = rec;
        candidate_inputs_.clear();
      }
      return out;
    case Phase::OptimizerGrad:
      // Non-finite gradients reached an optimizer that is about to step: a fault. The
      // earliest non-finite gradient of this step (if seen) is the origin.
      if (!candidate_) candidate_ = rec;
      settle_candidate_as_fault();
      out.new_origin = true;
      return out;
    default:
      candidate_.reset();
      origin_ = rec;
      collecting_evidence_ = true;
      mark_unlocated_if_sampled_out();
      out.new_origin = true;
      return out;
  }
}

// A later step's first non-finite value: kept for the report (bounded); it locates an origin
// first seen unchecked, or pins the op inside the origin's module by op-level checks.
void Analyzer::note_recurrence(const CheckRecord& rec, CheckOutcome* out) {
  if (step_replay_open_ && unlocated_ && rec.step == origin_->step &&
      (rec.site.phase == Phase::Forward || rec.site.phase == Phase::Backward) && !rec.site.module_path.empty()) {
    // The same step again, same batch, RNG and weights: where the value is born, at once.
    located_by_step_replay_ = true;
    step_replay_open_ = false;
    locate_origin_at(rec);
    out->origin_located = true;
    return;
  }
  if (rec.step <= origin_->step || rec.step == last_recurrence_step_) return;  // not the step's first
  last_recurrence_step_ = rec.step;
  if (recurrences_.size() < kMaxRecurrences) recurrences_.emplace(rec.step, rec);
  if (unlocated_ && !updated_since_origin_ && rec.site.phase == Phase::Forward && !rec.site.module_path.empty()) {
    locate_origin_at(rec);
    out->origin_located = true;
    return;
  }
  // After an update the weights may be what is non-finite: an op there only carries them.
  if (!op_recurrence_ && !updated_since_origin_ && !rec.site.op.empty() && rec.site.phase == Phase::Forward &&
      origin_->site.phase == Phase::Forward &&
      (rec.site.module_path == origin_->site.module_path ||
       module_path_encloses(origin_->site.module_path, rec.site.module_path)))
    op_recurrence_ = rec;
}

// The origin was a loss or gradient on a step whose module outputs were not checked: what made
// it was not seen (its kind cannot be decided from it) until a recurrence locates it.
void Analyzer::mark_unlocated_if_sampled_out() {
  if (!origin_ || first_seen_ || origin_->step != sampled_out_step_) return;
  // Only a loss, or gradients reaching an optimizer, leave unseen what made them. A gradient
  // at a root's output (checked on sampled-out steps too) was read where it was born; a
  // parameter non-finite after an update whose gradients were checked finite was made by it.
  if (origin_->site.phase != Phase::Loss && origin_->site.phase != Phase::OptimizerGrad) return;
  if (forward_outputs_in_step_ > 0) return;
  unlocated_ = true;
}

// The recurrence is where the value is born: the origin moves there, the first sighting is
// kept for the fault's step, and the evidence that follows (the module's inputs and
// parameters, a replay of it) is this recurrence's.
void Analyzer::locate_origin_at(const CheckRecord& rec) {
  first_seen_ = *origin_;
  origin_ = rec;
  located_step_ = rec.step;
  unlocated_ = false;
  inputs_.clear();
  params_.clear();
  replay_.clear();
  clear_graph_pin();
  fp32_replay_finite_.reset();
  replay_captured_step_ = rec.step;
  collecting_evidence_ = true;
}

int64_t Analyzer::fault_step() const {
  if (first_seen_) return first_seen_->step;
  return origin_ ? origin_->step : -1;
}

// "origin_in_code" {"module": P, "module_type": T}: the origin's inputs were already
// non-finite although nothing checked before was, and P encloses it: the value was born in
// P's own code between its submodules. The origin moves to P; its evidence (P's inputs,
// parameters, a replay of P) follows. Only while that evidence can still come: right after
// the origin, or, with "recurrence": true, from a replay of P at a later recurrence (device
// tensors); and only outwards: P must enclose the current origin module.
void Analyzer::move_origin_to_enclosing(const events::OriginInCode& e) {
  if (!origin_ || e.module.empty()) return;
  if (!collecting_evidence_ && !e.recurrence) return;
  const std::string& cur = origin_->site.module_path;
  if (!module_path_encloses(e.module, cur)) return;
  if (first_seen_at_.empty()) first_seen_at_ = cur;
  origin_->site.module_path = e.module;
  origin_->site.module_type = e.module_type;
  origin_->site.tensor_name = "code before `" + first_seen_at_ + "`";
  inputs_.clear();
  params_.clear();
  replay_.clear();
  clear_graph_pin();
}

void Analyzer::clear_graph_pin() {
  replay_graph_ = false;
  graph_node_.clear();
  graph_status_.clear();
  graph_reason_.clear();
  graph_input_ops_.clear();
}

// "backward_origin": the first non-finite gradient of a backward, seen at `seen_at`'s output,
// was made by the backward of what consumed that output. It names the pending candidate (or
// the origin it settled into in this same step) by that module; anything else is stale.
void Analyzer::attribute_to_backward(const events::BackwardOrigin& e, int64_t step) {
  CheckRecord* rec = nullptr;
  if (!origin_ && candidate_) rec = &*candidate_;
  else if (origin_ && (!first_seen_ || located_by_step_replay_) && first_seen_at_.empty()) rec = &*origin_;
  if (!rec || backward_ || rec->site.phase != Phase::Backward || rec->step != step ||
      rec->site.module_path != e.seen_at || e.seen_at.empty())
    return;
  backward_ = BackwardBirth{e.seen_at, rec->site.tensor_name, e.node, e.consumers};
  rec->site.tensor_name = e.seen_at + "'s " + rec->site.tensor_name;
  rec->site.module_path = e.module;
  rec->site.module_type = e.module_type;
}

void Analyzer::settle_candidate_as_fault() {
  if (!candidate_ || origin_) {
    candidate_.reset();
    return;
  }
  origin_ = *candidate_;
  inputs_ = candidate_inputs_;
  candidate_.reset();
  collecting_evidence_ = origin_->step == step_;
  mark_unlocated_if_sampled_out();
}

void Analyzer::settle_candidate_as_benign(int64_t step) {
  ScalerSkip skip;
  skip.step = step;
  auto it = scaler_.find(step);
  if (it != scaler_.end()) {
    skip.scale_before = it->second.scale_before;
    skip.scale_after = it->second.scale_after;
  }
  skip.first_site = candidate_ ? candidate_->site.module_path + " " + candidate_->site.tensor_name : "(not checked)";
  if (candidate_ && backward_) {
    skip.first_site = backward_->seen_at + " " + backward_->seen_tensor;
    backward_.reset();
  }
  ++benign_skip_total_;
  if (benign_skips_.size() < kMaxSkipsKept) benign_skips_.push_back(skip);
  candidate_.reset();
  candidate_inputs_.clear();
}

void Analyzer::attach_evidence(const CheckRecord& rec) {
  switch (rec.site.role) {
    case Role::Input:
      if (!rec.site.op.empty() && origin_ && rec.site.op != origin_->site.op) {
        if (replay_.size() < kMaxEvidence * 4) replay_.push_back(rec);
      } else if (inputs_.size() < kMaxEvidence) {
        inputs_.push_back(rec);
      }
      break;
    case Role::Param:
      if (params_.size() < kMaxEvidence) params_.push_back(rec);
      break;
    case Role::Replay:
      if (replay_.size() < kMaxEvidence * 4) replay_.push_back(rec);
      break;
    case Role::Output:
      break;
  }
}

// Overload set for std::visit.
template <class... F>
struct Visitor : F... {
  using F::operator()...;
};
template <class... F>
Visitor(F...) -> Visitor<F...>;

CheckOutcome Analyzer::on_event(const EventRecord& ev) {
  CheckOutcome out;
  std::string why;
  const std::optional<events::Event> typed = events::decode(ev, &why);
  if (!typed) {
    if (notes_.size() < 100) notes_.push_back("an event from the frontend was not understood: " + why);
    return out;
  }
  std::visit(
      Visitor{
          [&](const events::OptimizerStep& e) {
            if (e.lr) add_series("lr", ev.step, *e.lr);
            if (e.skipped) {
              scaler_seen_ = true;
              scaler_[ev.step].skipped = true;
              add_series("scaler_skipped", ev.step, 1.0);
            } else if (!origin_) {
              optimizer_stepped_before_origin_ = true;
            } else {
              updated_since_origin_ = true;
            }
          },
          [&](const events::ScalerUpdate& e) {
            scaler_seen_ = true;
            StepScaler& s = scaler_[ev.step];
            s.scale_before = e.scale_before;
            s.scale_after = e.scale_after;
            s.found_inf = e.found_inf;
            if (s.scale_after > 0) add_series("loss_scale", ev.step, s.scale_after);
            if (s.found_inf || s.skipped) {
              if (candidate_ && candidate_->step == ev.step) {
                settle_candidate_as_benign(ev.step);
                out.new_benign_skip = true;
              } else if (!candidate_ && !origin_) {
                // The scaler saw Inf where nantrace did not check (sampled step): still handled.
                settle_candidate_as_benign(ev.step);
                out.new_benign_skip = true;
              }
            }
          },
          [&](const events::Checkpoint& e) {
            checkpoints_.on_save(e, ev.step, origin_.has_value());
            out.poisoned_checkpoint = checkpoints_.take_first_poisoned();
          },
          [&](const events::Config& e) {
            config_path_ = e.path;
            if (e.fp16 && !e.fp16_key.empty()) {
              config_fp16_ = e.fp16;
              config_fp16_key_ = e.fp16_key;
            }
            if (!e.step_counter.empty() && e.step_counter_offset) {
              step_counter_ = e.step_counter;
              step_counter_offset_ = *e.step_counter_offset;
            }
            if (e.default_learning_rate) default_lr_ = e.default_learning_rate;
            if (!e.trainer.empty()) trainer_ = e.trainer;
            if (e.learning_rate && !e.lr_key.empty()) {
              config_lr_ = e.learning_rate;
              config_lr_key_ = e.lr_key;
            }
          },
          [&](const events::Warning&) {},
          [&](const events::CheckMode& e) {
            if (check_mode_changes_.size() >= 32) return;
            const std::string level = e.level.empty() ? "?" : e.level;
            std::string line = "From step " + std::to_string(ev.step + (level == "op" ? 1 : 0)) + ", " +
                               (level == "op" ? "every op inside `" + e.module + "` was checked (op-level checks)"
                                              : std::string("module outputs were checked on every step"));
            if (!e.reason.empty()) line += ", because of a " + e.reason;
            check_mode_changes_.push_back(line + ".");
            if (level == "module" && !e.reason.empty()) {  // this step's module checks were sampled out
              sampled_out_step_ = ev.step;
              mark_unlocated_if_sampled_out();
            }
          },
          [&](const events::Epoch& e) {
            if (epochs_.size() < 4096 && (epochs_.empty() || epochs_.back().begin_step < ev.step))
              epochs_.push_back(EpochSpan{e.epoch, ev.step, e.batches});
          },
          [&](const events::OriginInCode& e) { move_origin_to_enclosing(e); },
          [&](const events::BackwardOrigin& e) { attribute_to_backward(e, ev.step); },
          [&](const events::ReplayBegin& e) {
            if (e.step_replay) {
              step_replay_open_ = origin_ && unlocated_;
              return;
            }
            const bool for_origin = origin_ && (!e.module.empty() || e.graph) && e.module == origin_->site.module_path;
            replay_open_ = for_origin;
            if (for_origin && e.recurrence) replay_captured_step_ = e.step.value_or(-1);
            if (for_origin) replay_graph_ = e.graph;
          },
          [&](const events::ReplayEnd& e) {
            if (e.step_replay) {
              // Reproduced bit for bit with every module output finite: what the loss (or
              // gradient) holds was made outside the modules, and it is the origin as seen.
              if (step_replay_open_ && unlocated_ && e.status == "reproduced") unlocated_ = false;
              if (step_replay_open_ && notes_.size() < 100)
                notes_.push_back(e.status == "reproduced"
                                     ? "Re-running the step with every module output and gradient checked reproduced "
                                       "it bit for bit, every one of them finite."
                                     : "Re-running the step did not locate the origin: " +
                                           (e.reason.empty() ? e.status : e.reason) + ".");
              step_replay_open_ = false;
              return;
            }
            // A compiled module's replay says where inside it the value was made: the origin
            // moves in there (its outer inputs and parameters are not that module's).
            if (replay_open_ && origin_ && !e.op.empty() && e.module == origin_->site.module_path &&
                module_path_encloses(e.module, e.inner)) {
              replayed_inside_ = e.module;
              origin_->site.module_path = e.inner;
              origin_->site.module_type = e.inner_type;
              inputs_.clear();
              params_.clear();
            }
            if (replay_open_ && e.graph) {
              graph_node_ = e.node;
              graph_status_ = e.status;
              graph_reason_ = e.reason;
              graph_input_ops_ = e.input_ops;
            }
            replay_open_ = false;
          },
          [&](const events::FixCheck& e) {
            // One verdict per variant: the fp32 re-run is the fix the advice cites; the bf16
            // re-run (fp16-autocast runs) must not overwrite it.
            if (e.variant == "fp32") {
              fp32_replay_finite_ = e.finite;
              fp32_replay_max_abs_ = e.max_abs;
            } else if (e.finite && notes_.size() < 100) {
              const std::string module = e.module.empty() ? std::string("the culprit") : "`" + e.module + "`";
              notes_.push_back("Re-running " + module + " on the captured inputs under " + e.variant + " autocast is " +
                               (*e.finite ? "finite" : "still non-finite") + ".");
            }
          },
          [&](const events::EvidenceUnavailable& e) {
            if (notes_.size() >= 100) return;
            std::string line = "No " + (e.what.empty() ? std::string("evidence") : e.what);
            if (!e.module.empty()) line += " of `" + e.module + "`";
            line += ": " + (e.reason.empty() ? std::string("no reason given") : e.reason) + ".";
            notes_.push_back(line);
          },
          [&](const events::Capture& e) {
            if (notes_.size() >= 100 || e.stage == "armed") return;  // arming is routine
            std::string line = e.stage == "moved_outwards"
                                   ? "Capture at the recurrence moved out to `" + e.module + "`"
                                   : "Capture at the recurrence gave up" +
                                         (e.module.empty() ? std::string() : " on `" + e.module + "`");
            if (!e.why.empty()) line += ": " + e.why;
            notes_.push_back(line + ".");
          },
          [&](const events::ReproSaved& e) {
            if (notes_.size() < 100)
              notes_.push_back("The culprit module and its captured inputs are saved for `nantrace repro`: " + e.path + ".");
          },
          [&](const events::Note& e) {
            if (!e.label.empty() && notes_.size() < 100) notes_.push_back(e.label + (e.text.empty() ? "" : ": " + e.text));
          },
      },
      *typed);
  return out;
}

std::string Analyzer::capture_target() const {
  if (!origin_ || origin_->site.phase != Phase::Forward || origin_->site.module_path.empty()) return "";
  const FaultKind k = finding().kind;
  if (k == FaultKind::BadInput || k == FaultKind::Propagated) return "";
  return origin_->site.module_path;
}

std::optional<LossBlowup> Analyzer::on_scalar(const ScalarRecord& s) {
  add_series(s.name, s.step, s.value);
  if (s.name != "loss") return std::nullopt;
  std::optional<LossBlowup> b = loss_watch_.observe(s.step, s.value);
  if (b) {
    blowup_ = b;
    name_blowup_module();
    b = blowup_;
  }
  return b;
}

// The module whose largest |x| jumped most at the blow-up; asked again at each report while not
// known (with module outputs sampled out, the first checked step after the jump comes later).
void Analyzer::name_blowup_module() {
  if (!blowup_ || !blowup_->module.empty()) return;
  if (auto jump = headroom_.largest_jump(blowup_->begin_step)) {
    blowup_->module = jump->module;
    blowup_->module_jump = jump->factor;
    blowup_->module_step = jump->step;
  }
}

void Analyzer::on_meta(const std::string& key, const std::string& value) { meta_[key] = value; }

CheckOutcome Analyzer::finish() {
  CheckOutcome out;
  name_blowup_module();
  if (candidate_) {
    auto it = scaler_.find(candidate_->step);
    if (it != scaler_.end() && (it->second.skipped || it->second.found_inf)) {
      settle_candidate_as_benign(candidate_->step);
      out.new_benign_skip = true;
    } else {
      settle_candidate_as_fault();
      out.new_origin = true;
    }
  }
  return out;
}

void Analyzer::add_series(const std::string& name, int64_t step, double value) {
  auto& s = series_[name];
  s[step] = value;
  if (s.size() > kMaxSeriesPoints) s.erase(s.begin());
}

int Analyzer::consecutive_skips_from(int64_t step) const {
  int n = 0;
  for (int64_t s = step;; ++s) {
    auto it = scaler_.find(s);
    if (it == scaler_.end() || !(it->second.skipped || it->second.found_inf)) break;
    ++n;
  }
  return n;
}

double Analyzer::recent_growth() const {
  // Growth of the gradient norm (or the culprit's magnitude) over the recent steps before the fault.
  auto growth_of = [&](const std::map<int64_t, double>& s) {
    double first = 0, last = 0;
    int n = 0;
    for (auto it = s.rbegin(); it != s.rend() && n < 20; ++it) {
      if (origin_ && it->first >= fault_step()) continue;
      if (!std::isfinite(it->second) || it->second <= 0) continue;
      if (n == 0) last = it->second;
      first = it->second;
      ++n;
    }
    return (n >= 3 && first > 0) ? last / first : 1.0;
  };
  double g = 1.0;
  auto it = series_.find("grad_norm");
  if (it != series_.end()) g = std::max(g, growth_of(it->second));
  if (origin_) g = std::max(g, growth_of(headroom_.history(origin_->site.module_path, origin_->dtype)));
  return g;
}

std::pair<double, int64_t> Analyzer::update_ratio_before(int64_t step) const {
  std::pair<double, int64_t> best{0.0, -1};
  for (auto it = series_.lower_bound("update_ratio"); it != series_.end() && it->first.rfind("update_ratio", 0) == 0; ++it)
    for (auto p = it->second.lower_bound(step - 3); p != it->second.end() && p->first < step; ++p)
      if (std::isfinite(p->second) && p->second > best.first) best = {p->second, p->first};
  return best;
}

AdviceContext Analyzer::advice_context(const Finding& f) const {
  AdviceContext ctx;
  ctx.config_path = config_path_;
  ctx.config_fp16 = config_fp16_;
  ctx.config_fp16_key = config_fp16_key_;
  ctx.config_lr = config_lr_;
  ctx.config_lr_key = config_lr_key_;
  ctx.default_lr = default_lr_;
  ctx.trainer = trainer_;
  auto lr = series_.find("lr");
  if (lr != series_.end() && !lr->second.empty()) {
    auto it = lr->second.upper_bound(f.found ? f.step() : INT64_MAX);
    if (it != lr->second.begin()) ctx.lr = std::prev(it)->second;
  }
  auto dev = meta_.find("device");
  if (dev != meta_.end()) ctx.device_name = dev->second;
  ctx.fp32_replay_finite = fp32_replay_finite_;
  ctx.fp32_replay_max_abs = fp32_replay_max_abs_;
  ctx.growth = recent_growth();
  if (f.found) std::tie(ctx.update_ratio, ctx.update_ratio_step) = update_ratio_before(f.step());
  auto ratios = series_.find("update_ratio");
  if (lr != series_.end() && !lr->second.empty()) ctx.first_lr = lr->second.begin()->second;
  if (f.found && lr != series_.end() && ratios != series_.end()) {
    double best = INFINITY;
    for (const auto& [step, ratio] : ratios->second) {
      if (step >= f.step() || !(ratio > 0) || !std::isfinite(ratio)) continue;
      auto l = lr->second.find(step);
      if (l == lr->second.end() || !(l->second > 0)) continue;
      const double target = l->second * kTypicalUpdateRatio / ratio;
      if (target < best) {
        best = target;
        ctx.derive_step = step;
        ctx.derive_lr = l->second;
        ctx.derive_ratio = ratio;
      }
    }
  }
  if (checkpoints_.last_clean_before_fault()) ctx.last_checkpoint = checkpoints_.last_clean_before_fault()->path;
  ctx.checkpoints = &checkpoints_.saves();
  ctx.benign_skips = benign_skip_total_;
  if (!benign_skips_.empty()) ctx.skips_recovered = loss_watch_.recovered_after(benign_skips_.front().step);
  ctx.blowup = blowup_;
  ctx.evaluation = evaluation_;
  return ctx;
}

Finding Analyzer::finding() const {
  Finding f;
  if (origin_) {
    f.found = true;
    f.origin = *origin_;
    f.inputs = inputs_;
    f.params = params_;
    f.replay = replay_;
    FaultEvidence e;
    e.origin = &f.origin;
    e.inputs = inputs_;
    e.params = params_;
    e.replay = replay_;
    e.scaler_skips_from_origin = consecutive_skips_from(fault_step());
    e.trained_before_origin = optimizer_stepped_before_origin_;
    e.growth = recent_growth();
    std::tie(e.update_ratio, e.update_ratio_step) = update_ratio_before(fault_step());
    e.root_module = origin_->site.module_path.find('/') == std::string::npos && !origin_->site.module_path.empty();
    // The origin's own moment did not pin the op, a later one did (op-level checks inside the
    // module at a recurrence): classify on that op, and say where it was pinned.
    const bool pinned_now = !origin_->site.op.empty() ||
                            std::any_of(replay_.begin(), replay_.end(), [](const CheckRecord& r) {
                              return r.site.role == Role::Replay && has_nonfinite(r.stats);
                            });
    const bool pinned_later = !pinned_now && op_recurrence_.has_value();
    if (pinned_later) {
      CheckRecord op = *op_recurrence_;
      op.site.role = Role::Replay;
      e.replay = {op};
    }
    if (origin_->site.phase == Phase::Backward && backward_) e.backward = &*backward_;
    if (replay_graph_ && !pinned_later) {
      e.graph = true;
      e.graph_node = graph_node_;
      e.graph_status = graph_status_;
      e.graph_reason = graph_status_ == "pinned" ? std::string() : graph_reason_;
    }
    Classification c = classify_fault(e);
    if (e.backward) f.backward = *backward_;
    f.kind = c.kind;
    f.op = c.op;
    f.explanation = c.explanation;
    f.kernels = origin_->kernels;
    if (c.op_record && pinned_later) {
      f.op_source = "op_level";
      if (!c.op_record->kernels.empty()) f.kernels = c.op_record->kernels;
      f.op_pinned_step = op_recurrence_->step;
      f.replay = {*op_recurrence_};
      f.explanation += " (the op was pinned by op-level checks inside `" + origin_->site.module_path +
                       "` when the fault recurred at step " + std::to_string(f.op_pinned_step) +
                       ": its first non-finite output there came from `" + c.op + "`)";
    } else if (c.op_record) {
      f.op_source = e.graph ? "graph" : "replay";
      if (e.graph) f.op_input_producers = graph_input_ops_;
      if (!c.op_record->kernels.empty()) f.kernels = c.op_record->kernels;
      if (replay_captured_step_ >= 0 && replay_captured_step_ != fault_step()) f.op_pinned_step = replay_captured_step_;
      // The report shows the culprit op with its inputs, not every op the replay went through.
      const size_t replayed = replay_.size();
      f.replay = c.op_inputs;
      f.replay.push_back(*c.op_record);
      const std::string when = located_by_step_replay_ ? "its inputs in the re-run of step " +
                                                              std::to_string(replay_captured_step_)
                               : replay_captured_step_ >= 0 ? "its inputs captured when the fault recurred at step " +
                                                                  std::to_string(replay_captured_step_)
                                                            : "its captured inputs";
      if (e.graph)
        f.explanation += " (pinned from the autograd graph of the non-finite value, nothing re-run: `" +
                         (graph_node_.empty() ? c.op : graph_node_) + "` kept the inputs `" + c.op +
                         "` was given, and they were finite)";
      else
        f.explanation += " (pinned by re-running the module on " + when + ": " + std::to_string(replayed) +
                         " op checks, the first non-finite output came from `" + c.op + "`)";
    } else if (e.graph && !e.graph_reason.empty() && c.kind != FaultKind::Propagated && c.kind != FaultKind::BadInput) {
      f.explanation += "; the autograd graph did not pin the op: " + e.graph_reason;
    }
    if (first_seen_) {
      f.first_seen = *first_seen_;
      f.located_step = located_step_;
      f.explanation += ". First seen at step " + std::to_string(first_seen_->step) + " in " +
                       to_string(first_seen_->site.phase) + " `" +
                       (first_seen_->site.module_path.empty() ? first_seen_->site.tensor_name
                                                              : first_seen_->site.module_path) +
                       "`, on a step whose module outputs were not checked (sampled); located in `" +
                       origin_->site.module_path +
                       (located_by_step_replay_
                            ? std::string("` by re-running that step's ") +
                                  (origin_->site.phase == Phase::Backward ? "forward and backward" : "forward") +
                                  " at once (its batch, RNG state and weights) with every module output and gradient "
                                  "checked."
                            : "` when it recurred at step " + std::to_string(located_step_) +
                                  ", with the weights unchanged since (no optimizer update in between).");
    }
    if (unlocated_) {
      f.kind = FaultKind::NotLocated;
      f.op.clear();
      f.replay.clear();
      f.op_source.clear();
      f.explanation = "first seen in " + std::string(to_string(origin_->site.phase)) + " `" +
                      (origin_->site.module_path.empty() ? origin_->site.tensor_name : origin_->site.module_path) +
                      "` at step " + std::to_string(origin_->step) +
                      ", a step whose module outputs were not checked (sampled), so what made it was not seen; " +
                      (updated_since_origin_
                           ? "an optimizer update ran after it, so later steps cannot show where it was born"
                           : "no later step located it in a module");
    }
    if (f.kind == FaultKind::BadInput || f.kind == FaultKind::Propagated) {
      // The value arrived non-finite: no op made it, and a replay only shows it carried
      // through (a bad batch's evidence is the batch).
      f.op.clear();
      f.replay.clear();
      f.op_pinned_step = -1;
      f.op_source.clear();
      f.op_input_producers.clear();
    }
    if (!replayed_inside_.empty())
      f.explanation += ". `" + replayed_inside_ + "` ran compiled (torch.compile), so no check saw inside it; an eager "
                       "replay of it on the captured inputs found the first non-finite op output in `" +
                       origin_->site.module_path + "`";
    f.relay = first_seen_at_;
    if (!first_seen_at_.empty())
      f.explanation += ". The first module output seen non-finite was `" + first_seen_at_ +
                       "`'s, whose inputs were already non-finite: the value was born in `" +
                       origin_->site.module_path + "`'s own code between its submodules.";
  }
  f.recommendation = advise(f, advice_context(f));
  return f;
}

Report Analyzer::build_report() const {
  Report r;
  r.finding = finding();
  r.benign_skips = benign_skips_;
  r.warnings = warnings_;
  r.series = series_;
  if (r.finding.found) {
    // Up to the fault, in the origin's dtype: after it the values come from a broken state,
    // and a value at the dtype's largest finite magnitude may be a clamp, not a measurement.
    r.culprit_dtype = r.finding.origin.dtype;
    for (const auto& [step, v] : headroom_.history(r.finding.origin.site.module_path, r.finding.origin.dtype))
      if (step <= r.finding.step()) r.culprit_magnitude[step] = v;
  }
  if (checkpoints_.last_clean_before_fault()) r.last_checkpoint_before_fault = checkpoints_.last_clean_before_fault()->path;
  r.checkpoints = checkpoints_.saves();
  r.checkpoints_dropped = checkpoints_.dropped();
  r.steps_seen = max_step_;
  r.checks = checks_;
  r.nonfinite_checks = nonfinite_checks_;
  r.notes = notes_;
  r.blowup = blowup_;
  r.evaluation = evaluation_;
  r.evaluation_nonfinite_checks = evaluation_nonfinite_;
  r.step_counter = step_counter_;
  r.step_counter_offset = step_counter_offset_;
  if (r.finding.found)
    for (const EpochSpan& e : epochs_)
      if (e.begin_step <= r.finding.step()) r.fault_epoch = e;
  if (!benign_skips_.empty()) r.skips_recovered = loss_watch_.recovered_after(benign_skips_.front().step);
  for (auto& c : check_mode_changes_) r.notes.push_back(c);
  for (auto& [step, rec] : recurrences_) {
    std::string line = "At step " + std::to_string(step) + " the first non-finite value was ";
    if (!rec.site.op.empty())
      line += "`" + rec.site.op + "`'s " + rec.site.tensor_name + " inside `" + rec.site.module_path + "` (" +
              to_string(rec.site.phase) + "; pinned by op-level checks).";
    else if (!rec.site.module_path.empty())
      line += "`" + rec.site.module_path + "`'s " + rec.site.tensor_name + " (" + to_string(rec.site.phase) + ").";
    else
      line += rec.site.tensor_name + " (" + std::string(to_string(rec.site.phase)) + ").";
    r.notes.push_back(line);
  }
  if (benign_skip_total_ > int64_t(benign_skips_.size()))
    r.notes.push_back(std::to_string(benign_skip_total_) + " benign scaler skips in all; the first " +
                      std::to_string(benign_skips_.size()) + " are listed");
  return r;
}

}  // namespace nantrace
