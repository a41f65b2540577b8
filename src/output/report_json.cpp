// report.json writer and reader. The reader is strict (types checked, every field we always
// write is required) because `nantrace merge` must tell a truncated or corrupted rank file
// from a good one, and name what is wrong.
#include "output/report_json.h"

#include <limits>
#include <stdexcept>

#include "core/redact.h"
#include "output/strict_json.h"

namespace nantrace {

using nlohmann::json;

namespace {

// ---------------------------------------------------------------- writing

std::string device_name(Device d, int32_t index) {
  return d == Device::CUDA ? "cuda:" + std::to_string(index) : "cpu";
}

json op_or_null(const std::string& op) { return op.empty() ? json(nullptr) : json(op); }

json stats_to_json(const TensorStats& s) {
  json hist = json::array();
  for (uint64_t n : s.headroom_hist) hist.push_back(n);
  return json{{"numel", s.numel},
              {"nan", s.nan_count},
              {"posinf", s.posinf_count},
              {"neginf", s.neginf_count},
              {"zeros", s.zero_count},
              {"subnormals", s.subnormal_count},
              {"max_abs_finite", strict_json::number(s.max_abs_finite)},
              {"first_bad_index", s.first_bad_index},
              {"headroom_hist", hist}};
}

json evidence_to_json(const CheckRecord& c) {
  return json{{"name", c.site.tensor_name},
              {"step", c.step},
              {"op", op_or_null(c.site.op)},
              {"dtype", to_string(c.dtype)},
              {"shape", c.shape},
              {"stats", stats_to_json(c.stats)}};
}

json evidence_list(const std::vector<CheckRecord>& records) {
  json out = json::array();
  for (const auto& c : records) out.push_back(evidence_to_json(c));
  return out;
}

json recommendation_to_json(const Recommendation& r) {
  return json{{"headline", r.headline}, {"actions", r.actions}, {"evidence", r.evidence}};
}

bool has_recommendation(const Recommendation& r) {
  return !r.headline.empty() || !r.actions.empty() || !r.evidence.empty();
}

json points_to_json(const std::map<int64_t, double>& points) {
  json out = json::array();
  for (const auto& [step, value] : points) out.push_back(json::array({step, strict_json::number(value)}));
  return out;
}

json backward_to_json(const std::optional<BackwardBirth>& b) {
  if (!b) return nullptr;
  return json{{"seen_at", b->seen_at}, {"seen_tensor", b->seen_tensor},
              {"node", b->node.empty() ? json(nullptr) : json(b->node)}, {"consumers", b->consumers}};
}

json checkpoints_to_json(const std::vector<CheckpointSave>& saves) {
  json a = json::array();
  for (const CheckpointSave& c : saves) {
    auto count = [](int64_t n) { return n < 0 ? json(nullptr) : json(n); };
    a.push_back({{"path", c.path},
                 {"step", c.step},
                 {"tensors", count(c.tensors)},
                 {"nonfinite_tensors", count(c.nonfinite_tensors)},
                 {"nonfinite_names", c.nonfinite_names},
                 {"after_fault", c.after_fault},
                 {"poisoned", c.poisoned()},
                 {"pattern", op_or_null(c.pattern)},
                 {"heads_pattern", c.heads_pattern},
                 {"resumed_from", c.resumed_from}});
  }
  return a;
}

json finding_to_json(const Finding& f) {
  if (!f.found) {
    json j{{"found", false}, {"kind", to_string(FaultKind::None)}};
    if (has_recommendation(f.recommendation)) j["recommendation"] = recommendation_to_json(f.recommendation);
    return j;
  }
  const CheckRecord& o = f.origin;
  auto step_or_null = [](int64_t s) { return s >= 0 ? json(s) : json(nullptr); };
  json first_seen = nullptr;
  if (f.first_seen) {
    const CheckRecord& s = *f.first_seen;
    first_seen = json{{"step", s.step},          {"phase", to_string(s.site.phase)}, {"module_path", s.site.module_path},
                      {"tensor", s.site.tensor_name}, {"dtype", to_string(s.dtype)},      {"shape", s.shape},
                      {"stats", stats_to_json(s.stats)}};
  }
  return json{{"found", true},
              {"kind", to_string(f.kind)},
              {"kind_text", describe(f)},
              {"step", f.step()},
              {"origin_step", o.step},
              {"first_seen", first_seen},
              {"located_at_step", step_or_null(f.first_seen ? f.located_step : -1)},
              {"op_pinned_at_step", step_or_null(f.op_pinned_step)},
              {"backward", backward_to_json(f.backward)},
              {"relay", op_or_null(f.relay)},
              {"op_source", op_or_null(f.op_source)},
              {"op_input_producers", f.op_input_producers},
              {"phase", to_string(o.site.phase)},
              {"module_path", o.site.module_path},
              {"module_type", o.site.module_type},
              {"op", op_or_null(f.op.empty() ? o.site.op : f.op)},
              {"kernels", f.kernels.empty() ? o.kernels : f.kernels},
              {"tensor", o.site.tensor_name},
              {"dtype", to_string(o.dtype)},
              {"device", device_name(o.device, o.device_index)},
              {"shape", o.shape},
              {"seq", o.seq},
              {"ts_ns", o.ts_ns},
              {"stats", stats_to_json(o.stats)},
              {"inputs", evidence_list(f.inputs)},
              {"params", evidence_list(f.params)},
              {"replay", evidence_list(f.replay)},
              {"explanation", f.explanation},
              {"recommendation", recommendation_to_json(f.recommendation)}};
}

// ---------------------------------------------------------------- reading

struct FieldError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

[[noreturn]] void wrong_type(const std::string& path, const char* expected, const json& got) {
  throw FieldError("field '" + path + "': expected " + expected + ", got " + got.type_name());
}

const json& field(const json& obj, const std::string& path, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) throw FieldError("missing field '" + join(path, key) + "'");
  return *it;
}

const json& object_at(const json& obj, const std::string& path, const char* key) {
  const json& v = field(obj, path, key);
  if (!v.is_object()) wrong_type(join(path, key), "an object", v);
  return v;
}

const json& array_at(const json& obj, const std::string& path, const char* key) {
  const json& v = field(obj, path, key);
  if (!v.is_array()) wrong_type(join(path, key), "an array", v);
  return v;
}

int64_t as_int64(const json& v, const std::string& path) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) wrong_type(path, "an int64", v);
    return int64_t(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  wrong_type(path, "an integer", v);
}

