// report.md renderer. Everything that comes from the host (module names, paths, config
// values) goes through markdown::cell or markdown::code so a '|' or a backtick in a module
// name cannot break the table or the layout.
#include "output/report_markdown.h"

#include "core/checkpoints.h"

#include "core/text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/headroom.h"
#include "core/redact.h"

namespace nantrace {
namespace markdown {

std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '|': case '`': case '\\': case '*': case '_': case '[': case ']':
        out += '\\';
        out += c;
        break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\n': out += "<br>"; break;
      case '\r': break;
      default: out += c;
    }
  }
  return out;
}

std::string code(const std::string& text) {
  std::string body = text;
  std::replace(body.begin(), body.end(), '\n', ' ');
  std::replace(body.begin(), body.end(), '\r', ' ');
  size_t longest = 0, run = 0;
  for (char c : body) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  const std::string fence(longest + 1, '`');
  const bool pad = !body.empty() && (body.front() == '`' || body.back() == '`');
  return fence + (pad ? " " : "") + body + (pad ? " " : "") + fence;
}

std::string chart_number(double v) {
  if (!std::isfinite(v)) return "0";
  if (v == 0) return "0";
  const int magnitude = int(std::floor(std::log10(std::fabs(v))));
  const int decimals = std::clamp(5 - magnitude, 0, 40);  // ~6 significant digits
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

std::vector<std::pair<int64_t, double>> subsample(const std::vector<std::pair<int64_t, double>>& points,
                                                  size_t max_points) {
  if (points.size() <= max_points || max_points < 2) return points;
  std::vector<std::pair<int64_t, double>> out;
  const size_t n = points.size();
  for (size_t k = 0; k < max_points; ++k) out.push_back(points[(k * (n - 1) + (max_points - 1) / 2) / (max_points - 1)]);
  out.back() = points.back();
  return out;
}

}  // namespace markdown

