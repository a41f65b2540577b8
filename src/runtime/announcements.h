// The lines nantrace prints on stderr about a run's finding, worded in one place (the report
// and the trace say the same in their own forms).
#pragma once

#include <string>

#include "core/headroom.h"
#include "core/model.h"

namespace nantrace {
namespace announce {

// "step 5, forward, Net/enc (Conv1d), aten::exp, output float16: 3 NaN, 1 +Inf, 0 -Inf of 64"
std::string site(const CheckRecord& r);
// "first non-finite value: <site>"
std::string first_nonfinite(const CheckRecord& origin);
// "early warning at step 9: Net/enc float16 output reaches |x| = 3e4 (1.2 binades below the max): <why>"
std::string early_warning(const HeadroomWarning& w);
// "finding: fp16 overflow at step 16 (forward) in Net/dec, op aten::add", or for no fault
// the headline itself after "finding: ".
std::string finding(const Finding& f);
// "fix: <the recommendation's headline>"
// A recurrence located the origin of a value first seen where nothing before it was checked.
std::string origin_located(const Finding& f);
// The origin moved after it was first announced (followed back into an enclosing module's code).
std::string origin_moved(const CheckRecord& seen, const Finding& f);
// A gradient followed back to the backward that made it: what was seen first, and where it was born.
std::string backward_birth(const Finding& f);
// The first non-finite value of an evaluation forward (never the training fault).
std::string evaluation(const CheckRecord& e, bool training_fault_known);
// The loss jumped orders of magnitude and stayed (LossWatch), with no NaN.
std::string loss_blowup(const LossBlowup& b);
std::string fix(const Finding& f);
// The run's first poisoned checkpoint: "checkpoint logs/G_5.pth (step 5) holds NaN/Inf in 770 of 776 tensors: do not resume from it"
std::string poisoned_checkpoint(const CheckpointSave& c);

}  // namespace announce
}  // namespace nantrace