uint64_t as_uint64(const json& v, const std::string& path) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  if (v.is_number_integer()) throw FieldError("field '" + path + "': expected an unsigned integer, got a negative one");
  wrong_type(path, "an unsigned integer", v);
}

double as_double(const json& v, const std::string& path) {
  if (auto d = strict_json::to_double(v)) return *d;
  wrong_type(path, "a number (or \"nan\"/\"inf\"/\"-inf\")", v);
}

std::string as_string(const json& v, const std::string& path) {
  if (!v.is_string()) wrong_type(path, "a string", v);
  return v.get<std::string>();
}

int64_t int64_at(const json& o, const std::string& p, const char* k) { return as_int64(field(o, p, k), join(p, k)); }
uint64_t uint64_at(const json& o, const std::string& p, const char* k) { return as_uint64(field(o, p, k), join(p, k)); }
double double_at(const json& o, const std::string& p, const char* k) { return as_double(field(o, p, k), join(p, k)); }
std::string string_at(const json& o, const std::string& p, const char* k) { return as_string(field(o, p, k), join(p, k)); }

int32_t int32_at(const json& o, const std::string& p, const char* k) {
  int64_t v = int64_at(o, p, k);
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
    throw FieldError("field '" + join(p, k) + "': out of range for int32");
  return int32_t(v);
}

bool bool_at(const json& o, const std::string& p, const char* k) {
  const json& v = field(o, p, k);
  if (!v.is_boolean()) wrong_type(join(p, k), "a boolean", v);
  return v.get<bool>();
}

