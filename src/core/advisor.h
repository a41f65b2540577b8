// Turns a classified fault into a recommendation specific to what was seen: the module,
// the op, the config key, the learning rate in use, the device.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/model.h"

namespace nantrace {

struct AdviceContext {
  std::string trainer;                // a known trainer ("GPT-SoVITS s2_train.py"), "" otherwise
  std::string config_path;            // a training config seen on the command line
  std::optional<bool> config_fp16;    // its fp16 switch (e.g. GPT-SoVITS's train.fp16_run) ...
  std::string config_fp16_key;        // ... under this dotted key
  std::optional<double> config_lr;    // its learning rate ...
  std::string config_lr_key;          // ... under this dotted key
  std::optional<double> default_lr;   // the known trainer's default learning rate (GPT-SoVITS: 1e-4)
  std::optional<double> lr;           // learning rate read from the optimizer, at the fault
  double update_ratio = 0;            // largest update-to-weight ratio just before the fault ...
  int64_t update_ratio_step = -1;     // ... measured at this step (-1: none)
  // The step up to the fault whose (learning rate, update ratio) pair gives the lowest rate for
  // a usual update (lr x 1e-3 / ratio): the rate the advice derives (step -1: none).
  int64_t derive_step = -1;
  double derive_lr = 0, derive_ratio = 0;
  std::optional<double> first_lr;     // the learning rate at the first step recorded
  std::string device_name;            // GPU name when known
  std::optional<bool> fp32_replay_finite;  // re-running the culprit in fp32 on captured inputs
  double fp32_replay_max_abs = 0;
  double growth = 1.0;                // magnitude / grad-norm growth over recent steps
  std::string last_checkpoint;        // the last clean checkpoint saved before the fault
  const std::vector<CheckpointSave>* checkpoints = nullptr;  // every save of the run (bounded), in order
  int64_t benign_skips = 0;
  std::optional<bool> skips_recovered;  // the loss came back after the skips (nullopt: not known)
  std::optional<LossBlowup> blowup;     // a blow-up of the loss without NaN
  std::optional<CheckRecord> evaluation;  // the first non-finite value of an evaluation forward
};

// GTX 16xx, Pascal (P100/GTX 10xx), Tesla T4 (sm_75): weak or unstable fp16.
bool weak_fp16_device(const std::string& name);

Recommendation advise(const Finding& finding, const AdviceContext& ctx);

}  // namespace nantrace