namespace {

using markdown::cell;
using markdown::code;

constexpr size_t kMaxChartPoints = 50;

std::string num(double v) { return text::number(v); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string device_text(const CheckRecord& c) { return text::device(c.device, c.device_index); }

using text::join;

// Binades between the largest finite |x| and the dtype's max, from the scanner's histogram.
std::string headroom_text(const TensorStats& s) {
  for (int k = 0; k < NT_HEADROOM_BINS; ++k)
    if (s.headroom_hist[k]) return k == NT_HEADROOM_BINS - 1 ? ">=" + std::to_string(k) : std::to_string(k);
  return "-";
}

std::string first_bad_text(const TensorStats& s) {
  return s.first_bad_index < 0 ? "-" : std::to_string(s.first_bad_index);
}

const char* kStatsHeader =
    "| role | tensor | op | dtype | shape | numel | NaN | +inf | -inf | zeros | subnormal | max finite abs | headroom "
    "(binades) | first bad index |\n"
    "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";

std::string stats_row(const std::string& role, const CheckRecord& c) {
  const TensorStats& s = c.stats;
  std::ostringstream o;
  o << "| " << role << " | " << cell(c.site.tensor_name) << " | " << (c.site.op.empty() ? "-" : cell(c.site.op))
    << " | " << to_string(c.dtype) << " | " << shape_text(c.shape) << " | " << s.numel << " | " << s.nan_count << " | "
    << s.posinf_count << " | " << s.neginf_count << " | " << s.zero_count << " | " << s.subnormal_count << " | "
    << num(s.max_abs_finite) << " | " << headroom_text(s) << " | " << first_bad_text(s) << " |\n";
  return o.str();
}

std::string module_label(const Site& site) {
  if (site.module_path.empty()) return "(no module)";
  return site.module_type.empty() ? site.module_path : site.module_path + " (" + site.module_type + ")";
}

std::string title_line(const Report& r) {
  const Finding& f = r.finding;
  if (!f.found && r.evaluation)
    return "# nantrace: non-finite value in evaluation only, in " +
           code(r.evaluation->site.module_path.empty() ? std::string("the model") : r.evaluation->site.module_path) +
           (r.evaluation->step >= 1 ? " after step " + std::to_string(r.evaluation->step) : std::string(" before step 1")) +
           "\n";
  if (!f.found) return "# nantrace: no NaN or Inf seen\n";
  const Site& site = f.origin.site;
  std::string where;
  if (!site.module_path.empty() && site.phase == Phase::Input && f.op_source == "graph") {
    where = " in the code that computes " + code(site.tensor_name) + " for " + code(site.module_path);
  } else if (!site.module_path.empty()) {
    where = " in " + code(site.module_path);
    if (!site.module_type.empty()) where += " (" + code(site.module_type) + ")";
  } else if (f.backward) {
    where = " in the loss computation's backward";
  } else if (!site.tensor_name.empty()) {
    where = " in " + code(site.tensor_name);
  }
  std::string rank = r.world_size > 1 && r.rank >= 0 ? " on rank " + std::to_string(r.rank) : "";
  return "# nantrace: " + describe(f) + where + " at step " + std::to_string(f.step()) + rank +
         "\n";
}

// "; the script's `global_step` 3" when the trainer's own counter is known.
std::string script_step_text(const Report& r, int64_t step) {
  if (r.step_counter.empty()) return "";
  return " (the script's " + code(r.step_counter) + " " + std::to_string(step + r.step_counter_offset) + ")";
}

// "; epoch 3 of this run (it began at step 7; 5 batches per epoch)" when a DataLoader showed it.
std::string epoch_text(const Report& r) {
  if (!r.fault_epoch) return "";
  const EpochSpan& e = *r.fault_epoch;
  std::string t = "; epoch " + std::to_string(e.epoch) + " of this run (it began at step " + std::to_string(e.begin_step);
  if (e.batches) t += "; " + std::to_string(*e.batches) + " batches per epoch";
  return t + ")";
}

void summary_table(const Report& r, std::ostringstream& o) {
  const Finding& f = r.finding;
  const CheckRecord& c = f.origin;
  const std::string op = f.op.empty() ? c.site.op : f.op;
  const std::vector<std::string>& kernels = f.kernels.empty() ? c.kernels : f.kernels;
  auto row = [&](const std::string& k, const std::string& v) { o << "| " << k << " | " << v << " |\n"; };
  o << "| | |\n|---|---|\n";
  row("Kind", cell(to_string(f.kind)) + " (" + describe(f) + ")");
  if (f.first_seen) {
    const CheckRecord& s = *f.first_seen;
    row("Step", std::to_string(f.step()) +
                    (f.located_step == s.step ? std::string(" (first seen; located by re-running that step's ") +
                                                    (c.site.phase == Phase::Backward ? "forward and backward)" : "forward)")
                                              : " (first seen; located when it recurred at step " +
                                                    std::to_string(f.located_step) + ")"));
    row("First seen", cell("step " + std::to_string(s.step) + ", " + to_string(s.site.phase) + " (" +
                           (s.site.module_path.empty() ? s.site.tensor_name : s.site.module_path) + "): " +
                           std::to_string(s.stats.nan_count) + " NaN, " +
                           std::to_string(s.stats.posinf_count + s.stats.neginf_count) + " Inf of " +
                           std::to_string(s.stats.numel) + "; module outputs were not checked on that step"));
  } else {
    row("Step", std::to_string(c.step) + script_step_text(r, c.step) + epoch_text(r));
  }
  row("Phase", to_string(c.site.phase));
  row("Module", cell(module_label(c.site)));
  if (f.backward) {
    std::string made = (c.site.module_path.empty() ? std::string("the loss computation's backward") : "its backward") +
                       (f.backward->node.empty() ? std::string(" (node not known)") : " (" + f.backward->node + ")") +
                       ", from a finite gradient at its output; first seen in the gradient arriving at " +
                       f.backward->seen_at + "'s output";
    if (f.backward->consumers.size() > 1) made += ", which " + join(f.backward->consumers, ", ") + " consumed";
    row("Made by", cell(made));
  }
  std::string op_text = op.empty() ? "- (module level)" : cell(op);
  if (!op.empty() && f.op_pinned_step >= 0) op_text += " (pinned at the recurrence at step " + std::to_string(f.op_pinned_step) + ")";
  row("Op", op_text);
  row("Kernel(s)", kernels.empty() ? "-" : cell(join(kernels, "\n")));
  row("Tensor", c.site.tensor_name.empty() ? "-" : cell(c.site.tensor_name));
  row("Dtype", to_string(c.dtype));
  row("Shape", shape_text(c.shape));
  row("Device", device_text(c));
  if (r.world_size > 1) row("Rank", std::to_string(r.rank) + " of " + std::to_string(r.world_size));
  std::string counts_label = "Non-finite values";
  if (f.first_seen) counts_label += " (step " + std::to_string(c.step) + ")";
  else if (!f.relay.empty()) counts_label += " (at " + f.relay + "'s output, where first seen)";
  row(counts_label,
      std::to_string(c.stats.nan_count) + " NaN, " + std::to_string(c.stats.posinf_count) +
                               " +inf, " + std::to_string(c.stats.neginf_count) + " -inf of " +
                               std::to_string(c.stats.numel) + " (first at index " + first_bad_text(c.stats) + ")");
}

void recommendation_section(const Recommendation& rec, std::ostringstream& o) {
  if (rec.headline.empty() && rec.actions.empty()) return;
  o << "\n## Recommended fix\n\n";
  if (!rec.headline.empty()) o << "**" << rec.headline << "**\n\n";
  for (const auto& a : rec.actions) o << "- " << a << "\n";
  if (!rec.evidence.empty()) {
    o << "\nWhy this advice:\n\n";
    for (const auto& e : rec.evidence) o << "- " << e << "\n";
  }
}

// One history. A chart only where the values vary: a flag (0/1) or a constant series is one
// line of text. Each says in one line why it is there. Non-finite values cannot be drawn, and
// values at or above `ceiling` (the dtype's largest finite value: saturated or clamped, not a
// measurement) are not magnitudes: both are left out and counted.
struct History {
  std::string title;   // "Loss scale per step"
  std::string y;       // axis label
  std::string why;     // one sentence: what it shows about this fault
  std::string flag;    // for a 0/1 series: the sentence before its steps ("GradScaler skipped the step")
  double ceiling = INFINITY;
  bool before_fault = false;  // only the steps before the fault speak (after it the state is broken)
};

std::string steps_text(const std::vector<int64_t>& steps, size_t max_shown = 10) {
  std::string t;
  const size_t shown = std::min(steps.size(), max_shown);
  for (size_t i = 0; i < shown; ++i) t += (i ? ", " : "") + std::to_string(steps[i]);
  if (shown < steps.size()) t += ", ...";
  return t;
}

void history_block(const History& h, const std::map<int64_t, double>& series, std::ostringstream& o) {
  std::vector<std::pair<int64_t, double>> finite;
  std::vector<int64_t> nonfinite, ceiling;
  for (const auto& [step, v] : series) {
    if (!std::isfinite(v)) nonfinite.push_back(step);
    else if (std::fabs(v) >= h.ceiling) ceiling.push_back(step);
    else finite.emplace_back(step, v);
  }
  std::string left_out;
  if (!nonfinite.empty())
    left_out += " " + std::to_string(nonfinite.size()) + " non-finite value(s) are left out (step" +
                (nonfinite.size() > 1 ? "s " : " ") + steps_text(nonfinite) + ").";
  if (!ceiling.empty())
    left_out += " " + std::to_string(ceiling.size()) + " value(s) at the dtype's largest finite magnitude are left "
                "out, saturated or clamped rather than measured (step" + (ceiling.size() > 1 ? "s " : " ") +
                steps_text(ceiling) + ").";
  // A flag: a known one (GradScaler's skips), or a series of 0s and 1s holding both.
  bool zero_one = !finite.empty(), constant = !finite.empty(), has0 = false, has1 = false;
  for (const auto& [step, v] : finite) {
    zero_one &= v == 0.0 || v == 1.0;
    has0 |= v == 0.0;
    has1 |= v == 1.0;
    constant &= v == finite.front().second;
  }
  const bool is_flag = zero_one && (!h.flag.empty() || (has0 && has1));
  if (finite.empty()) {
    o << "\n**" << h.title << "**: no finite value to show." << left_out << "\n";
    return;
  }
  if (is_flag) {
    std::vector<int64_t> on;
    for (const auto& [step, v] : finite)
      if (v == 1.0) on.push_back(step);
    o << "\n**" << (h.flag.empty() ? h.title : h.flag) << "**: "
      << (on.empty() ? std::string("at no step") : "at step" + std::string(on.size() > 1 ? "s " : " ") + steps_text(on))
      << " (" << on.size() << " of " << finite.size() << " steps recorded)." << left_out << "\n";
    return;
  }
  if (constant) {
    o << "\n**" << h.title << "**: " << num(finite.front().second)
      << (finite.size() == 1 ? " at step " + std::to_string(finite.front().first) + ", the only step recorded"
                             : " at every step recorded (steps " + std::to_string(finite.front().first) + "-" +
                                   std::to_string(finite.back().first) + ")")
      << "." << left_out << "\n";
    return;
  }
  o << "\n#### " << h.title << "\n\n";
  if (!h.why.empty()) o << h.why << "\n\n";
  const auto points = markdown::subsample(finite, kMaxChartPoints);
  auto quoted = [](std::string s) {
    s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == '"' || c == '\n' || c == '\r' || c == '`' || c == '%'; }),
            s.end());
    return "\"" + s + "\"";
  };
  o << "```mermaid\nxychart-beta\n    title " << quoted(h.title) << "\n    x-axis \"step\" [";
  for (size_t i = 0; i < points.size(); ++i) o << (i ? ", " : "") << "\"" << points[i].first << "\"";
  o << "]\n    y-axis " << quoted(h.y) << "\n    line [";
  for (size_t i = 0; i < points.size(); ++i) o << (i ? ", " : "") << markdown::chart_number(points[i].second);
  o << "]\n```\n\n";
  if (points.size() < finite.size())
    o << "Showing " << points.size() << " of " << finite.size() << " steps (evenly spaced, last kept). ";
  o << "Last value: " << num(finite.back().second) << " at step " << finite.back().first << "." << left_out << "\n";
}