// A string, or null for "none" (read as "").
std::string string_or_null_at(const json& o, const std::string& p, const char* k) {
  const json& v = field(o, p, k);
  if (v.is_null()) return "";
  if (!v.is_string()) wrong_type(join(p, k), "a string or null", v);
  return v.get<std::string>();
}

std::vector<std::string> strings_at(const json& o, const std::string& p, const char* k) {
  const json& a = array_at(o, p, k);
  std::vector<std::string> out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(as_string(a[i], join(p, k) + "[" + std::to_string(i) + "]"));
  return out;
}

std::vector<int64_t> shape_at(const json& o, const std::string& p, const char* k) {
  const json& a = array_at(o, p, k);
  std::vector<int64_t> out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(as_int64(a[i], join(p, k) + "[" + std::to_string(i) + "]"));
  return out;
}

DType dtype_at(const json& o, const std::string& p, const char* k) {
  std::string s = string_at(o, p, k);
  auto d = dtype_from_string(s);
  if (!d) throw FieldError("field '" + join(p, k) + "': unknown dtype \"" + s + "\"");
  return *d;
}

void device_at(const json& o, const std::string& p, const char* k, Device* device, int32_t* index) {
  std::string s = string_at(o, p, k);
  *index = 0;
  if (s == "cpu") {
    *device = Device::CPU;
    return;
  }
  if (s.rfind("cuda", 0) == 0) {
    *device = Device::CUDA;
    if (s.size() == 4) return;
    if (s[4] == ':' && s.size() > 5 && s.size() < 15 && s.find_first_not_of("0123456789", 5) == std::string::npos) {
      *index = int32_t(std::stol(s.substr(5)));
      return;
    }
  }
  throw FieldError("field '" + join(p, k) + "': unknown device \"" + s + "\"");
}

TensorStats stats_at(const json& o, const std::string& p, const char* k) {
  const json& j = object_at(o, p, k);
  const std::string path = join(p, k);
  TensorStats s{};
  s.numel = uint64_at(j, path, "numel");
  s.nan_count = uint64_at(j, path, "nan");
  s.posinf_count = uint64_at(j, path, "posinf");
  s.neginf_count = uint64_at(j, path, "neginf");
  s.zero_count = uint64_at(j, path, "zeros");
  s.subnormal_count = uint64_at(j, path, "subnormals");
  s.max_abs_finite = double_at(j, path, "max_abs_finite");
  s.first_bad_index = int64_at(j, path, "first_bad_index");
  const json& hist = array_at(j, path, "headroom_hist");
  if (hist.size() > NT_HEADROOM_BINS)
    throw FieldError("field '" + path + ".headroom_hist': more than " + std::to_string(NT_HEADROOM_BINS) + " bins");
  for (size_t i = 0; i < hist.size(); ++i)
    s.headroom_hist[i] = as_uint64(hist[i], path + ".headroom_hist[" + std::to_string(i) + "]");
  return s;
}

std::vector<CheckRecord> evidence_at(const json& o, const std::string& p, const char* k, Role role) {
  const json& a = array_at(o, p, k);
  std::vector<CheckRecord> out;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string path = join(p, k) + "[" + std::to_string(i) + "]";
    if (!a[i].is_object()) wrong_type(path, "an object", a[i]);
    CheckRecord c;
    c.site.role = role;
    c.site.tensor_name = string_at(a[i], path, "name");
    if (a[i].contains("step")) c.step = int64_at(a[i], path, "step");
    c.site.op = string_or_null_at(a[i], path, "op");
    c.dtype = dtype_at(a[i], path, "dtype");
    c.shape = shape_at(a[i], path, "shape");
    c.stats = stats_at(a[i], path, "stats");
    out.push_back(std::move(c));
  }
  return out;
}

Recommendation recommendation_at(const json& o, const std::string& p, const char* k) {
  const json& j = object_at(o, p, k);
  const std::string path = join(p, k);
  Recommendation r;
  r.headline = string_at(j, path, "headline");
  r.actions = strings_at(j, path, "actions");
  r.evidence = strings_at(j, path, "evidence");
  return r;
}

