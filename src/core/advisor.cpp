#include "core/advisor.h"

#include "core/text.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/checkpoints.h"
#include "core/classifier.h"
#include "core/headroom.h"

namespace nantrace {
namespace {

std::string num(double v) { return text::number(v); }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

std::string device_word(const CheckRecord& r) { return text::device_type(r.device); }

// The config edit that leaves fp16, when the frontend found the training config's switch.
std::string fp16_config_action(const AdviceContext& ctx) {
  if (ctx.config_path.empty() || ctx.config_fp16_key.empty()) return "";
  if (ctx.config_fp16.has_value() && *ctx.config_fp16)
    return "Or train this run in fp32: set `" + ctx.config_fp16_key + "` to `false` in `" + ctx.config_path +
           "` (now `true`).";
  return "";
}

void add_lr_advice(Recommendation& r, const AdviceContext& ctx, bool primary) {
  const std::optional<double> lr = ctx.lr ? ctx.lr : ctx.config_lr;
  std::string line;
  if (lr) {
    line = "Lower the learning rate about 10x: from " + num(*lr) + " to " + num(*lr / 10.0);
    if (!ctx.config_path.empty() && ctx.config_lr && !ctx.config_lr_key.empty())
      line += " (`" + ctx.config_lr_key + "` in `" + ctx.config_path + "`)";
    line += ", with a warm-up and gradient clipping (`torch.nn.utils.clip_grad_norm_(params, 1.0)`; note that "
            "`clip_grad_value_(params, None)` clips nothing).";
  } else {
    line = "Lower the learning rate about 10x, add a warm-up and gradient clipping "
           "(`torch.nn.utils.clip_grad_norm_(params, 1.0)`).";
  }
  if (primary)
    r.actions.insert(r.actions.begin(), line);
  else
    r.actions.push_back(line);
}

void advise_backward_overflow(Recommendation& r, const Finding& f, const std::string& where, const std::string& dev);
std::string data_advice(const CheckRecord& batch);
void advise_evaluation_only(Recommendation& r, const CheckRecord& e);
Recommendation finish_advice(Recommendation& r, const Finding& f, const AdviceContext& ctx, const std::string& where);
void add_checkpoint_advice(Recommendation& r, const AdviceContext& ctx);

}  // namespace

bool weak_fp16_device(const std::string& name) {
  const std::string n = lower(name);
  if (n.empty()) return false;
  for (const char* s : {"gtx 16", "gtx16", "tesla t4", " t4", "p100", "p40", "p4 ", "gtx 10", "gtx10", "titan x"})
    if (n.find(s) != std::string::npos) return true;
  return n == "t4";
}

Recommendation advise(const Finding& f, const AdviceContext& ctx) {
  Recommendation r;
  if (!f.found) {
    if (ctx.evaluation && !ctx.blowup) {
      advise_evaluation_only(r, *ctx.evaluation);
      return r;
    }
    if (ctx.blowup) {
      const LossBlowup& b = *ctx.blowup;
      r.headline = "No NaN or Inf, but training blew up: the loss jumped from about " + num(b.baseline) + " to about " +
                   num(b.level) + " at step " + std::to_string(b.begin_step) + " and stayed there.";
      if (!b.module.empty())
        r.evidence.push_back("At step " + std::to_string(b.begin_step) + " the largest |x| of `" + b.module + "` jumped " +
                             num(b.module_jump) + "x over its level in the steps before, the largest jump of any module.");
      add_lr_advice(r, ctx, true);
      if (ctx.benign_skips > 0)
        r.evidence.push_back("GradScaler skipped " + std::to_string(ctx.benign_skips) +
                             " step(s) on Inf in scaled gradients, but the loss did not come back: the skips hid a "
                             "divergence, they did not fix it.");
    } else if (ctx.benign_skips > 0 && ctx.skips_recovered.value_or(false)) {
      r.headline = "No fault: GradScaler skipped " + std::to_string(ctx.benign_skips) +
                   " step(s) with Inf in scaled gradients and the loss came back to its level before them — that "
                   "is loss scaling working as intended.";
    } else if (ctx.benign_skips > 0 && ctx.skips_recovered.has_value()) {
      r.headline = "No NaN reached the weights, but the loss did not come back after GradScaler skipped " +
                   std::to_string(ctx.benign_skips) + " step(s): check the loss curve.";
    } else if (ctx.benign_skips > 0) {
      r.headline = "No fault seen: GradScaler skipped " + std::to_string(ctx.benign_skips) +
                   " step(s) with Inf in scaled gradients; whether the loss came back is not known (no loss was "
                   "seen before and after the skips).";
    } else {
      r.headline = "No non-finite value was seen.";
    }
    return r;
  }
  const CheckRecord& o = f.origin;
  const std::string where = o.site.module_path.empty() ? std::string("the loss computation") : "`" + o.site.module_path + "`";
  const std::string op = f.op.empty() ? std::string() : "`" + f.op + "`";
  const std::string base = op_base_name(f.op);
  const std::string dev = device_word(o);

  if (o.site.phase == Phase::Backward && f.kind == FaultKind::Fp16Overflow) {
    advise_backward_overflow(r, f, where, dev);
    return finish_advice(r, f, ctx, where);
  }
  switch (f.kind) {
    case FaultKind::Fp16Overflow:
    case FaultKind::LossScaleCollapse: {
      r.headline = "Keep " + where + " in fp32: its " + std::string(to_string(o.dtype)) + " output overflowed" +
                   (op.empty() ? "" : " in " + op) + ".";
      if (base == "exp")
        r.actions.push_back("Bound the exponent before " + op + ", e.g. `torch.exp(torch.clamp(logs, max=11.0))` "
                            "(exp(11.09) is fp16's max), or compute it in fp32: `torch.exp(logs.float())`.");
      r.actions.push_back("Run " + where + " outside autocast: wrap its forward in `with torch.autocast(\"" + dev +
                          "\", enabled=False):` and call it with `.float()` inputs.");
      r.actions.push_back("Or use bfloat16 autocast (`torch.autocast(\"" + dev +
                          "\", dtype=torch.bfloat16)`): same range as fp32, no loss scaling needed, where the "
                          "hardware supports it.");
      const std::string cfg = fp16_config_action(ctx);
      if (!cfg.empty()) r.actions.push_back(cfg);
      if (ctx.growth >= 10.0) add_lr_advice(r, ctx, false);
      if (f.kind == FaultKind::LossScaleCollapse)
        r.evidence.push_back("GradScaler cannot fix this: it skips the step and lowers the scale, but the Inf "
                             "comes from the forward pass, which the scale does not touch.");
      break;
    }
    case FaultKind::Overflow:
      r.headline = "Values in " + where + " overflowed " + std::string(to_string(o.dtype)) + ".";
      if (base == "exp") r.actions.push_back("Clamp the argument of " + op + " before exponentiating.");
      add_lr_advice(r, ctx, false);
      break;
    case FaultKind::Divergence:
      r.headline = "Training diverged: lower the learning rate.";
      add_lr_advice(r, ctx, true);
      break;
    case FaultKind::InvalidOp: {
      r.headline = "Guard the invalid operation in " + where + (op.empty() ? "" : " (" + op + ")") + ".";
      if (base == "log" || base == "log2" || base == "log10")
        r.actions.push_back("Clamp before the log: `torch.log(torch.clamp(x, min=1e-5))` (as GPT-SoVITS's "
                            "`dynamic_range_compression_torch` does).");
      else if (base == "sqrt" || base == "rsqrt")
        r.actions.push_back("Clamp before the root: `torch.sqrt(torch.clamp(x, min=0) + 1e-8)`.");
      else if (base == "div" || base == "true_divide")
        r.actions.push_back("Guard the divisor: `a / b.clamp(min=1e-8)` or mask empty elements before dividing.");
      else if (base == "pow")
        r.actions.push_back("`pow` of a negative base with a fractional exponent is NaN: take `abs()` or clamp first.");
      else
        r.actions.push_back("Add an epsilon or clamp at that op; check for 0/0, inf-inf and 0*inf.");
      if (is_half(o.dtype))
        r.actions.push_back("If the NaN came from an intermediate overflow, run " + where + " in fp32 (autocast disabled).");
      break;
    }
    case FaultKind::DivisionByZero:
      r.headline = "Guard the division by zero in " + where + (op.empty() ? "" : " (" + op + ")") + ".";
      if (base == "log" || base == "log2" || base == "log10")
        r.actions.push_back("log(0) = -inf: clamp the input, `torch.log(torch.clamp(x, min=1e-5))`; silent or "
                            "all-zero segments produce it.");
      else
        r.actions.push_back("Clamp the divisor: `x / lengths.clamp(min=1)`; filter empty or zero-length samples "
                            "in the dataset (check clip durations after slicing).");
      break;
    case FaultKind::BadInput:
      r.headline = "The training data holds non-finite values: batch of step " + std::to_string(f.step()) + ".";
      r.actions.push_back("Find and drop that sample: " + data_advice(o) +
                          " The notes below name the bad samples of each bad batch and, when a DataLoader made it, "
                          "their dataset items and files.");
      r.actions.push_back("Guard the data where the check runs: in the training loop (skip a batch when "
                          "`not torch.isfinite(x).all()`) or in a `collate_fn`. A check inside the dataset's "
                          "`__getitem__` is swallowed by a bare `except:` there (GPT-SoVITS's loader has one).");
      break;
    case FaultKind::OptimizerEpsUnderflow:
      r.headline = "Keep optimizer state in fp32: Adam's eps underflows in " + std::string(to_string(o.dtype)) + ".";
      r.actions.push_back("Keep the model in fp32 and use autocast for mixed precision instead of `model.half()`, "
                          "so the optimizer updates fp32 master weights.");
      r.actions.push_back("If the state must stay fp16, use eps >= 1e-4 (1e-8 rounds to 0 in fp16).");
      break;
    case FaultKind::Propagated:
      r.headline = "The values arriving at " + where + " were already non-finite: check the code feeding it.";
      r.actions.push_back("Re-run with `NANTRACE_CHECK=op` to check every op and find the producer.");
      break;
    case FaultKind::BornInModule:
      r.headline = "Find the op in " + where + " that made the NaN: an overflow or an invalid operation, not yet told apart.";
      r.actions.push_back("Re-run with `NANTRACE_CHECK=op` to check every op and pin the one that made it.");
      r.actions.push_back("If an op overflows " + std::string(to_string(o.dtype)) + " (attention scores, `exp`, large "
                          "sums), run " + where + " outside autocast (`with torch.autocast(\"" + dev +
                          "\", enabled=False):` with `.float()` inputs) or use bfloat16 autocast.");
      r.actions.push_back("If it is an invalid operation (0/0, inf - inf, log or sqrt of a negative number), add an "
                          "epsilon or clamp at that op.");
      break;
    case FaultKind::BornInBackward: {
      const std::string node = f.backward && !f.backward->node.empty() ? " (`" + f.backward->node + "`)" : "";
      r.headline = f.backward ? "Guard the backward of " + where + node + ": it made non-finite values from a finite gradient."
                              : "Find the backward that made the non-finite gradient: it consumed `" + o.site.module_path + "`'s output.";
      r.actions.push_back("If it is a custom `torch.autograd.Function`, check its `backward` for 0/0, inf - inf and "
                          "0 * inf: guard divisors with `.clamp(min=eps)` and mask before dividing.");
      r.actions.push_back("An op whose derivative is infinite where it was evaluated makes NaN in backward although its "
                          "forward is finite: add an epsilon inside `sqrt`, `pow(x, p < 1)` or `norm` "
                          "(`torch.sqrt(x + 1e-12)`), and clamp the argument of `acos`/`asin` inside (-1, 1).");
      r.actions.push_back("To see the op, run one failing batch under `torch.autograd.detect_anomaly(check_nan=True)`: "
                          "it names the backward function and the forward line that created it.");
      break;
    }
    case FaultKind::NotLocated:
      r.headline = "Check module outputs on every step to locate it: run again with `NANTRACE_EVERY=1`.";
      r.actions.push_back("Module checks ran on sampled steps only, and the fault's step was not one of them; with "
                          "`NANTRACE_EVERY=1` (the default) the first module that makes the value is named.");
      break;
    case FaultKind::HardwarePrecision:
      r.headline = "This device has weak fp16 support: train in fp32.";
      break;
    case FaultKind::None:
      break;
  }
  return finish_advice(r, f, ctx, where);
}

namespace {

// A backward that overflowed fp16 from a finite gradient (no loss scaler skipped the step).
void advise_backward_overflow(Recommendation& r, const Finding& f, const std::string& where, const std::string& dev) {
  const std::string made = f.backward ? "the backward of " + where : "backward";
  r.headline = "Scale the loss, or keep " + where + " in fp32: " + made + " overflowed " +
               std::string(to_string(f.origin.dtype)) + ".";
  r.actions.push_back("Use a loss scaler with fp16 autocast (`scaler = torch.amp.GradScaler(\"" + dev +
                      "\")`; `scaler.scale(loss).backward()`; `scaler.step(optimizer)`; `scaler.update()`): it skips "
                      "the steps whose gradients overflow and lowers the scale.");
  r.actions.push_back("Or run " + where + " outside autocast (`with torch.autocast(\"" + dev +
                      "\", enabled=False):` with `.float()` inputs), or use bfloat16 autocast.");
}

// What to look for in the data, from the bad tensor's shape: nantrace does not know the data's
// kind, only its layout (integer token ids are never checked: they cannot be NaN).
std::string data_advice(const CheckRecord& batch) {
  switch (batch.shape.size()) {
    case 2:
      return "these look like feature vectors (batch x features): look for missing values read as NaN (empty "
             "cells, failed parses) and for a normalisation that divides by a zero standard deviation.";
    case 3:
      return "these look like sequences (batch x channels x time: audio, spectrograms, features over time): check "
             "preprocessing (denoise, slicing, resampling, clip durations) for NaN/Inf and for silent or empty clips.";
    case 4:
    case 5:
      return "these look like images or volumes: look for a corrupt or truncated file, and for a normalisation "
             "that divides by a zero standard deviation.";
    default:
      return "check the data pipeline that produced it (files, parsing, normalisation) for NaN/Inf.";
  }
}

// Training stayed finite; only an evaluation forward (eval mode, no_grad) showed a NaN/Inf.
void advise_evaluation_only(Recommendation& r, const CheckRecord& e) {
  const bool batch = e.site.role == Role::Input;
  const std::string where = e.site.module_path.empty() ? std::string("the model") : "`" + e.site.module_path + "`";
  const std::string after = e.step >= 1 ? "after training step " + std::to_string(e.step) : "before the first training step";
  r.headline = "Training stayed finite: a non-finite value appeared only in evaluation (" + after + "), " +
               (batch ? "in the evaluation batch entering " + where : "in " + where + "'s output") + ".";
  if (batch) {
    r.actions.push_back("The model is fine in training: that evaluation batch holds NaN/Inf (" + e.site.tensor_name +
                        "). Check the validation data and the code that loads or preprocesses it.");
  } else {
    r.actions.push_back("The model is fine in training; its evaluation forward is not. Look at that evaluation "
                        "batch (lengths, padding, an empty or silent sample) and at code that runs only in eval "
                        "mode: dropout off, BatchNorm running statistics in place of batch statistics, a different "
                        "input length or masking at inference.");
    if (is_half(e.dtype))
      r.actions.push_back("The evaluation ran in " + std::string(to_string(e.dtype)) + ": if training runs in fp32 "
                          "or with a loss scaler, evaluate " + where + " in fp32 (autocast disabled).");
  }
  r.actions.push_back("To see it again: run the evaluation alone on that batch under `NANTRACE_CHECK=op`, which "
                      "checks every op and names the one that made it.");
}

// What every finding's advice ends with: the precision verdict of a replay, the device, the
// checkpoint to resume from.
Recommendation finish_advice(Recommendation& r, const Finding& f, const AdviceContext& ctx, const std::string& where) {
  const CheckRecord& o = f.origin;
  // A forward replay's precision verdict speaks only for a value born in a forward pass by an
  // op: not for bad input data, a value that arrived already non-finite, or faults of the
  // optimizer (eps underflow, divergence), where re-running the module's forward shows nothing.
  const bool verdict_applies = o.site.phase == Phase::Forward && f.kind != FaultKind::BadInput &&
                               f.kind != FaultKind::Propagated && f.kind != FaultKind::OptimizerEpsUnderflow &&
                               f.kind != FaultKind::Divergence;
  if (ctx.fp32_replay_finite.has_value() && verdict_applies) {
    if (*ctx.fp32_replay_finite)
      r.evidence.push_back("Verified: re-running " + where + " on the captured inputs in fp32 gives a finite "
                           "output (largest |x| " + num(ctx.fp32_replay_max_abs) + ").");
    else
      r.evidence.push_back("Re-running " + where + " on the captured inputs in fp32 is still non-finite: precision "
                           "alone is not the cause.");
  }
  if (weak_fp16_device(ctx.device_name) && is_half(o.dtype))
    r.actions.push_back("This GPU (" + ctx.device_name + ") is known for weak or unstable fp16: prefer fp32 on it, "
                        "with a smaller batch if memory is short.");
  add_checkpoint_advice(r, ctx);
  return r;
}

// Where to resume from: the last clean checkpoint, and which files not to load again, above all
// a poisoned one that now heads a family the script resumes from (GPT-SoVITS's G_*.pth).
void add_checkpoint_advice(Recommendation& r, const AdviceContext& ctx) {
  static const auto* kNone = new std::vector<CheckpointSave>();  // never destroyed: used at exit
  const std::vector<CheckpointSave>& saves = ctx.checkpoints ? *ctx.checkpoints : *kNone;
  std::vector<std::string> poisoned, heading;
  for (const CheckpointSave& c : saves)
    if (c.poisoned() && poisoned.size() < 4) poisoned.push_back("`" + c.path + "`");
  bool resumes = false;
  for (const CheckpointSave& c : poisoned_heads(saves)) {
    heading.push_back("`" + c.pattern + "`");
    resumes |= c.resumed_from;
  }
  size_t n = 0;
  for (const CheckpointSave& c : saves) n += c.poisoned();
  std::string line;
  if (!ctx.last_checkpoint.empty())
    line = "Resume from `" + ctx.last_checkpoint + "`, the last clean checkpoint saved before the fault.";
  else if (n > 0)
    line = "No clean checkpoint was saved before the fault: restart from the initial weights.";
  if (n > 0) {
    line += " Do not resume from the " + std::to_string(n) + " poisoned checkpoint(s) saved since (" +
            text::join(poisoned, ", ") + (n > poisoned.size() ? ", ..." : "") + "): delete or move them.";
    if (!heading.empty())
      line += " The newest of " + text::join(heading, " and ") + " is now poisoned" +
              (resumes ? ", and the script resumes from it: a restart would load it."
                       : ": a script that resumes from the newest would load it.");
  }
  if (!line.empty()) r.actions.push_back(line);
}

}  // namespace

}  // namespace nantrace
