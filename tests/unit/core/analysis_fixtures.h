// Builders for check records and events used by the analysis tests.
#pragma once

#include <string>

#include "core/model.h"

namespace nantrace::testing {

inline CheckRecord check(int64_t step, Phase phase, const std::string& module, DType dtype, uint64_t nan = 0,
                         uint64_t posinf = 0, uint64_t neginf = 0, double max_abs = 1.0, Role role = Role::Output,
                         const std::string& tensor = "output[0]", const std::string& op = "") {
  static uint64_t seq = 0;
  CheckRecord r;
  r.seq = seq++;
  r.step = step;
  r.site.phase = phase;
  r.site.role = role;
  r.site.module_path = module;
  r.site.module_type = "Module";
  r.site.op = op;
  r.site.tensor_name = tensor;
  r.dtype = dtype;
  r.shape = {4, 4};
  r.stats.numel = 16;
  r.stats.nan_count = nan;
  r.stats.posinf_count = posinf;
  r.stats.neginf_count = neginf;
  r.stats.max_abs_finite = max_abs;
  r.stats.first_bad_index = (nan + posinf + neginf) ? 0 : -1;
  return r;
}

inline CheckRecord finite(int64_t step, Phase phase, const std::string& module, DType dtype = DType::F16,
                          double max_abs = 1.0) {
  return check(step, phase, module, dtype, 0, 0, 0, max_abs);
}

inline EventRecord event(int64_t step, int32_t kind, const std::string& name, const std::string& detail) {
  EventRecord e;
  e.step = step;
  e.kind = kind;
  e.name = name;
  e.detail_json = detail;
  return e;
}

inline EventRecord scaler_update(int64_t step, double before, double after, bool found_inf) {
  return event(step, NT_EVENT_SCALER_UPDATE, "GradScaler",
               "{\"scale_before\": " + std::to_string(before) + ", \"scale_after\": " + std::to_string(after) +
                   ", \"found_inf\": " + (found_inf ? "true" : "false") + "}");
}

inline EventRecord optimizer_step(int64_t step, bool skipped, double lr = 1e-4) {
  return event(step, NT_EVENT_OPTIMIZER_STEP, "AdamW",
               "{\"lr\": " + std::to_string(lr) + ", \"skipped\": " + (skipped ? "true" : "false") + "}");
}

}  // namespace nantrace::testing