std::map<int64_t, double> points_at(const json& a, const std::string& path) {
  if (!a.is_array()) wrong_type(path, "an array of [step, value]", a);
  std::map<int64_t, double> out;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string at = path + "[" + std::to_string(i) + "]";
    if (!a[i].is_array() || a[i].size() != 2) throw FieldError("field '" + at + "': expected [step, value]");
    out[as_int64(a[i][0], at + "[0]")] = as_double(a[i][1], at + "[1]");
  }
  return out;
}

Phase phase_at(const json& o, const std::string& p, const char* k) {
  const std::string name = string_at(o, p, k);
  auto ph = phase_from_string(name);
  if (!ph) throw FieldError("field '" + join(p, k) + "': unknown phase \"" + name + "\"");
  return *ph;
}

Finding finding_at(const json& o, const std::string& p, const char* k) {
  const json& j = object_at(o, p, k);
  const std::string path = join(p, k);
  Finding f;
  f.found = bool_at(j, path, "found");
  const std::string kind = string_at(j, path, "kind");
  auto fk = fault_kind_from_string(kind);
  if (!fk) throw FieldError("field '" + path + ".kind': unknown fault kind \"" + kind + "\"");
  f.kind = *fk;
  if (j.contains("recommendation")) f.recommendation = recommendation_at(j, path, "recommendation");
  if (!f.found) return f;

  CheckRecord& origin = f.origin;
  origin.site.role = Role::Output;
  origin.step = int64_at(j, path, "step");  // the fault's step; the origin's own when located later
  if (j.contains("origin_step")) origin.step = int64_at(j, path, "origin_step");
  if (j.contains("first_seen") && !j["first_seen"].is_null()) {
    const json& fs = object_at(j, path, "first_seen");
    const std::string fp = join(path, "first_seen");
    CheckRecord s;
    s.step = int64_at(fs, fp, "step");
    s.site.phase = phase_at(fs, fp, "phase");
    s.site.module_path = string_at(fs, fp, "module_path");
    s.site.tensor_name = string_at(fs, fp, "tensor");
    s.dtype = dtype_at(fs, fp, "dtype");
    s.shape = shape_at(fs, fp, "shape");
    s.stats = stats_at(fs, fp, "stats");
    f.first_seen = s;
    if (j.contains("located_at_step") && !j["located_at_step"].is_null())
      f.located_step = int64_at(j, path, "located_at_step");
  }
  if (j.contains("relay")) f.relay = string_or_null_at(j, path, "relay");
  if (j.contains("op_source")) f.op_source = string_or_null_at(j, path, "op_source");
  if (j.contains("op_input_producers") && j["op_input_producers"].is_object())
    for (const auto& [k, v] : j["op_input_producers"].items())
      if (v.is_string()) f.op_input_producers[k] = v.get<std::string>();
  if (j.contains("backward") && !j["backward"].is_null()) {
    const json& b = object_at(j, path, "backward");
    const std::string bp = join(path, "backward");
    BackwardBirth birth;
    birth.seen_at = string_at(b, bp, "seen_at");
    birth.seen_tensor = string_at(b, bp, "seen_tensor");
    birth.node = string_or_null_at(b, bp, "node");
    birth.consumers = strings_at(b, bp, "consumers");
    f.backward = birth;
  }
  if (j.contains("op_pinned_at_step") && !j["op_pinned_at_step"].is_null())
    f.op_pinned_step = int64_at(j, path, "op_pinned_at_step");
  origin.site.phase = phase_at(j, path, "phase");
  origin.site.module_path = string_at(j, path, "module_path");
  origin.site.module_type = string_at(j, path, "module_type");
  f.op = origin.site.op = string_or_null_at(j, path, "op");
  f.kernels = origin.kernels = strings_at(j, path, "kernels");
  origin.site.tensor_name = string_at(j, path, "tensor");
  origin.dtype = dtype_at(j, path, "dtype");
  device_at(j, path, "device", &origin.device, &origin.device_index);
  origin.shape = shape_at(j, path, "shape");
  origin.seq = uint64_at(j, path, "seq");
  if (j.contains("ts_ns")) origin.ts_ns = int64_at(j, path, "ts_ns");
  origin.stats = stats_at(j, path, "stats");
  f.inputs = evidence_at(j, path, "inputs", Role::Input);
  f.params = evidence_at(j, path, "params", Role::Param);
  f.replay = evidence_at(j, path, "replay", Role::Replay);
  f.explanation = string_at(j, path, "explanation");
  f.recommendation = recommendation_at(j, path, "recommendation");
  return f;
}

