#include "core/headroom.h"

#include <cmath>
#include <sstream>
#include <vector>

#include "core/float_bits.h"

namespace nantrace {

double dtype_max(DType d) {
  switch (d) {
    case DType::F16: return fbits::max_finite<fbits::F16>();
    case DType::BF16: return fbits::max_finite<fbits::BF16>();
    case DType::F32: return fbits::max_finite<fbits::F32>();
    case DType::F64: return fbits::max_finite<fbits::F64>();
  }
  return fbits::max_finite<fbits::F32>();
}

double binades_left(DType d, double max_abs) {
  if (!(max_abs > 0)) return std::log2(dtype_max(d)) + 1;
  const double left = std::log2(dtype_max(d) / max_abs);
  return left > 0 ? left : 0;
}

namespace {
// One track per (module, dtype).
std::string key(const std::string& module_path, DType dtype) { return module_path + '\x1f' + to_string(dtype); }
}  // namespace

std::optional<HeadroomWarning> HeadroomTracker::observe(int64_t step, const std::string& module_path, DType dtype,
                                                        double max_abs) {
  const std::string k = key(module_path, dtype);
  auto it = modules_.find(k);
  if (it == modules_.end()) {
    if (modules_.size() >= kMaxModules) return std::nullopt;
    it = modules_.emplace(k, ModuleTrack{}).first;
    it->second.dtype = dtype;
  }
  ModuleTrack& t = it->second;
  if (!t.per_step.empty() && t.per_step.back().first == step) {
    t.per_step.back().second = std::max(t.per_step.back().second, max_abs);
  } else {
    t.per_step.emplace_back(step, max_abs);
    if (t.per_step.size() > kMaxSteps) t.per_step.pop_front();
  }
  if (t.warned || !is_half(dtype)) return std::nullopt;  // fp32 overflow is divergence, not headroom

  const double left = binades_left(dtype, max_abs);
  HeadroomWarning w;
  w.step = step;
  w.module_path = module_path;
  w.dtype = dtype;
  w.max_abs = max_abs;
  w.binades_left = left;
  if (left < 1.0) {
    w.reason = "largest |x| is within 2x of the dtype's max";
    t.warned = true;
    return w;
  }
  // Trend: least-squares slope of log2(max|x|) per step over the last few steps. A steady
  // climb predicts when the largest value reaches the dtype's max.
  constexpr size_t kFit = 8;
  if (t.per_step.size() < 4) return std::nullopt;
  std::vector<std::pair<double, double>> pts;
  for (size_t i = t.per_step.size() > kFit ? t.per_step.size() - kFit : 0; i < t.per_step.size(); ++i) {
    if (t.per_step[i].second > 0) pts.emplace_back(double(t.per_step[i].first), std::log2(t.per_step[i].second));
  }
  if (pts.size() < 4) return std::nullopt;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (auto& p : pts) sx += p.first, sy += p.second, sxx += p.first * p.first, sxy += p.first * p.second;
  const double n = double(pts.size());
  const double den = n * sxx - sx * sx;
  if (den <= 0) return std::nullopt;
  const double slope = (n * sxy - sx * sy) / den;  // binades per step
  if (slope < 0.05) return std::nullopt;
  // Early growth of small values extrapolates badly: only warn once the largest value is
  // within kTrendBinades of the max and still climbing.
  if (left > kTrendBinades) return std::nullopt;
  const double steps_to_overflow = left / slope;
  if (steps_to_overflow > double(horizon_)) return std::nullopt;
  std::ostringstream reason;
  reason.precision(3);
  reason << "largest |x| grows " << slope << " binades/step; at this rate it reaches the dtype's max in about "
         << std::ceil(steps_to_overflow) << " steps";
  w.reason = reason.str();
  t.warned = true;
  return w;
}

std::optional<HeadroomTracker::Jump> HeadroomTracker::largest_jump(int64_t step) const {
  std::optional<Jump> best;
  for (const auto& [k, t] : modules_) {
    double at = -1, before = 0;
    int64_t at_step = 0;
    int n = 0;
    for (auto it = t.per_step.rbegin(); it != t.per_step.rend(); ++it) {
      if (it->first >= step) at = it->second, at_step = it->first;  // newest to oldest: ends at the first
      else if (n < 5) before = std::max(before, it->second), ++n;
    }
    if (at < 0 || n == 0 || !(before > 0)) continue;
    const double jump = at / before;
    if (!best || jump > best->factor) best = Jump{k.substr(0, k.find('\x1f')), jump, at_step};
  }
  return best;
}

std::map<int64_t, double> HeadroomTracker::history(const std::string& module_path, DType dtype) const {
  std::map<int64_t, double> out;
  auto it = modules_.find(key(module_path, dtype));
  if (it == modules_.end()) return out;
  for (auto& p : it->second.per_step) out[p.first] = p.second;
  return out;
}

}  // namespace nantrace