// The culprit's magnitudes speak for a value that grew out of range; beside bad input, a value
// that arrived already non-finite, one never located or a gradient born in a backward (the
// magnitudes are of the forward's outputs) they mean nothing.
bool magnitude_speaks_for(const Finding& f) {
  if (f.backward) return false;
  switch (f.kind) {
    case FaultKind::Fp16Overflow: case FaultKind::Overflow: case FaultKind::LossScaleCollapse:
    case FaultKind::BornInModule: case FaultKind::Divergence: case FaultKind::HardwarePrecision:
      return true;
    default:
      return false;
  }
}

History known_history(const std::string& name) {
  if (name == "loss_scale")
    return {"Loss scale per step", "loss scale",
            "GradScaler halves its scale at each step whose scaled gradients hold Inf: each fall marks an overflowing "
            "step.", "", INFINITY};
  if (name == "grad_norm")
    return {"Gradient norm per step", "grad norm",
            "A norm that grows step after step before the fault points to divergence; a steady one to an overflow "
            "local to one op. Read at every optimizer step, or every 4th under a GradScaler (which checks every "
            "gradient itself).", "", INFINITY};
  if (name == "lr")
    return {"Learning rate per step", "lr", "The learning rate in use, which the advice on lowering it starts from.", "",
            INFINITY};
  if (name == "scaler_skipped")
    return {"scaler_skipped per step", "skipped", "", "GradScaler skipped the optimizer step", INFINITY};
  if (name == "grad_underflow_share")
    return {"Share of half-precision gradient values that are zero or subnormal", "share",
            "Near 1 before the fault, the loss scale was too low to carry the gradients: they underflowed to zero.",
            "", INFINITY, true};
  if (name == "loss")
    return {"Loss per step", "loss", "The loss the script computed at each step.", "", INFINITY};
  if (name == "update_ratio")
    return {"Update-to-weight ratio per step", "update / weights",
            "How far each optimizer update moved the weights, over their norm (per parameter group): about 1e-3 is "
            "usual for Adam; 0.1 and more, the learning rate throws the model out of range.", "", INFINITY};
  const size_t hash = name.rfind(" #");
  if (hash != std::string::npos && hash > 0 && name.find_first_not_of("0123456789", hash + 2) == std::string::npos) {
    // "loss #2": the second value of one name in a step (a GAN's discriminator and generator).
    History h = known_history(name.substr(0, hash));
    const std::string nth = name.substr(hash + 1);
    const size_t per = h.title.rfind(" per step");
    h.title = per == std::string::npos ? h.title + " " + nth : h.title.substr(0, per) + " " + nth + " per step";
    h.why = "The script reported more than one `" + name.substr(0, hash) + "` per step (a GAN's discriminator and "
            "generator, say): each is its own series, in the order the step reported them.";
    return h;
  }
  return {name + " per step", name, "Recorded by the frontend as `" + name + "`.", "", INFINITY};
}