void read_report(const json& j, Report* r) {
  if (!j.is_object()) wrong_type("(top level)", "an object", j);
  const int64_t version = int64_at(j, "", "nantrace_report_version");
  if (version != kReportVersion)
    throw FieldError("field 'nantrace_report_version': version " + std::to_string(version) + " is not supported (expected " +
                     std::to_string(kReportVersion) + ")");
  r->run_dir = string_at(j, "", "run_dir");
  r->rank = int32_at(j, "", "rank");
  r->world_size = int32_at(j, "", "world_size");
  r->finding = finding_at(j, "", "finding");

  const json& skips = array_at(j, "", "benign_skips");
  for (size_t i = 0; i < skips.size(); ++i) {
    const std::string path = "benign_skips[" + std::to_string(i) + "]";
    if (!skips[i].is_object()) wrong_type(path, "an object", skips[i]);
    ScalerSkip s;
    s.step = int64_at(skips[i], path, "step");
    s.scale_before = double_at(skips[i], path, "scale_before");
    s.scale_after = double_at(skips[i], path, "scale_after");
    s.first_site = string_at(skips[i], path, "site");
    r->benign_skips.push_back(s);
  }
  const json& warnings = array_at(j, "", "warnings");
  for (size_t i = 0; i < warnings.size(); ++i) {
    const std::string path = "warnings[" + std::to_string(i) + "]";
    if (!warnings[i].is_object()) wrong_type(path, "an object", warnings[i]);
    HeadroomWarning w;
    w.step = int64_at(warnings[i], path, "step");
    w.module_path = string_at(warnings[i], path, "module_path");
    w.dtype = dtype_at(warnings[i], path, "dtype");
    w.max_abs = double_at(warnings[i], path, "max_abs");
    w.binades_left = double_at(warnings[i], path, "binades_left");
    w.reason = string_at(warnings[i], path, "reason");
    r->warnings.push_back(w);
  }
  const json& series = object_at(j, "", "series");
  for (auto it = series.begin(); it != series.end(); ++it)
    r->series[it.key()] = points_at(it.value(), "series." + it.key());
  r->culprit_magnitude = points_at(field(j, "", "culprit_magnitude"), "culprit_magnitude");
  if (j.contains("culprit_dtype")) r->culprit_dtype = dtype_at(j, "", "culprit_dtype");
  if (j.contains("loss_blowup") && !j["loss_blowup"].is_null()) {
    const json& b = object_at(j, "", "loss_blowup");
    LossBlowup x;
    x.begin_step = int64_at(b, "loss_blowup", "begin_step");
    x.confirmed_step = int64_at(b, "loss_blowup", "confirmed_step");
    x.baseline = double_at(b, "loss_blowup", "baseline");
    x.level = double_at(b, "loss_blowup", "level");
    x.module = string_at(b, "loss_blowup", "module");
    x.module_jump = double_at(b, "loss_blowup", "module_jump");
    r->blowup = x;
  }
  if (j.contains("step_counter") && !j["step_counter"].is_null()) {
    const json& c = object_at(j, "", "step_counter");
    r->step_counter = string_at(c, "step_counter", "name");
    r->step_counter_offset = int64_at(c, "step_counter", "offset");
  }
  if (j.contains("evaluation") && !j["evaluation"].is_null()) {
    const json& e = object_at(j, "", "evaluation");
    CheckRecord c;
    c.site.phase = Phase::Evaluation;
    c.step = int64_at(e, "evaluation", "step");
    const std::string what = string_at(e, "evaluation", "what");
    if (what != "batch" && what != "output")
      throw FieldError("field 'evaluation.what': \"" + what + "\" is neither \"batch\" nor \"output\"");
    c.site.role = what == "batch" ? Role::Input : Role::Output;
    c.site.module_path = string_at(e, "evaluation", "module_path");
    c.site.module_type = string_at(e, "evaluation", "module_type");
    c.site.tensor_name = string_at(e, "evaluation", "tensor");
    c.site.op = string_or_null_at(e, "evaluation", "op");
    c.dtype = dtype_at(e, "evaluation", "dtype");
    c.shape = shape_at(e, "evaluation", "shape");
    c.stats = stats_at(e, "evaluation", "stats");
    r->evaluation = c;
    r->evaluation_nonfinite_checks = int64_at(e, "evaluation", "nonfinite_checks");
  }
  if (j.contains("skips_recovered") && !j["skips_recovered"].is_null())
    r->skips_recovered = bool_at(j, "", "skips_recovered");
  r->last_checkpoint_before_fault = string_or_null_at(j, "", "last_checkpoint_before_fault");
  if (j.contains("epoch") && !j["epoch"].is_null()) {
    const json& e = object_at(j, "", "epoch");
    EpochSpan s;
    s.epoch = int64_at(e, "epoch", "epoch");
    s.begin_step = int64_at(e, "epoch", "began_at_step");
    if (e.contains("batches_per_epoch") && !e["batches_per_epoch"].is_null())
      s.batches = int64_at(e, "epoch", "batches_per_epoch");
    r->fault_epoch = s;
  }
  if (j.contains("checkpoints")) {
    const json& a = field(j, "", "checkpoints");
    if (!a.is_array()) throw FieldError("field 'checkpoints': not an array");
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string p = "checkpoints[" + std::to_string(i) + "]";
      const json& c = a[i];
      CheckpointSave s;
      s.path = string_at(c, p, "path");
      s.step = int64_at(c, p, "step");
      s.tensors = c.contains("tensors") && !c["tensors"].is_null() ? int64_at(c, p, "tensors") : -1;
      s.nonfinite_tensors =
          c.contains("nonfinite_tensors") && !c["nonfinite_tensors"].is_null() ? int64_at(c, p, "nonfinite_tensors") : -1;
      s.nonfinite_names = strings_at(c, p, "nonfinite_names");
      s.after_fault = bool_at(c, p, "after_fault");
      s.pattern = string_or_null_at(c, p, "pattern");
      s.heads_pattern = bool_at(c, p, "heads_pattern");
      s.resumed_from = bool_at(c, p, "resumed_from");
      r->checkpoints.push_back(std::move(s));
    }
    if (j.contains("checkpoints_dropped")) r->checkpoints_dropped = int64_at(j, "", "checkpoints_dropped");
  }
  const json& env = object_at(j, "", "environment");
  for (auto it = env.begin(); it != env.end(); ++it) r->environment[it.key()] = as_string(it.value(), "environment." + it.key());
  const json& summary = object_at(j, "", "summary");
  r->steps_seen = int64_at(summary, "summary", "steps");
  r->checks = uint64_at(summary, "summary", "checks");
  r->nonfinite_checks = uint64_at(summary, "summary", "nonfinite_checks");
  r->notes = strings_at(j, "", "notes");
}

}  // namespace

