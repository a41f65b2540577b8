// A report with every field set to a distinctive value, for the writer tests.
#pragma once

#include <cmath>
#include <limits>

#include "core/model.h"

namespace nantrace {
namespace testing_support {

inline CheckRecord make_record(Role role, const std::string& name, const std::string& op, DType dtype,
                               std::vector<int64_t> shape, uint64_t numel, uint64_t nans, uint64_t posinf,
                               double max_abs) {
  CheckRecord c;
  c.site.role = role;
  c.site.tensor_name = name;
  c.site.op = op;
  c.dtype = dtype;
  c.shape = std::move(shape);
  c.stats.numel = numel;
  c.stats.nan_count = nans;
  c.stats.posinf_count = posinf;
  c.stats.neginf_count = 1;
  c.stats.zero_count = 7;
  c.stats.subnormal_count = 3;
  c.stats.max_abs_finite = max_abs;
  c.stats.first_bad_index = nans + posinf ? 17 : -1;
  c.stats.headroom_hist[0] = 2;
  c.stats.headroom_hist[5] = 11;
  c.stats.headroom_hist[NT_HEADROOM_BINS - 1] = 99;
  return c;
}

inline Report make_fault_report() {
  Report r;
  r.run_dir = "/tmp/run dir/nantrace-2024";
  r.rank = 1;
  r.world_size = 2;
  Finding& f = r.finding;
  f.found = true;
  f.kind = FaultKind::Fp16Overflow;
  f.origin = make_record(Role::Output, "output[0]", "aten::conv_transpose1d", DType::F16, {4, 256, 8192},
                         4 * 256 * 8192, 0, 12, 65504.0);
  f.origin.seq = 123456;
  f.origin.step = 200;
  f.origin.ts_ns = 1'700'000'000'123'456'789;
  f.origin.site.phase = Phase::Forward;
  f.origin.site.module_path = "SynthesizerTrn/dec.ups.1";
  f.origin.site.module_type = "ConvTranspose1d";
  f.origin.device = Device::CUDA;
  f.origin.device_index = 3;
  f.origin.kernels = {"void cudnn::conv_kernel<__half>(...)"};
  f.op = "aten::conv_transpose1d";
  f.kernels = f.origin.kernels;
  f.inputs = {make_record(Role::Input, "input[0]", "", DType::F16, {4, 512, 2048}, 4 * 512 * 2048, 0, 0, 31000.0)};
  f.params = {make_record(Role::Param, "weight", "", DType::F32, {512, 256, 16}, 512 * 256 * 16, 0, 0, 0.75),
              make_record(Role::Param, "bias", "", DType::F32, {256}, 256, 0, 0, 0.01)};
  f.replay = {make_record(Role::Replay, "conv_transpose1d out", "aten::conv_transpose1d", DType::F32, {4, 256, 8192},
                          4 * 256 * 8192, 0, 0, 81234.5)};
  f.explanation = "Inputs were finite and the output holds +inf: the largest |x| exceeded fp16's 65504.";
  f.recommendation.headline = "Run SynthesizerTrn/dec.ups.1 in fp32.";
  f.recommendation.actions = {"Set \"fp16_run\": false in configs/s2.json", "Or wrap dec.ups.1 in autocast(enabled=False)"};
  f.recommendation.evidence = {"max |x| grew 2x per step over the last 10 steps"};
  r.benign_skips = {{3, 65536.0, 32768.0, "SynthesizerTrn/dec.ups.0 grad_output[0]"},
                    {5, 32768.0, 16384.0, ""}};
  r.warnings = {{190, "SynthesizerTrn/dec.ups.1", DType::F16, 40000.0, 0.7, "within 2x of max"}};
  r.series["loss_scale"] = {{1, 65536.0}, {2, 65536.0}, {3, 32768.0}};
  r.series["loss"] = {{198, 2.5}, {199, 3.25}, {200, std::numeric_limits<double>::quiet_NaN()},
                      {201, std::numeric_limits<double>::infinity()}};
  r.series["grad_norm"] = {{198, 1e-9}, {199, 1.5e6}};
  r.culprit_magnitude = {{197, 8000.0}, {198, 16000.0}, {199, 32000.0}, {200, 65504.0}};
  r.culprit_dtype = DType::F16;
  r.last_checkpoint_before_fault = "logs/G_150.pth";
  r.environment = {{"python", "3.11.7"}, {"torch", "2.4.0+cu121"}, {"gpu", "NVIDIA T4 | sm_75"}};
  r.steps_seen = 201;
  r.checks = 98765;
  r.nonfinite_checks = 42;
  r.notes = {"op-level checks enabled in SynthesizerTrn/dec.ups.1 from step 200"};
  return r;
}

}  // namespace testing_support
}  // namespace nantrace
