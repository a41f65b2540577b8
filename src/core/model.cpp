// Stable machine names of the model's enumerations. These strings appear in report.json and
// trace args and are read back by `nantrace merge`, so they never change once released.
#include "core/model.h"

#include <cstring>

namespace nantrace {

namespace {

template <class E>
struct NamedValue {
  E value;
  const char* name;
};

constexpr NamedValue<DType> kDTypeNames[] = {
    {DType::F16, "float16"}, {DType::BF16, "bfloat16"}, {DType::F32, "float32"}, {DType::F64, "float64"}};

constexpr NamedValue<Phase> kPhaseNames[] = {
    {Phase::Unknown, "unknown"},          {Phase::Input, "input"},
    {Phase::Forward, "forward"},          {Phase::Loss, "loss"},
    {Phase::Backward, "backward"},        {Phase::Unscale, "unscale"},
    {Phase::OptimizerGrad, "optimizer_grad"}, {Phase::OptimizerParam, "optimizer_param"},
    {Phase::Evaluation, "evaluation"}};

constexpr NamedValue<Role> kRoleNames[] = {
    {Role::Output, "output"}, {Role::Input, "input"}, {Role::Param, "param"}, {Role::Replay, "replay"}};

struct FaultKindNames {
  FaultKind value;
  const char* name;   // machine name
  const char* words;  // for people
};
constexpr FaultKindNames kFaultKindNames[] = {
    {FaultKind::None, "none", "no fault"},
    {FaultKind::Fp16Overflow, "fp16_overflow", "fp16 overflow"},
    {FaultKind::Overflow, "overflow", "floating-point overflow"},
    {FaultKind::InvalidOp, "invalid_op", "invalid operation (NaN from finite inputs)"},
    {FaultKind::DivisionByZero, "division_by_zero", "division by zero"},
    {FaultKind::BadInput, "bad_input", "bad input data"},
    {FaultKind::Divergence, "divergence", "training divergence"},
    {FaultKind::OptimizerEpsUnderflow, "optimizer_eps_underflow", "optimizer eps underflow"},
    {FaultKind::LossScaleCollapse, "loss_scale_collapse", "loss-scale collapse"},
    {FaultKind::Propagated, "propagated", "propagated non-finite value"},
    {FaultKind::HardwarePrecision, "hardware_precision", "hardware precision limit"},
    {FaultKind::BornInModule, "born_in_module", "non-finite value born in code whose op was not pinned (overflow or invalid operation)"},
    {FaultKind::NotLocated, "not_located", "non-finite value whose origin was not checked"},
    {FaultKind::BornInBackward, "born_in_backward", "non-finite gradient born in backward (a gradient formula at a value it cannot take)"},
};

template <class E, size_t N>
const char* name_of(const NamedValue<E> (&table)[N], E v, const char* fallback) {
  for (const auto& e : table)
    if (e.value == v) return e.name;
  return fallback;
}

template <class E, size_t N>
std::optional<E> value_of(const NamedValue<E> (&table)[N], const std::string& s) {
  for (const auto& e : table)
    if (s == e.name) return e.value;
  return std::nullopt;
}

}  // namespace

const char* to_string(DType d) { return name_of(kDTypeNames, d, "unknown_dtype"); }
const char* to_string(Phase p) { return name_of(kPhaseNames, p, "unknown"); }
const char* to_string(Role r) { return name_of(kRoleNames, r, "unknown_role"); }

std::optional<Phase> phase_from_string(const std::string& s) { return value_of(kPhaseNames, s); }

std::optional<DType> dtype_from_string(const std::string& s) {
  // Frontends may hand over torch's spelling ("torch.float16") or the short forms.
  std::string name = s;
  if (name.rfind("torch.", 0) == 0) name = name.substr(6);
  if (auto d = value_of(kDTypeNames, name)) return d;
  if (name == "half" || name == "fp16") return DType::F16;
  if (name == "bf16") return DType::BF16;
  if (name == "float" || name == "fp32") return DType::F32;
  if (name == "double" || name == "fp64") return DType::F64;
  return std::nullopt;
}

const char* to_string(FaultKind k) {
  for (const auto& e : kFaultKindNames)
    if (e.value == k) return e.name;
  return "none";
}

const char* describe(FaultKind k) {
  for (const auto& e : kFaultKindNames)
    if (e.value == k) return e.words;
  return "unknown fault kind";
}

std::optional<FaultKind> fault_kind_from_string(const std::string& s) {
  for (const auto& e : kFaultKindNames)
    if (s == e.name) return e.value;
  return std::nullopt;
}

bool module_path_encloses(const std::string& outer, const std::string& inner) {
  return !outer.empty() && inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
         (inner[outer.size()] == '.' || inner[outer.size()] == '/');
}

std::string describe(const Finding& f) {
  if (f.kind == FaultKind::Fp16Overflow && f.origin.dtype == DType::BF16) return "bf16 overflow";
  return describe(f.kind);
}

}  // namespace nantrace