void histories_section(const Report& r, std::ostringstream& o) {
  static const char* kOrder[] = {"loss_scale", "grad_norm", "loss"};
  const bool magnitude = !r.culprit_magnitude.empty() && r.finding.found && magnitude_speaks_for(r.finding);
  bool any = magnitude;
  for (const auto& s : r.series) any |= !s.second.empty();
  if (!any) return;
  o << "\n### Histories\n";
  if (magnitude) {
    const std::string who = r.finding.origin.site.module_path;
    const std::string dt = to_string(r.culprit_dtype);
    History h{"Largest finite |x| of " + (who.empty() ? std::string("the culprit") : who) + " (" + dt + " outputs) per step",
              "max |x|",
              "How close its " + dt + " outputs came to " + dt + "'s largest finite value (" +
                  num(dtype_max(r.culprit_dtype)) + ") in the steps up to the fault.",
              "", dtype_max(r.culprit_dtype)};
    history_block(h, r.culprit_magnitude, o);
  }
  for (const char* k : kOrder) {
    auto it = r.series.find(k);
    if (it != r.series.end() && !it->second.empty()) history_block(known_history(k), it->second, o);
  }
  for (const auto& entry : r.series) {
    const std::string& name = entry.first;
    const std::map<int64_t, double>& points = entry.second;
    if (points.empty() || std::find_if(std::begin(kOrder), std::end(kOrder), [&](const char* k) { return name == k; }) !=
                              std::end(kOrder))
      continue;
    const History h = known_history(name);
    if (!h.before_fault || !r.finding.found) {
      history_block(h, points, o);
      continue;
    }
    std::map<int64_t, double> before(points.begin(), points.lower_bound(r.finding.step()));
    if (!before.empty()) history_block(h, before, o);
  }
}

