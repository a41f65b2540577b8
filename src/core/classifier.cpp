#include "core/classifier.h"

#include "core/text.h"

#include <cstdio>
#include <set>
#include <sstream>

#include "core/headroom.h"

namespace nantrace {
namespace {

bool any_nonfinite(const std::vector<CheckRecord>& v) {
  for (auto& r : v)
    if (r.checked && has_nonfinite(r.stats)) return true;
  return false;
}

double max_finite_input(const std::vector<CheckRecord>& v) {
  double m = 0;
  for (auto& r : v) m = std::max(m, r.stats.max_abs_finite);
  return m;
}

bool has_zeros(const CheckRecord& r) { return r.stats.zero_count > 0; }

std::string fmt_num(double v) { return text::number(v); }

const std::set<std::string>& division_ops() {
  static const auto* s = new std::set<std::string>{"div", "true_divide", "floor_divide", "reciprocal", "remainder", "fmod"};  // never destroyed: used at exit
  return *s;
}
const std::set<std::string>& pole_ops() {  // finite input -> inf at 0
  static const auto* s = new std::set<std::string>{"log", "log2", "log10", "rsqrt", "reciprocal", "digamma", "lgamma"};  // never destroyed: used at exit
  return *s;
}
const std::set<std::string>& domain_ops() {  // finite input -> NaN outside the domain
  static const auto* s = new std::set<std::string>{"log", "log2", "log10", "log1p", "sqrt", "rsqrt", "pow",
                                          "acos", "asin", "acosh", "atanh", "lgamma", "digamma", "erfinv"};  // never destroyed: used at exit
  return *s;
}
const std::set<std::string>& amplifying_ops() {  // ops that turn large finite inputs into inf
  static const auto* s = new std::set<std::string>{"exp", "exp2", "expm1", "pow", "mm", "bmm", "matmul", "addmm", "baddbmm",
                                          "linear", "conv1d", "conv2d", "conv3d", "convolution", "_convolution",
                                          "conv_transpose1d", "conv_transpose2d", "sum", "mean", "cumsum", "mul",
                                          "add", "sinh", "cosh", "softplus", "stft", "_fft_r2c", "norm",
                                          "linalg_vector_norm", "square", "_softmax", "softmax"};  // never destroyed: used at exit
  return *s;
}

// The divisor of a division op is its second argument.
const CheckRecord* divisor_of(const std::vector<CheckRecord>& op_inputs) {
  for (auto& r : op_inputs)
    if (r.site.tensor_name == "args[1]" || r.site.tensor_name == "other" || r.site.tensor_name == "input[1]") return &r;
  return op_inputs.size() >= 2 ? &op_inputs[1] : nullptr;
}

// Where a backward value was made, in words: "the backward of `Net/fc2` (`MyFuncBackward`)".
std::string backward_maker(const CheckRecord& o, const BackwardBirth* b) {
  if (!b) return "the backward of what consumed that output (not followed)";
  std::string who = o.site.module_path.empty()
                        ? (b->consumers.size() == 1 ? std::string("the loss computation")
                                                    : "the code that consumed it (" + text::join(b->consumers, ", ") + ")")
                        : "`" + o.site.module_path + "`";
  std::string line = "the backward of " + who;
  if (!b->node.empty()) line += " (`" + b->node + "`)";
  return line;
}

// A gradient made non-finite in backward: by the backward of the module (or loss code) that
// consumed the output where it was first seen, whose own output's gradient was finite.
Classification classify_backward(const FaultEvidence& e) {
  Classification c;
  const CheckRecord& o = *e.origin;
  const TensorStats& s = o.stats;
  const int64_t infs = s.posinf_count + s.neginf_count;
  const std::string seen = e.backward ? e.backward->seen_at : o.site.module_path;
  const std::string maker = backward_maker(o, e.backward);
  const std::string counts = std::to_string(s.nan_count) + " NaN and " + std::to_string(infs) + " Inf";
  const std::string where = "the gradient arriving at `" + seen + "`'s output holds " + counts +
                            (e.backward ? ", made by " + maker + " from a finite gradient at its own output"
                                        : "; it was made by " + maker);
  if (infs > 0 && is_half(o.dtype)) {
    c.kind = FaultKind::Fp16Overflow;
    c.explanation = std::string(to_string(o.dtype)) + " gradient overflowed in backward: " + where +
                    "; the largest finite " + to_string(o.dtype) + " is " + fmt_num(dtype_max(o.dtype)) +
                    ", and no loss scaler skipped the step";
  } else if (infs > 0 && e.growth >= 100.0) {
    c.kind = FaultKind::Divergence;
    c.explanation = std::string(to_string(o.dtype)) + " gradient overflowed after magnitudes grew " +
                    fmt_num(e.growth) + "x over recent steps: " + where;
  } else {
    // Without growth before it, a non-finite gradient out of one backward is a gradient formula
    // meeting a value it cannot take, far likelier than an fp32 overflow within one step.
    c.kind = FaultKind::BornInBackward;
    c.explanation = "non-finite gradient born in backward: " + where +
                    ". A backward makes NaN or Inf from finite values where a gradient formula meets a value it "
                    "cannot take: 0/0, a division by zero, inf - inf or 0 * inf in a custom autograd.Function's "
                    "backward, or an op whose derivative is infinite where it was evaluated although its forward "
                    "was finite (sqrt, pow with an exponent below 1, or norm at 0; acos or asin at +-1)";
  }
  return c;
}

}  // namespace

std::string ratio_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string update_ratio_text(double ratio) {
  if (ratio >= 1.0) return ratio_number(ratio) + "x their norm";
  return ratio_number(ratio * 100.0) + " % of their norm";
}

std::string op_base_name(const std::string& op) {
  std::string s = op;
  auto pos = s.find("::");
  if (pos != std::string::npos) s = s.substr(pos + 2);
  if (s.rfind("aten.", 0) == 0) s = s.substr(5);
  pos = s.find('.');
  if (pos != std::string::npos) s = s.substr(0, pos);
  if (s.size() > 1 && s.back() == '_' && s[s.size() - 2] != '_') s.pop_back();  // in-place twin
  return s;
}

// The kind from the origin and its evidence, before the optimizer's updates are considered.
static Classification classify_site(const FaultEvidence& e);

// After an update far larger than normal, a value that overflowed or turned NaN in the next
// forward or backward was thrown out of range by that update: divergence, also within one step.
// A division by zero, bad data and values carried from elsewhere keep their own kind.
Classification classify_fault(const FaultEvidence& e) {
  Classification c = classify_site(e);
  if (!e.origin || e.update_ratio < kDivergentUpdateRatio || e.update_ratio_step < 0) return c;
  const Phase ph = e.origin->site.phase;
  if (ph != Phase::Forward && ph != Phase::Loss && ph != Phase::Backward && ph != Phase::Unscale &&
      ph != Phase::OptimizerGrad)
    return c;
  switch (c.kind) {
    case FaultKind::Fp16Overflow: case FaultKind::LossScaleCollapse:
      // The half-precision range is what the value left, and keeping that module in fp32 fixes
      // it as surely as a lower rate: the kind stays, the update is said (and the advice adds
      // the rate to use).
      c.explanation += "; the optimizer update at step " + std::to_string(e.update_ratio_step) +
                       " had changed the weights by " + update_ratio_text(e.update_ratio) +
                       " (about 1e-3 is usual for Adam): a learning rate this high drives values out of range";
      return c;
    case FaultKind::Overflow: case FaultKind::InvalidOp: case FaultKind::BornInModule:
    case FaultKind::BornInBackward:
      break;
    default:
      return c;
  }
  c.explanation = "the optimizer update at step " + std::to_string(e.update_ratio_step) + " changed the weights by " +
                  update_ratio_text(e.update_ratio) + " (update-to-weight ratio " + ratio_number(e.update_ratio) +
                  "; about 1e-3 is usual for Adam), " +
                  "and the next steps went out of range: training diverged, within a step of that update. What was "
                  "seen: " + c.explanation;
  c.kind = FaultKind::Divergence;
  return c;
}

static Classification classify_site(const FaultEvidence& e) {
  Classification c;
  if (!e.origin) return c;
  const CheckRecord& o = *e.origin;
  const TensorStats& s = o.stats;
  const bool has_inf = s.posinf_count + s.neginf_count > 0;
  const bool has_nan = s.nan_count > 0;

  if (o.site.phase == Phase::Input && (!e.graph || e.graph_status != "pinned")) {
    // A batch that arrived non-finite: data, unless the graph showed the script's own code
    // making it (then the op rules below apply).
    c.kind = FaultKind::BadInput;
    c.explanation = "the batch entering the model already holds NaN/Inf (" + std::to_string(s.nan_count) + " NaN, " +
                    std::to_string(s.posinf_count + s.neginf_count) + " Inf in " + o.site.tensor_name + ")";
    if (e.graph && !e.graph_reason.empty()) c.explanation += "; in its autograd graph, " + e.graph_reason;
    return c;
  }
  if (e.graph && e.graph_status == "data") {
    // The autograd graph led to a tensor of the batch itself (the targets the loss uses).
    std::string op = "an op";
    for (const CheckRecord& r : e.replay)
      if (r.site.role == Role::Replay) {
        op = "`" + r.site.op + "`" + (e.graph_node.empty() ? std::string() : " (`" + e.graph_node + "`)");
        break;
      }
    c.kind = FaultKind::BadInput;
    c.explanation = "the batch already holds NaN/Inf: in the autograd graph of the non-finite " +
                    std::string(to_string(o.site.phase)) + " value, " + op + " was given it: " + e.graph_reason;
    return c;
  }
  // Pin the op: the first replayed op whose output is non-finite; its inputs sit next to it.
  // An op whose inputs were already non-finite (a transpose of weights an update made NaN, a
  // view, a copy) only carried the value: it is never named, and the value is propagated.
  c.op = o.site.op;
  for (size_t i = 0; i < e.replay.size(); ++i) {
    const CheckRecord& r = e.replay[i];
    if (r.site.role != Role::Replay || !has_nonfinite(r.stats)) continue;
    std::vector<CheckRecord> inputs;
    for (size_t j = i; j-- > 0 && e.replay[j].site.role == Role::Input && e.replay[j].site.op == r.site.op;)
      inputs.insert(inputs.begin(), e.replay[j]);
    for (size_t j = i + 1; j < e.replay.size() && e.replay[j].site.role == Role::Input && e.replay[j].site.op == r.site.op; ++j)
      inputs.push_back(e.replay[j]);
    if (any_nonfinite(inputs)) {
      c.kind = FaultKind::Propagated;
      if (e.graph)
        c.explanation = "in the autograd graph of the non-finite value, `" + r.site.op + "`" +
                        (e.graph_node.empty() ? std::string() : " (`" + e.graph_node + "`)") +
                        " was given a value that was already non-finite: " +
                        (e.graph_reason.empty() ? std::string("it carried the value, it did not make it") : e.graph_reason);
      else
        c.explanation = "re-running the module, its first non-finite op output (`" + r.site.op +
                        "`) came from inputs that were already non-finite: the value was carried, not made, there";
      return c;
    }
    c.op = r.site.op;
    c.op_record = &r;
    c.op_inputs = std::move(inputs);
    break;
  }
  if (c.op_inputs.empty() && !o.site.op.empty()) c.op_inputs = e.inputs;  // op-level check: its inputs are the site's
  const std::string base = op_base_name(c.op);
  const CheckRecord& culprit = c.op_record ? *c.op_record : o;
  const bool c_inf = culprit.stats.posinf_count + culprit.stats.neginf_count > 0;
  const bool c_nan = culprit.stats.nan_count > 0;
  const std::vector<CheckRecord>& culprit_inputs = c.op_inputs.empty() ? e.inputs : c.op_inputs;

  if (any_nonfinite(culprit_inputs)) {
    if (e.root_module && o.site.phase == Phase::Forward) {
      c.kind = FaultKind::BadInput;
      c.explanation = "the top-level model received non-finite inputs";
    } else {
      c.kind = FaultKind::Propagated;
      c.explanation = "the inputs of this site were already non-finite, but were produced where nantrace did not check";
    }
    return c;
  }
  if (o.site.phase == Phase::Forward && !c.op_record && any_nonfinite(e.params)) {
    c.kind = FaultKind::Propagated;
    c.explanation = "the module's own parameters or buffers were already non-finite: an earlier update or a loaded "
                    "checkpoint wrote them, not this forward";
    return c;
  }
  if (o.site.phase == Phase::Backward) return classify_backward(e);
  if (o.site.phase == Phase::OptimizerParam) {
    if (is_half(o.dtype)) {
      c.kind = FaultKind::OptimizerEpsUnderflow;
      c.explanation = std::string("gradients were finite but the ") + to_string(o.dtype) +
                      " parameters became non-finite in the optimizer update: with optimizer state in half "
                      "precision, eps (1e-8) rounds to 0 and the update divides by zero";
    } else {
      c.kind = FaultKind::Divergence;
      c.explanation = "gradients were finite but the parameters became non-finite in the optimizer update: the "
                      "update itself blew up (learning rate too high for this model / state)";
    }
    return c;
  }

  // Op-specific rules when the op is known.
  if (!base.empty()) {
    if (division_ops().count(base)) {
      const CheckRecord* d = divisor_of(culprit_inputs);
      if (d && has_zeros(*d)) {
        c.kind = FaultKind::DivisionByZero;
        c.explanation = "`" + c.op + "` divided by a divisor holding " + std::to_string(d->stats.zero_count) +
                        " zero(s) (" + d->site.tensor_name + "): a length, count, norm or variance that was 0 (an empty "
                      "sample, a constant batch)";
        return c;
      }
    }
    if (pole_ops().count(base) && c_inf && !c_nan) {
      bool zero_in = false;
      for (auto& r : culprit_inputs) zero_in |= has_zeros(r);
      if (zero_in || culprit_inputs.empty()) {
        c.kind = FaultKind::DivisionByZero;
        c.explanation = "`" + c.op + "` of 0 is -inf/inf (a pole at zero): its input held zeros";
        return c;
      }
    }
    if (domain_ops().count(base) && c_nan) {
      c.kind = FaultKind::InvalidOp;
      c.explanation = "`" + c.op + "` returned NaN from finite inputs: an argument outside its domain (e.g. log or "
                      "sqrt of a negative number)";
      return c;
    }
  }

  const double in_max = max_finite_input(culprit_inputs);
  if (o.site.phase == Phase::Loss && !c.op_record && base.empty() && !(has_inf && !is_half(o.dtype) && e.growth >= 100.0)) {
    // The loss is the first non-finite value while every module output checked before it was
    // finite: the loss computation made it. Without its op, what kind of fault is not seen.
    c.kind = FaultKind::BornInModule;
    c.explanation = "the loss holds " + std::to_string(s.nan_count) + " NaN and " +
                    std::to_string(s.posinf_count + s.neginf_count) + " Inf while every module output checked "
                    "before it was finite: the value was born in the loss computation, and the op that made it was "
                    "not pinned: an overflow, a division by zero or an invalid operation (log or sqrt of a negative "
                    "number, 0/0)";
  } else if (c_inf || (has_inf && !c.op_record)) {
    if (is_half(culprit.dtype)) {
      c.kind = FaultKind::Fp16Overflow;
      std::ostringstream why;
      if (c.op_record) why << "`" << c.op << "`'s ";
      why << to_string(culprit.dtype) << " output holds " << (culprit.stats.posinf_count + culprit.stats.neginf_count)
          << " Inf while all inputs were finite";
      if (!culprit_inputs.empty()) why << " (largest input |x| " << fmt_num(in_max) << ")";
      why << "; the largest finite " << to_string(culprit.dtype) << " is " << fmt_num(dtype_max(culprit.dtype));
      if (!base.empty() && amplifying_ops().count(base)) why << "; `" << c.op << "` amplifies magnitudes";
      c.explanation = why.str();
    } else if (e.growth >= 100.0) {
      c.kind = FaultKind::Divergence;
      c.explanation = std::string(to_string(culprit.dtype)) + " overflow after magnitudes grew " + fmt_num(e.growth) +
                      "x over recent steps: training diverged";
    } else {
      c.kind = FaultKind::Overflow;
      c.explanation = std::string(to_string(culprit.dtype)) + " output overflowed to Inf from finite inputs";
    }
  } else if ((c_nan || has_nan) && !c.op_record && base.empty() && o.site.phase == Phase::Forward &&
             is_half(o.dtype)) {
    // Without the op, NaN out of a half-precision module says only that it was born inside:
    // an Inf consumed within the module (inf - inf, 0 * inf) leaves NaN alone, as an invalid
    // operation does. Both stay possible until the op is pinned.
    c.kind = FaultKind::BornInModule;
    c.explanation = std::string(to_string(o.dtype)) + " output holds " + std::to_string(s.nan_count) +
                    " NaN and no Inf while " + (culprit_inputs.empty() ? "every output checked before it was" : "its inputs were") +
                    " finite, and the op that made it was not pinned: an overflow to Inf consumed inside the "
                    "module (inf - inf, 0 * inf) or an invalid operation (0/0, log or sqrt of a negative number)";
  } else if (c_nan || has_nan) {
    c.kind = FaultKind::InvalidOp;
    c.explanation = "NaN produced from finite inputs: an invalid operation such as 0/0, inf-inf, 0*inf or log/sqrt of "
                    "a negative number";
  } else {
    c.kind = FaultKind::Overflow;
    c.explanation = "non-finite output";
  }
  if (o.site.phase == Phase::Input)  // pinned in the graph (above): the script's code made the batch
    c.explanation = "the batch `" + o.site.tensor_name + "` entering `" + o.site.module_path +
                    "` is not data: the script's own code computed it from values autograd tracked, and there " +
                    c.explanation;
  // Loss-scale collapse: the forward pass overflows from the start, so GradScaler skips every
  // step and lowers the scale towards 0 without a single update. An overflow that appears
  // after real updates (the model grew into it) is reported as the overflow itself.
  if ((c.kind == FaultKind::Fp16Overflow || c.kind == FaultKind::Overflow || c.kind == FaultKind::InvalidOp ||
       c.kind == FaultKind::BornInModule) &&
      (o.site.phase == Phase::Forward || o.site.phase == Phase::Loss) && e.scaler_skips_from_origin >= 3 &&
      !e.trained_before_origin) {
    c.explanation += "; GradScaler then skipped " + std::to_string(e.scaler_skips_from_origin) +
                     " consecutive steps and kept lowering the scale: the overflow is in the forward pass, which "
                     "loss scaling cannot fix";
    c.kind = FaultKind::LossScaleCollapse;
  }
  return c;
}

}  // namespace nantrace
