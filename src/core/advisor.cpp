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

// Rounded down to one significant digit: 3.8e-5 -> 3e-5.
double one_digit_down(double v) {
  if (!(v > 0) || !std::isfinite(v)) return v;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  return std::max(1.0, std::floor(v / p + 1e-9)) * p;
}

// The learning rates in play, in words: the config's (with its key), the one in use at the
// fault when a scheduler changed it, and the trainer's default.
std::string lr_sources(const AdviceContext& ctx) {
  std::vector<std::string> parts;
  if (ctx.config_lr && !ctx.config_lr_key.empty())
    parts.push_back("the config sets " + num(*ctx.config_lr) + " (`" + ctx.config_lr_key + "`" +
                    (ctx.config_path.empty() ? std::string() : " in `" + ctx.config_path + "`") + ")");
  if (ctx.lr && (!ctx.config_lr || std::fabs(*ctx.lr - *ctx.config_lr) > 1e-12 * std::fabs(*ctx.config_lr)))
    parts.push_back(num(*ctx.lr) + " was in use at the fault" + std::string(ctx.config_lr ? " (after the scheduler)" : ""));
  if (ctx.default_lr) parts.push_back("the script's default is " + num(*ctx.default_lr));
  return text::join(parts, "; ");
}

void add_lr_advice(Recommendation& r, const AdviceContext& ctx, bool primary) {
  const std::optional<double> lr = ctx.lr ? ctx.lr : ctx.config_lr;
  const std::string sources = lr_sources(ctx);
  std::string line;
  if (lr && ctx.update_ratio >= kDivergentUpdateRatio && ctx.update_ratio_step >= 0 && ctx.derive_step >= 0) {
    // An update scales with the learning rate: from the step where the rate in use moved the
    // weights most for its size, the rate that would have made a usual update there.
    const double target = one_digit_down(ctx.derive_lr * kTypicalUpdateRatio / ctx.derive_ratio);
    line = "Lower the learning rate to about " + num(target) + ": the update at step " +
           std::to_string(ctx.update_ratio_step) + " changed the weights by " + update_ratio_text(ctx.update_ratio) +
           ", and an update scales with the learning rate: at step " + std::to_string(ctx.derive_step) + ", " +
           num(ctx.derive_lr) + " moved them by " + update_ratio_text(ctx.derive_ratio) + ", so " + num(ctx.derive_lr) +
           " x " + num(kTypicalUpdateRatio) + " / " + ratio_number(ctx.derive_ratio) + " gives the usual ratio of about " +
           num(kTypicalUpdateRatio) + " per step.";
    if (ctx.first_lr && *ctx.first_lr > 0 && *lr >= 10.0 * *ctx.first_lr)
      line += " The scheduler raised the learning rate from " + num(*ctx.first_lr) + " at the first step to " + num(*lr) +
              " at the fault: cap it.";
    if (!sources.empty()) line += " Learning rates: " + sources + ".";
  } else if (lr) {
    line = "Lower the learning rate about 10x: from " + num(*lr) + " to " + num(*lr / 10.0);
    line += ".";
    if (!sources.empty()) line += " Learning rates: " + sources + ".";
  } else {
    line = "Lower the learning rate about 10x.";
  }
  line += " Add a warm-up (e.g. `torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=1000)`) "
          "and gradient clipping that clips: `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)` "
          "before `optimizer.step()` (after `scaler.unscale_(optimizer)` with a GradScaler); "
          "`clip_grad_value_(params, None)` clips nothing.";
  if (primary)
    r.actions.insert(r.actions.begin(), line);
  else
    r.actions.push_back(line);
}

void advise_backward_overflow(Recommendation& r, const Finding& f, const std::string& where, const std::string& dev);
std::string data_advice(const CheckRecord& batch, const AdviceContext& ctx);
void advise_evaluation_only(Recommendation& r, const CheckRecord& e);
Recommendation finish_advice(Recommendation& r, const Finding& f, const AdviceContext& ctx, const std::string& where);
void add_checkpoint_advice(Recommendation& r, const AdviceContext& ctx);