// "Recovered" only when the loss showed it (LossWatch::recovered_after).
std::string recovery_text(const Report& r) {
  if (r.blowup) return "the loss did not come back: it blew up (below).";
  if (!r.skips_recovered) return "whether training recovered is not known (no loss was seen before and after).";
  return *r.skips_recovered ? "the loss came back to its level before the skips (handled, not a fault)."
                            : "the loss did not come back to its level before the skips.";
}

void checkpoints_section(const Report& r, std::ostringstream& o);

void evidence_section(const Report& r, std::ostringstream& o) {
  const Finding& f = r.finding;
  o << "\n## Evidence\n";
  if (f.found) {
    o << "\n### The bad tensor, its inputs and parameters\n\n" << kStatsHeader;
    // Evidence from another moment than the fault's step carries its own step.
    auto role = [&](const std::string& name, const CheckRecord& c) {
      return c.step > 0 && c.step != f.step() ? name + " (step " + std::to_string(c.step) + ")" : name;
    };
    if (f.first_seen) o << stats_row("first seen", *f.first_seen);
    o << stats_row(role("**origin**", f.origin), f.origin);
    for (const auto& c : f.inputs) o << stats_row(role("input", c), c);
    for (const auto& c : f.params) o << stats_row(role("param", c), c);
    const bool op_level = f.op_pinned_step >= 0 && f.replay.size() == 1 && f.replay[0].site.role == Role::Output;
    const bool graph = f.op_source == "graph";
    for (const auto& c : f.replay) o << stats_row(role(op_level ? "op" : graph ? "graph" : "replay", c), c);
    if (op_level)
      o << "\n`op`: the op's output as op-level checks inside the module saw it when the fault recurred.\n";
    else if (graph && !f.replay.empty())
      o << "\n`graph`: the op's inputs and output as autograd kept them for backward, read from the non-finite "
           "value's autograd graph (nothing was re-run).\n";
    else if (!f.replay.empty())
      o << "\n`replay`: op outputs from re-running the culprit on its captured inputs.\n";
  }
  histories_section(r, o);

  o << "\n### Loss-scaler skips handled (not a fault)\n\n";
  if (r.benign_skips.empty()) {
    o << "None.\n";
  } else {
    o << "GradScaler found inf in the scaled gradients, skipped the step and lowered the scale; "
      << recovery_text(r) << "\n\n| step | scale before | scale after | inf first seen at |\n|---:|---:|---:|---|\n";
    for (const auto& s : r.benign_skips)
      o << "| " << s.step << " | " << num(s.scale_before) << " | " << num(s.scale_after) << " | "
        << (s.first_site.empty() ? "-" : cell(s.first_site)) << " |\n";
  }

  if (r.blowup) {
    const LossBlowup& b = *r.blowup;
    o << "\n### Loss blow-up without NaN\n\n"
      << "The loss jumped from about " << num(b.baseline) << " (median of the steps before) to about " << num(b.level)
      << " at step " << b.begin_step << " and stayed above " << num(LossWatch::kFactor) << "x its level for "
      << LossWatch::kConfirmSteps << " steps (confirmed at step " << b.confirmed_step << ").";
    if (!b.module.empty())
      o << " The module whose largest |x| jumped most at step " << b.begin_step << ": " << code(b.module) << " ("
        << num(b.module_jump) << "x).";
    o << "\n";
  }

  o << "\n### Early warnings\n\n";
  if (r.warnings.empty()) {
    o << "None.\n";
  } else {
    o << "| step | module | dtype | max abs | binades left | reason |\n|---:|---|---|---:|---:|---|\n";
    for (const auto& w : r.warnings)
      o << "| " << w.step << " | " << cell(w.module_path) << " | " << to_string(w.dtype) << " | " << num(w.max_abs)
        << " | " << num(w.binades_left) << " | " << cell(w.reason) << " |\n";
  }

  checkpoints_section(r, o);
}

