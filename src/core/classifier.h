// Decides the kind of a fault from the origin check and its evidence: the rules of the
// taxonomy in DESIGN.md section 2, each with the sentence that explains why it fired.
#pragma once

#include <string>
#include <vector>

#include "core/model.h"

namespace nantrace {

struct FaultEvidence {
  const CheckRecord* origin = nullptr;
  std::vector<CheckRecord> inputs;  // inputs of the origin site (module or op)
  std::vector<CheckRecord> params;  // parameters of the origin module
  std::vector<CheckRecord> replay;  // replayed op records, in order (outputs and their inputs)
  int scaler_skips_from_origin = 0; // consecutive GradScaler skips starting at the origin step
  bool trained_before_origin = false;  // an optimizer update succeeded before the origin step
  double growth = 1.0;              // growth of magnitudes / grad norm over recent steps (x)
  bool root_module = false;         // origin module is a top-level model
  const BackwardBirth* backward = nullptr;  // the backward gradient was followed to what made it
  // The largest update-to-weight ratio of the optimizer updates just before the fault's step
  // (||update|| / ||weights|| of a parameter group), and the step it was measured at (-1: none).
  double update_ratio = 0;
  int64_t update_ratio_step = -1;
  // The op records come from the autograd graph of the non-finite tensor (nothing re-run):
  // the node read and, when no op was pinned there, why.
  bool graph = false;
  std::string graph_node, graph_status, graph_reason;
};

// An update that moved the weights by a tenth of their norm or more in one step: about 100x
// what Adam usually does (~1e-3). After one, a non-finite value or an overflow is divergence,
// with or without a history of growth.
constexpr double kDivergentUpdateRatio = 0.1;
constexpr double kTypicalUpdateRatio = 1e-3;

struct Classification {
  FaultKind kind = FaultKind::None;
  std::string op;                    // culprit op ("aten::exp") when pinned
  std::vector<CheckRecord> op_inputs;// inputs of the culprit op (from the replay)
  const CheckRecord* op_record = nullptr;
  std::string explanation;
};

// An update-to-weight ratio in words: "38 % of their norm", "4.2x their norm"; the number
// alone to three digits ("345").
std::string update_ratio_text(double ratio);
std::string ratio_number(double v);

// "aten::exp_" / "aten.exp.default" -> "exp"
std::string op_base_name(const std::string& op);

Classification classify_fault(const FaultEvidence& e);

}  // namespace nantrace
