#include "core/frontend_events.h"

#include "core/text.h"

#include <cmath>

#include "nantrace/nantrace.h"

namespace nantrace {
namespace events {

std::optional<double> json_number(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return std::nullopt;
  return text::json_to_double(j[key]);
}

std::optional<bool> json_bool(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_boolean()) return std::nullopt;
  return j[key].get<bool>();
}

std::string json_string(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

namespace {

std::optional<int64_t> json_int(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number_integer()) return std::nullopt;
  return j[key].get<int64_t>();
}

}  // namespace

std::optional<Event> decode(const EventRecord& r, std::string* error) {
  auto fail = [&](const std::string& what) -> std::optional<Event> {
    if (error) *error = "event kind " + std::to_string(r.kind) + " (" + r.name + "): " + what;
    return std::nullopt;
  };
  if (r.kind == NT_EVENT_NOTE) return Note{r.name, r.detail_json};
  nlohmann::json d = nlohmann::json::object();
  if (!r.detail_json.empty()) {
    d = nlohmann::json::parse(r.detail_json, nullptr, /*allow_exceptions=*/false);
    if (!d.is_object()) return fail("detail is not a JSON object");
  }
  switch (r.kind) {
    case NT_EVENT_OPTIMIZER_STEP:
      return OptimizerStep{r.name, json_number(d, "lr"), json_bool(d, "skipped").value_or(false)};
    case NT_EVENT_SCALER_UPDATE: {
      ScalerUpdate u;
      u.scale_before = json_number(d, "scale_before").value_or(0);
      u.scale_after = json_number(d, "scale_after").value_or(0);
      u.found_inf = json_bool(d, "found_inf").value_or(u.scale_after < u.scale_before);
      return u;
    }
    case NT_EVENT_CHECKPOINT: {
      Checkpoint c;
      c.path = r.name;
      c.tensors = json_int(d, "tensors");
      c.nonfinite_tensors = json_int(d, "nonfinite_tensors");
      if (d.contains("nonfinite_names") && d["nonfinite_names"].is_array())
        for (const auto& n : d["nonfinite_names"])
          if (n.is_string() && c.nonfinite_names.size() < 8) c.nonfinite_names.push_back(n.get<std::string>());
      c.pattern = json_string(d, "pattern");
      c.heads_pattern = json_bool(d, "heads_pattern").value_or(false);
      c.resumed_from_pattern = json_bool(d, "resumed_from_pattern").value_or(false);
      return c;
    }
    case NT_EVENT_CONFIG:
      return Config{r.name,
                    json_string(d, "trainer"),
                    json_string(d, "fp16_key"),
                    json_string(d, "lr_key"),
                    json_bool(d, "fp16"),
                    json_number(d, "learning_rate"),
                    json_number(d, "default_learning_rate"),
                    json_string(d, "step_counter"),
                    json_int(d, "step_counter_offset")};
    case NT_EVENT_WARNING:
      return Warning{r.name, d};
    case NT_EVENT_CHECK_MODE:
      return CheckMode{json_string(d, "module"), json_string(d, "level"), json_string(d, "reason")};
    case NT_EVENT_ORIGIN_IN_CODE:
      return OriginInCode{json_string(d, "module"), json_string(d, "module_type"), json_string(d, "relay"),
                          json_bool(d, "recurrence").value_or(false)};
    case NT_EVENT_REPLAY_BEGIN:
      return ReplayBegin{json_string(d, "module"), json_int(d, "step"), json_bool(d, "recurrence").value_or(false),
                         json_bool(d, "graph").value_or(false), json_bool(d, "step_replay").value_or(false)};
    case NT_EVENT_REPLAY_END: {
      ReplayEnd e{json_string(d, "module"), json_string(d, "op"), json_string(d, "inner"),
                  json_string(d, "inner_type"), json_bool(d, "graph").value_or(false),
                  json_string(d, "node"), json_string(d, "status"), json_string(d, "reason"), {},
                  json_bool(d, "step_replay").value_or(false)};
      if (d.contains("input_ops") && d["input_ops"].is_object())
        for (const auto& [k, v] : d["input_ops"].items())
          if (v.is_string() && e.input_ops.size() < 16) e.input_ops[k] = v.get<std::string>();
      return e;
    }
    case NT_EVENT_FIX_CHECK: {
      FixCheck f;
      if (const std::string v = json_string(d, "variant"); !v.empty()) f.variant = v;
      f.module = json_string(d, "module");
      f.error = json_string(d, "error");
      f.finite = json_bool(d, "finite");
      f.max_abs = json_number(d, "max_abs").value_or(0);
      return f;
    }
    case NT_EVENT_EVIDENCE_UNAVAILABLE:
      return EvidenceUnavailable{r.name, json_string(d, "module"), json_string(d, "reason")};
    case NT_EVENT_CAPTURE:
      return Capture{r.name, json_string(d, "module"), json_string(d, "why"), json_int(d, "forwards")};
    case NT_EVENT_REPRO_SAVED:
      return ReproSaved{r.name};
    case NT_EVENT_BACKWARD_ORIGIN: {
      BackwardOrigin b{json_string(d, "module"), json_string(d, "module_type"), json_string(d, "node"),
                       json_string(d, "seen_at"), {}};
      if (d.contains("consumers") && d["consumers"].is_array())
        for (const auto& c : d["consumers"])
          if (c.is_string() && b.consumers.size() < 16) b.consumers.push_back(c.get<std::string>());
      return b;
    }
    case NT_EVENT_EPOCH: {
      const std::optional<int64_t> epoch = json_int(d, "epoch");
      if (!epoch || *epoch < 1) return fail("no \"epoch\" (an integer from 1)");
      return Epoch{r.name, *epoch, json_int(d, "batches"), json_int(d, "batch")};
    }
    default:
      return fail("unknown kind");
  }
}

}  // namespace events
}  // namespace nantrace