// Every checkpoint the run wrote, judged: the one to resume from and those not to, and a
// poisoned file that now heads a numbered family a script resumes from.
void checkpoints_section(const Report& r, std::ostringstream& o) {
  if (!r.finding.found && r.checkpoints.empty()) return;
  o << "\n### Checkpoints\n\n";
  if (r.checkpoints.empty() && r.last_checkpoint_before_fault.empty()) {
    o << "No checkpoint was saved during the run (torch.save to a file).\n";
    return;
  }
  std::optional<CheckpointSave> clean;
  for (const CheckpointSave& c : r.checkpoints)
    if (c.path == r.last_checkpoint_before_fault && !c.after_fault && c.nonfinite_tensors == 0) clean = c;
  if (r.finding.found)
    o << (r.last_checkpoint_before_fault.empty() ? std::string("No clean checkpoint was saved before the fault.")
                                                 : "The last clean checkpoint before the fault: " +
                                                       code(redact(r.last_checkpoint_before_fault)) + ".")
      << "\n\n";
  if (r.checkpoints.empty()) return;
  if (r.checkpoints_dropped > 0)
    o << r.checkpoints_dropped << " earlier save(s) are not listed; the last " << r.checkpoints.size() << " are.\n\n";
  o << "| step | file | non-finite tensors | verdict |\n|---:|---|---|---|\n";
  for (const CheckpointSave& c : r.checkpoints) {
    std::string counts = c.nonfinite_tensors < 0 ? std::string("not counted")
                                                 : std::to_string(c.nonfinite_tensors) + " of " + std::to_string(c.tensors);
    if (!c.nonfinite_names.empty()) counts += " (" + text::join(c.nonfinite_names, ", ") + ", ...)";
    o << "| " << c.step << " | " << cell(redact(c.path)) << " | " << cell(counts) << " | "
      << cell(checkpoint_verdict(c, clean)) << " |\n";
  }
  for (const CheckpointSave& c : poisoned_heads(r.checkpoints))
    o << "\n" << code(redact(c.path)) << " is now the newest of " << code(redact(c.pattern)) << ": "
      << (c.resumed_from ? "the script resumes from the newest of these, so a restart would load it."
                         : "a script that resumes from the newest of these would load it.")
      << " Delete or move it (and the other poisoned files above) before restarting.\n";
}

void environment_section(const Report& r, std::ostringstream& o) {
  o << "\n## Environment\n\n";
  if (r.environment.empty()) {
    o << "Not recorded.\n";
    return;
  }
  o << "| | |\n|---|---|\n";
  for (const auto& [k, v] : r.environment) o << "| " << cell(k) << " | " << cell(redact(v)) << " |\n";
}

}  // namespace