json report_to_json(const Report& r) {
  json series = json::object();
  for (const auto& [name, points] : r.series) series[name] = points_to_json(points);
  json skips = json::array();
  for (const auto& s : r.benign_skips)
    skips.push_back(json{{"step", s.step},
                         {"scale_before", strict_json::number(s.scale_before)},
                         {"scale_after", strict_json::number(s.scale_after)},
                         {"site", s.first_site}});
  json warnings = json::array();
  for (const auto& w : r.warnings)
    warnings.push_back(json{{"step", w.step},
                            {"module_path", w.module_path},
                            {"dtype", to_string(w.dtype)},
                            {"max_abs", strict_json::number(w.max_abs)},
                            {"binades_left", strict_json::number(w.binades_left)},
                            {"reason", w.reason}});
  json env = json::object();
  // The caller redacts already; a second pass costs nothing and a leaked token costs a lot.
  for (const auto& [k, v] : r.environment) env[k] = redact(v);

  return json{{"nantrace_report_version", kReportVersion},
              {"run_dir", r.run_dir},
              {"rank", r.rank},
              {"world_size", r.world_size},
              {"finding", finding_to_json(r.finding)},
              {"benign_skips", skips},
              {"warnings", warnings},
              {"series", series},
              {"culprit_magnitude", points_to_json(r.culprit_magnitude)},
              {"culprit_dtype", to_string(r.culprit_dtype)},
              {"loss_blowup", r.blowup ? json{{"begin_step", r.blowup->begin_step},
                                              {"confirmed_step", r.blowup->confirmed_step},
                                              {"baseline", strict_json::number(r.blowup->baseline)},
                                              {"level", strict_json::number(r.blowup->level)},
                                              {"module", r.blowup->module},
                                              {"module_jump", strict_json::number(r.blowup->module_jump)}}
                                       : json(nullptr)},
              {"skips_recovered", r.skips_recovered ? json(*r.skips_recovered) : json(nullptr)},
              {"evaluation", r.evaluation ? json{{"step", r.evaluation->step},
                                                 {"what", r.evaluation->site.role == Role::Input ? "batch" : "output"},
                                                 {"module_path", r.evaluation->site.module_path},
                                                 {"module_type", r.evaluation->site.module_type},
                                                 {"tensor", r.evaluation->site.tensor_name},
                                                 {"op", op_or_null(r.evaluation->site.op)},
                                                 {"dtype", to_string(r.evaluation->dtype)},
                                                 {"shape", r.evaluation->shape},
                                                 {"stats", stats_to_json(r.evaluation->stats)},
                                                 {"nonfinite_checks", r.evaluation_nonfinite_checks}}
                                          : json(nullptr)},
              {"step_counter", r.step_counter.empty() ? json(nullptr)
                                                      : json{{"name", r.step_counter}, {"offset", r.step_counter_offset}}},
              {"last_checkpoint_before_fault", op_or_null(r.last_checkpoint_before_fault)},
              {"epoch", r.fault_epoch ? json{{"epoch", r.fault_epoch->epoch},
                                              {"began_at_step", r.fault_epoch->begin_step},
                                              {"batches_per_epoch", r.fault_epoch->batches ? json(*r.fault_epoch->batches)
                                                                                           : json(nullptr)}}
                                        : json(nullptr)},
              {"checkpoints", checkpoints_to_json(r.checkpoints)},
              {"checkpoints_dropped", r.checkpoints_dropped},
              {"environment", env},
              {"summary", {{"steps", r.steps_seen}, {"checks", r.checks}, {"nonfinite_checks", r.nonfinite_checks}}},
              {"notes", r.notes}};
}

std::string report_to_json_text(const Report& r) { return strict_json::dump(report_to_json(r), 2) + "\n"; }

bool report_from_json(const json& j, Report* out, std::string* error) {
  try {
    Report r;
    read_report(j, &r);
    *out = std::move(r);
    return true;
  } catch (const FieldError& e) {
    if (error) *error = e.what();
  } catch (const std::exception& e) {  // nlohmann type errors we did not foresee
    if (error) *error = std::string("malformed report: ") + e.what();
  }
  return false;
}

bool report_from_json_text(const std::string& text, Report* out, std::string* error) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    if (error)
      *error = "not valid JSON (truncated or corrupted?) at byte " + std::to_string(e.byte) + " of " +
               std::to_string(text.size());
    return false;
  } catch (const json::exception& e) {  // e.g. out_of_range 406: a number like 6E504
    if (error) *error = std::string("not valid JSON: ") + e.what();
    return false;
  }
  return report_from_json(j, out, error);
}

}  // namespace nantrace
