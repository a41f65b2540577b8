// The frontend's events, typed: one struct per nt_event_kind (include/nantrace/nantrace.h,
// where each kind's detail schema is written beside the enum), decoded from an EventRecord in
// one place. The analysis switches on the type, never on a note's name or on key spelling.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"

namespace nantrace {
namespace events {

struct Note {  // NT_EVENT_NOTE: free text
  std::string label, text;
};
struct OptimizerStep {
  std::string label;
  std::optional<double> lr;
  bool skipped = false;
};
struct ScalerUpdate {
  double scale_before = 0, scale_after = 0;
  bool found_inf = false;
};
struct Checkpoint {
  std::string path;
  std::optional<int64_t> tensors, nonfinite_tensors;
  std::vector<std::string> nonfinite_names;
  std::string pattern;
  bool heads_pattern = false, resumed_from_pattern = false;
};
struct Config {  // neutral facts: the core knows no trainer's key names
  std::string path, trainer, fp16_key, lr_key;
  std::optional<bool> fp16;
  std::optional<double> learning_rate;
  std::optional<double> default_learning_rate;  // the trainer's own default, when known
  std::string step_counter;                   // the script's own step counter ("global_step")
  std::optional<int64_t> step_counter_offset; // its value at nantrace's step N is N + offset
};
struct Warning {
  std::string label;
  nlohmann::json detail;  // shown as it is in the trace marker
};
struct CheckMode {
  std::string module, level, reason;
};
struct OriginInCode {
  std::string module, module_type, relay;
  bool recurrence = false;
};
struct ReplayBegin {
  std::string module;
  std::optional<int64_t> step;
  bool recurrence = false;
  bool graph = false;  // read from the autograd graph, nothing re-run ("" module: the loss computation)
  // The step's root forwards re-run with every module output checked, because the step's module
  // checks were sampled out when its loss turned non-finite (same step, batch, RNG, weights).
  bool step_replay = false;
};
struct ReplayEnd {
  std::string module, op;  // op "" = not pinned
  // The submodule the first non-finite op output was made in, when the replayed module ran
  // compiled (no hook saw inside it): "" otherwise.
  std::string inner, inner_type;
  // From the autograd graph: the node read ("LogBackward0"), what the search concluded
  // ("pinned", "untracked", "undetermined", "no_graph") and why, in words.
  bool graph = false;
  std::string node, status, reason;
  std::map<std::string, std::string> input_ops;  // input name -> the op that made it ("aten::_softmax")
  bool step_replay = false;  // ends a step replay; status "reproduced": it gave the step's outputs bit for bit
};
struct FixCheck {
  std::string variant = "fp32", module, error;
  std::optional<bool> finite;
  double max_abs = 0;
};
struct EvidenceUnavailable {
  std::string what, module, reason;
};
struct Capture {
  std::string stage, module, why;  // stage: "armed", "moved_outwards", "gave_up"
  std::optional<int64_t> forwards;
};
struct ReproSaved {
  std::string path;
};
struct BackwardOrigin {
  std::string module, module_type, node, seen_at;
  std::vector<std::string> consumers;
};

struct Epoch {
  std::string dataset;
  int64_t epoch = 0;
  std::optional<int64_t> batches, batch;
};

using Event = std::variant<Note, OptimizerStep, ScalerUpdate, Checkpoint, Config, Warning, CheckMode, OriginInCode,
                           ReplayBegin, ReplayEnd, FixCheck, EvidenceUnavailable, Capture, ReproSaved,
                           BackwardOrigin, Epoch>;

// The typed event of a record, or nullopt with *error (one line: the kind and what is wrong)
// for an unknown kind or a detail that is not a JSON object where the schema wants one.
// Fields of the wrong type are treated as missing.
std::optional<Event> decode(const EventRecord& r, std::string* error = nullptr);

// The JSON helpers the decoding uses, shared with the analysis: a number (also "nan"/"inf"
// strings as strict_json writes them) or a bool under key, nullopt when absent or mistyped.
std::optional<double> json_number(const nlohmann::json& j, const char* key);
std::optional<bool> json_bool(const nlohmann::json& j, const char* key);
std::string json_string(const nlohmann::json& j, const char* key);  // "" when absent

}  // namespace events
}  // namespace nantrace