namespace {

// Host-provided names (module paths can hold newlines) must not break headings, list items
// or prose: show control characters escaped everywhere outside the tables' own escaping.
std::string escape_controls(const std::string& s) { return text::escape_controls(s); }

Report with_escaped_controls(const Report& in) {
  Report r = in;
  auto fix_record = [](CheckRecord& c) {
    c.site.module_path = escape_controls(c.site.module_path);
    c.site.module_type = escape_controls(c.site.module_type);
    c.site.tensor_name = escape_controls(c.site.tensor_name);
  };
  fix_record(r.finding.origin);
  if (r.finding.first_seen) fix_record(*r.finding.first_seen);
  if (r.evaluation) fix_record(*r.evaluation);
  for (auto* v : {&r.finding.inputs, &r.finding.params, &r.finding.replay})
    for (auto& c : *v) fix_record(c);
  r.finding.explanation = escape_controls(r.finding.explanation);
  r.finding.recommendation.headline = escape_controls(r.finding.recommendation.headline);
  for (auto& a : r.finding.recommendation.actions) a = escape_controls(a);
  for (auto& e : r.finding.recommendation.evidence) e = escape_controls(e);
  for (auto& w : r.warnings) w.module_path = escape_controls(w.module_path), w.reason = escape_controls(w.reason);
  for (auto& k : r.benign_skips) k.first_site = escape_controls(k.first_site);
  for (auto& n : r.notes) n = escape_controls(n);
  r.last_checkpoint_before_fault = escape_controls(r.last_checkpoint_before_fault);
  return r;
}

// A value seen non-finite only in an evaluation forward: its own finding, beside (or instead
// of) the training one.
void evaluation_section(const Report& r, std::ostringstream& o) {
  const CheckRecord& e = *r.evaluation;
  const bool batch = e.site.role == Role::Input;
  o << "\n## Evaluation\n\n"
    << "A forward of the model in eval mode under `no_grad` / `inference_mode` (evaluation, not training) "
    << (e.step >= 1 ? "after training step " + std::to_string(e.step) : std::string("before the first training step"))
    << " held a non-finite value: "
    << (batch ? "its batch entering " + code(e.site.module_path) + " (" + code(e.site.tensor_name) + ")"
              : code(e.site.module_path) + "'s " + code(e.site.tensor_name))
    << ", " << to_string(e.dtype) << " " << shape_text(e.shape) << ", " << e.stats.nan_count << " NaN, "
    << e.stats.posinf_count + e.stats.neginf_count << " Inf of " << e.stats.numel << ". "
    << r.evaluation_nonfinite_checks << " evaluation check(s) were non-finite in all. "
    << (r.finding.found ? "It is not the training fault above, and no training value depends on it.\n"
                        : "Training values never were: the model trains fine, its evaluation does not.\n");
}

}  // namespace

std::string render_markdown(const Report& original) {
  const Report r = with_escaped_controls(original);
  std::ostringstream o;
  const Finding& f = r.finding;
  o << title_line(r) << "\n";
  if (f.found) {
    o << "The first non-finite value of the run, in program order:\n\n";
    summary_table(r, o);
    o << "\nRun summary: " << r.steps_seen << " steps, " << r.checks << " checks, " << r.nonfinite_checks
      << " with non-finite values. Steps are training iterations, counted from 1";
    if (!r.step_counter.empty())
      o << "; the script's own " << code(r.step_counter) << " is the step " << (r.step_counter_offset < 0 ? "" : "+")
        << r.step_counter_offset;
    o << ".\n";
    if (!f.explanation.empty()) o << "\n## Why\n\n" << f.explanation << "\n";
  } else if (r.evaluation) {
    o << "Training stayed finite: no non-finite value (NaN or ±Inf) was seen in " << r.steps_seen
      << " training steps. One was seen in evaluation (below).";
    if (!r.benign_skips.empty())
      o << " GradScaler skipped " << r.benign_skips.size() << " step(s) on inf in scaled gradients; "
        << recovery_text(r);
    o << "\n";
  } else {
    o << "No non-finite value (NaN or ±Inf) was seen: " << r.checks << " checks over " << r.steps_seen << " steps, "
      << r.nonfinite_checks << " non-finite.";
    if (!r.benign_skips.empty())
      o << " GradScaler skipped " << r.benign_skips.size() << " step(s) on inf in scaled gradients; "
        << recovery_text(r);
    o << "\n";
  }
  if (r.evaluation) evaluation_section(r, o);
  recommendation_section(f.recommendation, o);
  evidence_section(r, o);
  environment_section(r, o);
  if (!r.notes.empty()) {
    o << "\n## Notes\n\n";
    for (const auto& n : r.notes) o << "- " << n << "\n";
  }
  o << "\n---\nReport written by nantrace";
  if (!r.run_dir.empty()) o << "; run directory " << code(r.run_dir);
  o << ".\n";
  return o.str();
}

}  // namespace nantrace
