// Early warning: how close fp16/bf16 module outputs come to the dtype's largest value, and
// whether their growth over steps predicts an overflow soon. Bounded per module.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "core/model.h"

namespace nantrace {

double dtype_max(DType d);
// Binades between |x| and the dtype's max (log2(max / |x|)); 0 when |x| >= max.
double binades_left(DType d, double max_abs);

class HeadroomTracker {
 public:
  explicit HeadroomTracker(int64_t horizon_steps) : horizon_(horizon_steps) {}
  // One forward output (any dtype; warnings only for fp16/bf16). Returns a warning the first time a module
  // comes within 2x of the max or its trend predicts overflow within the horizon.
  std::optional<HeadroomWarning> observe(int64_t step, const std::string& module_path, DType dtype, double max_abs);
  // Largest |x| per step of one module's outputs of one dtype (most recent kMaxSteps steps):
  // a module with float16 and float32 outputs has one track each, so a magnitude is always
  // read against its own dtype's range.
  std::map<int64_t, double> history(const std::string& module_path, DType dtype) const;

  static constexpr size_t kMaxSteps = 256;
  static constexpr double kTrendBinades = 6.0;  // trend warnings only within 64x of the max
  static constexpr size_t kMaxModules = 20000;

  // The module whose largest |x| at `step` is the most above its largest over the steps
  // before (up to 5 of them), or nullopt when no module has both. A module not checked at
  // `step` (its outputs sampled out) is read at its first checked step after it.
  struct Jump {
    std::string module;
    double factor = 0;
    int64_t step = 0;  // the step its largest |x| was read at
  };
  std::optional<Jump> largest_jump(int64_t step) const;

 private:
  struct ModuleTrack {
    DType dtype = DType::F16;
    std::deque<std::pair<int64_t, double>> per_step;  // (step, largest |x| in that step)
    bool warned = false;
  };
  int64_t horizon_;
  std::map<std::string, ModuleTrack> modules_;  // by key(path, dtype)
};

}  // namespace nantrace
