// Records that flow through the core: what was checked, where, and what it held.
// Plain data only; no CUDA, no Python. Shared by the monitor, the analyzer and the writers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/loss_watch.h"
#include "nantrace/nantrace.h"

namespace nantrace {

enum class DType : int32_t { F16 = NT_DTYPE_F16, BF16 = NT_DTYPE_BF16, F32 = NT_DTYPE_F32, F64 = NT_DTYPE_F64 };
enum class Phase : int32_t {
  Unknown = NT_PHASE_UNKNOWN,
  Input = NT_PHASE_INPUT,
  Forward = NT_PHASE_FORWARD,
  Loss = NT_PHASE_LOSS,
  Backward = NT_PHASE_BACKWARD,
  Unscale = NT_PHASE_UNSCALE,
  OptimizerGrad = NT_PHASE_OPTIMIZER_GRAD,
  OptimizerParam = NT_PHASE_OPTIMIZER_PARAM,
  Evaluation = NT_PHASE_EVALUATION,
};
enum class Role : int32_t { Output = NT_ROLE_OUTPUT, Input = NT_ROLE_INPUT, Param = NT_ROLE_PARAM, Replay = NT_ROLE_REPLAY };
enum class Device : int32_t { CPU = NT_DEVICE_CPU, CUDA = NT_DEVICE_CUDA };

using TensorStats = nt_stats;  // plain C struct from the ABI; same meaning everywhere

const char* to_string(DType d);
const char* to_string(Phase p);

// True when module path `outer` is a proper ancestor of `inner` ("Net/enc" of "Net/enc.pre"
// or "Net/enc/x"): the one definition (the Python side's is _capture.encloses, the same rule).
bool module_path_encloses(const std::string& outer, const std::string& inner);
const char* to_string(Role r);
// Stable machine names used in JSON ("forward", "optimizer_grad", ...).
std::optional<Phase> phase_from_string(const std::string& s);
std::optional<DType> dtype_from_string(const std::string& s);

inline bool is_half(DType d) { return d == DType::F16 || d == DType::BF16; }
inline bool has_nonfinite(const TensorStats& s) {
  return s.nan_count + s.posinf_count + s.neginf_count > 0;
}

// Where a check happened.
struct Site {
  Phase phase = Phase::Unknown;
  Role role = Role::Output;
  std::string module_path;  // "TinyVits/dec.ups.1" ("" = none)
  std::string module_type;  // "ConvTranspose1d"
  std::string op;           // "aten::exp" ("" at module level)
  std::string tensor_name;  // "output[0]", "grad_output[0]", "weight"
};

// One tensor check, in program order.
struct CheckRecord {
  uint64_t seq = 0;       // program order, taken when the check was enqueued
  int64_t step = 0;       // training step (1-based; 0 = before the first step)
  int64_t ts_ns = 0;      // CLOCK_REALTIME ns when enqueued (same clock as CUPTI)
  uint32_t tid = 0;       // OS thread id of the caller
  Site site;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  int32_t device_index = 0;
  std::vector<int64_t> shape;
  TensorStats stats{};
  bool checked = true;           // false: skipped (skip_reason says why)
  std::string skip_reason;
  std::vector<std::string> kernels;  // demangled names of the kernels that wrote it (GPU)
};

// A GPU kernel, from CUPTI launch callbacks + activity records.
struct KernelRecord {
  uint64_t correlation_id = 0;
  std::string name;  // demangled
  int32_t device = 0;
  uint64_t stream = 0;
  int64_t start_ns = 0, end_ns = 0;  // GPU timestamps (CLOCK_REALTIME ns)
  int64_t launch_ns = 0;             // CPU timestamp of the launch
  uint32_t launch_tid = 0;
  int64_t step = 0;
  std::string module_path;  // scope of the launching thread
  std::string op;
};

struct ScalarRecord {
  int64_t step = 0;
  int64_t ts_ns = 0;
  std::string name;  // "loss_scale", "lr", "loss", "grad_norm"
  double value = 0;
};

struct EventRecord {
  int64_t step = 0;
  int64_t ts_ns = 0;
  int32_t kind = NT_EVENT_NOTE;  // nt_event_kind
  std::string name;
  std::string detail_json;  // JSON object text or ""
};

// The taxonomy of DESIGN.md section 2.
enum class FaultKind : int32_t {
  None = 0,
  Fp16Overflow,        // +-inf from finite inputs in a half-precision tensor
  Overflow,            // +-inf from finite inputs in fp32/fp64
  InvalidOp,           // NaN from finite inputs (log/sqrt of <=0, 0/0, inf-inf, 0*inf)
  DivisionByZero,      // inf from a division / log(0)-style pole on finite inputs
  BadInput,            // the batch itself holds NaN/Inf
  Divergence,          // NaN first in the optimizer update / parameters after growth
  OptimizerEpsUnderflow,
  LossScaleCollapse,   // GradScaler skipping step after step, scale falling
  Propagated,          // inputs already non-finite
  HardwarePrecision,
  BornInModule,        // NaN without Inf out of a half-precision module with finite inputs, op not pinned
  NotLocated,          // first seen where the code before it was not checked, and never located
  BornInBackward,      // NaN/Inf made by a backward (custom Function, a derivative's pole) from a finite gradient
};
const char* to_string(FaultKind k);          // "fp16_overflow", ...
const char* describe(FaultKind k);           // "fp16 overflow", human words
std::optional<FaultKind> fault_kind_from_string(const std::string& s);

struct Recommendation {
  std::string headline;              // one sentence
  std::vector<std::string> actions;  // concrete steps, most specific first
  std::vector<std::string> evidence; // why: measured facts behind the advice
};

// A loss-scaler skip that the scaler handled (benign) - never a fault.
struct ScalerSkip {
  int64_t step = 0;
  double scale_before = 0, scale_after = 0;
  std::string first_site;  // where the inf appeared in scaled gradients
};

struct HeadroomWarning {
  int64_t step = 0;
  std::string module_path;
  DType dtype = DType::F16;
  double max_abs = 0;
  double binades_left = 0;
  std::string reason;  // "within 2x of max" / "trend predicts overflow in N steps"
};

// What the analysis concluded.
// A gradient first seen non-finite at one module's output, followed back through the autograd
// graph to the backward that made it: what consumed that output, whose own output's gradient
// was finite.
struct BackwardBirth {
  std::string seen_at;                 // the module whose output's gradient first showed it
  std::string seen_tensor;             // that gradient's name ("grad_output")
  std::string node;                    // the grad_fn that made it ("MyFuncBackward"), when one node is known
  std::vector<std::string> consumers;  // what consumed seen_at's output: module paths, "the loss computation"
};

struct Finding {
  bool found = false;
  FaultKind kind = FaultKind::None;
  CheckRecord origin;                  // the first non-finite check in program order
  std::vector<CheckRecord> inputs;     // evidence: the origin site's inputs
  std::vector<CheckRecord> params;     // evidence: the origin module's parameters
  std::vector<CheckRecord> replay;     // op outputs from re-running the culprit
  std::string op;                      // culprit op if known ("aten::exp")
  std::vector<std::string> kernels;    // culprit kernels if known
  std::string explanation;             // why this kind: the rule that fired
  Recommendation recommendation;
  // Set when the first non-finite value was seen where the code before it was not checked (a
  // loss on a step whose module checks were sampled out) and the origin was located at a
  // later recurrence: `first_seen` is that first sighting (its step is the fault's step),
  // `origin` the record where it was located (its own step, located_step).
  std::optional<CheckRecord> first_seen;
  int64_t located_step = -1;
  // The step whose checks pinned `op`, when not the origin's own moment (op-level checks
  // inside the culprit at a recurrence, or a replay of inputs captured there); -1 otherwise.
  int64_t op_pinned_step = -1;
  // Set when the value was born in backward and followed back to the backward that made it:
  // `origin.site` then names that module ("" = the loss computation).
  std::optional<BackwardBirth> backward;
  // Set when the value was followed back into the enclosing module's own code: the module whose
  // output first showed it (the origin's counts are of that output).
  std::string relay;
  // How `op` and the `replay` records were had: "replay" (the module re-run on captured inputs),
  // "op_level" (op-level checks at a recurrence), "graph" (read from the non-finite value's
  // autograd graph, nothing re-run); "" when no op was pinned.
  std::string op_source;
  // From the graph: the op that made each input of `op` ("self" -> "aten::_softmax"), where known.
  std::map<std::string, std::string> op_input_producers;
  // The fault's step: when the first non-finite value was seen.
  int64_t step() const { return first_seen ? first_seen->step : origin.step; }
};

// The finding's kind in words, with the dtype it concerns: a half-precision overflow of a
// bfloat16 tensor is a "bf16 overflow", not an "fp16 overflow".
std::string describe(const Finding& f);

// One torch.save to a file during the run.
struct CheckpointSave {
  std::string path;
  int64_t step = 0;                          // the training step it was saved in
  int64_t tensors = -1;                      // floating tensors it holds (-1: not counted)
  int64_t nonfinite_tensors = -1;            // of them, those holding NaN/Inf (-1: not counted)
  std::vector<std::string> nonfinite_names;  // the first few of those
  bool after_fault = false;                  // written after the fault was seen
  std::string pattern;                       // its numbered family ("logs/G_*.pth"), when named so
  bool heads_pattern = false;                // it was the newest of that family when written
  bool resumed_from = false;                 // the script resumes from the newest of that family
  // Not to resume from: it holds NaN/Inf, or it came after the fault and was not counted.
  bool poisoned() const { return nonfinite_tensors > 0 || (after_fault && nonfinite_tensors < 0); }
};

// The pass over the training DataLoader a step belongs to (this run's epochs, from 1).
struct EpochSpan {
  int64_t epoch = 0;
  int64_t begin_step = 0;           // the step that began it
  std::optional<int64_t> batches;   // the loader's length, when known
};

// Everything the report shows.
struct Report {
  Finding finding;
  std::vector<ScalerSkip> benign_skips;
  std::vector<HeadroomWarning> warnings;
  std::map<std::string, std::string> environment;  // redacted
  // Per-step histories (step -> value) for the evidence section.
  std::map<std::string, std::map<int64_t, double>> series;  // "loss_scale", "grad_norm", "loss", ...
  std::map<int64_t, double> culprit_magnitude;  // largest finite |x| of the culprit's outputs per step, up to the fault
  DType culprit_dtype = DType::F32;              // the dtype of those outputs
  std::string last_checkpoint_before_fault;  // the last clean checkpoint saved before the fault
  std::vector<CheckpointSave> checkpoints;   // every save (the most recent, bounded)
  int64_t checkpoints_dropped = 0;           // older saves not listed
  int64_t steps_seen = 0;
  uint64_t checks = 0;
  uint64_t nonfinite_checks = 0;
  int32_t rank = -1, world_size = 1;
  std::string run_dir;
  std::vector<std::string> notes;  // degraded features, skipped checks, etc.
  std::optional<LossBlowup> blowup;     // the loss jumped orders of magnitude and stayed, without NaN
  // The first non-finite value of an evaluation forward (a model in eval mode under no_grad):
  // its own finding, never the training fault. Its step is the training step it followed.
  std::optional<CheckRecord> evaluation;
  int64_t evaluation_nonfinite_checks = 0;
  std::optional<bool> skips_recovered;  // after GradScaler's skips the loss came back (nullopt: unknown)
  // The script's own step counter, when its trainer is known: at nantrace's step N it reads
  // N + step_counter_offset (GPT-SoVITS's 0-based global_step: offset -1).
  std::string step_counter;
  int64_t step_counter_offset = 0;
  std::optional<EpochSpan> fault_epoch;  // the epoch of the fault's step, when a DataLoader showed it
};

}  // namespace nantrace