// The log of a probability that softmax or sigmoid rounded to exactly 0: computing it in log
// space keeps it finite. Known only when the graph said what made log's input.
bool log_space_advice(Recommendation& r, const Finding& f) {
  auto it = f.op_input_producers.find("self");
  if (it == f.op_input_producers.end()) return false;
  const std::string made_by = op_base_name(it->second);
  if (made_by == "softmax" || made_by == "_softmax") {
    r.actions.push_back("`" + f.op + "` was given the output of `" + it->second + "`: softmax rounds small "
                        "probabilities to exactly 0, whose log is -inf. Use `torch.log_softmax(logits, dim)` "
                        "(or `F.cross_entropy` on the logits), which stays finite.");
    return true;
  }
  if (made_by == "sigmoid") {
    r.actions.push_back("`" + f.op + "` was given the output of `" + it->second + "`: sigmoid rounds to exactly 0 "
                        "or 1, whose log is -inf. Use `F.logsigmoid(x)` (or `F.binary_cross_entropy_with_logits` on "
                        "the logits), which stays finite.");
    return true;
  }
  return false;
}

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
        r.evidence.push_back(
            "At step " + std::to_string(b.begin_step) + " the largest |x| of `" + b.module + "` jumped " +
            num(b.module_jump) + "x over its level in the steps before, the largest jump of any module" +
            (b.module_step > b.begin_step ? " (read at step " + std::to_string(b.module_step) +
                                                ", the first step after it whose module outputs were checked)."
                                          : "."));
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
  // A batch the script's own code computed (read from its autograd graph): the fix is in that
  // code, before the model it enters, not in the model.
  const bool code_before = o.site.phase == Phase::Input && f.op_source == "graph";
  const std::string where = o.site.module_path.empty() ? std::string("the loss computation")
                            : code_before ? "the code that computes `" + o.site.tensor_name + "` for `" + o.site.module_path + "`"
                                          : "`" + o.site.module_path + "`";
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
      if (ctx.growth >= 10.0 || ctx.update_ratio >= kDivergentUpdateRatio) add_lr_advice(r, ctx, false);
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
      if (base == "log" && log_space_advice(r, f)) {
        // the log of a probability: its log-space twin is the fix
      } else if (base == "log" || base == "log2" || base == "log10")
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
      if (base == "log" && log_space_advice(r, f)) {
        // the log of a probability: its log-space twin is the fix
      } else if (base == "log" || base == "log2" || base == "log10")
        r.actions.push_back("log(0) = -inf: clamp the input, `torch.log(torch.clamp(x, min=1e-5))`; silent or "
                            "all-zero segments produce it.");
      else
        r.actions.push_back("Clamp the divisor: `x / lengths.clamp(min=1)`; filter empty or zero-length samples "
                            "in the dataset (check clip durations after slicing).");
      break;
    case FaultKind::BadInput:
      r.headline = "The training data holds non-finite values: batch of step " + std::to_string(f.step()) + ".";
      r.actions.push_back("Find and drop that sample: " + data_advice(o, ctx) +
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
      r.headline = "Find the op in " + where + " that made the non-finite value: an overflow or an invalid operation, not yet told apart.";
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

// What kind of data a batch tensor holds, from its argument's name where it is a common one.
enum class DataKind { Unknown, Audio, Image, Tokens };

DataKind data_kind_of_name(const std::string& tensor) {
  const std::string n = lower(tensor);
  auto has = [&](std::initializer_list<const char*> words) {
    for (const char* w : words)
      if (n.find(w) != std::string::npos) return true;
    return false;
  };
  if (has({"pixel", "image", "img", "frame", "video"})) return DataKind::Image;
  if (has({"input_ids", "token", "attention_mask", "inputs_embeds", "label", "position_ids"})) return DataKind::Tokens;
  if (has({"spec", "mel", "wav", "audio", "input_values", "input_features", "ssl", "pitch", "f0"})) return DataKind::Audio;
  return DataKind::Unknown;
}

// What to look for in the data: chosen from the training script when it is a known one, then
// from the argument's name, then from the tensor's layout; generic when none tells.
std::string data_advice(const CheckRecord& batch, const AdviceContext& ctx) {
  std::string out;
  if (ctx.trainer.rfind("GPT-SoVITS", 0) == 0) {
    out = "this is GPT-SoVITS's training data, made from the clips of your dataset by its preparation steps "
          "(slicing, denoising, 1-get-text, 2-get-hubert-wav32k, 3-get-semantic): open the clip the notes below name, "
          "and look for a silent, clipped or very short clip. Remove its line from the training list (the `.list` "
          "file and `2-name2text.txt`) or fix the clip (denoise it; re-run the slicer with a higher threshold or "
          "minimum length so silent stretches are cut), then re-run the preparation steps for it.";
  } else {
    switch (data_kind_of_name(batch.site.tensor_name)) {
      case DataKind::Audio:
        out = "this looks like audio or features made from it (`" + batch.site.tensor_name + "`): look for a silent, "
              "clipped or empty clip, and for a normalisation that divides by its peak or standard deviation (0 for "
              "silence); check the preprocessing (resampling, slicing, feature extraction) of the clip named below.";
        break;
      case DataKind::Image:
        out = "this looks like images (`" + batch.site.tensor_name + "`): look for a corrupt or truncated file and "
              "for a normalisation that divides by a zero standard deviation (a constant image).";
        break;
      case DataKind::Tokens:
        out = "token ids themselves cannot be NaN: the non-finite values are in a float input beside them (`" +
              batch.site.tensor_name + "`): check how it is made (a mask built with -inf or a division, precomputed "
              "embeddings or label weights read from a bad row).";
        break;
      case DataKind::Unknown:
        switch (batch.shape.size()) {
          case 2:
            out = "these look like feature vectors (batch x features): look for missing values read as NaN (empty "
                  "cells, failed parses) and for a normalisation that divides by a zero standard deviation.";
            break;
          case 3:
            out = "these look like sequences (batch x channels x time, or batch x time x features): look for an empty "
                  "or constant sequence and for a normalisation that divides by a zero standard deviation or length.";
            break;
          case 4:
          case 5:
            out = "these look like images or volumes: look for a corrupt or truncated file, and for a normalisation "
                  "that divides by a zero standard deviation.";
            break;
          default:
            out = "check the data pipeline that produced it (files, parsing, normalisation) for NaN/Inf.";
        }
    }
  }
  const bool inf_only = batch.stats.nan_count == 0 && batch.stats.posinf_count + batch.stats.neginf_count > 0;
  if (is_half(batch.dtype) && inf_only)
    out += " The batch is " + std::string(to_string(batch.dtype)) + " and holds only Inf: values beyond its range (" +
           num(dtype_max(batch.dtype)) + ") become Inf when the data is cast to it; keep the data in float32.";
  return out;
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
