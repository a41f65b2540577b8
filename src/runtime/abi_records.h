// The C ABI's structs (include/nantrace/nantrace.h) turned into the core's records, in one
// place: what a frontend hands nantrace_check becomes a CheckRecord and the view the scanner
// reads. Pointers are copied into owned strings; nothing here keeps an ABI pointer.
#pragma once

#include "core/model.h"
#include "core/scanner.h"
#include "nantrace/nantrace.h"

namespace nantrace {

// True when the tensor is one the scanner can read (a known dtype, 0..kMaxScanDims dims).
bool abi_tensor_supported(const nt_tensor& t);

// The record of a check: site, dtype, device and shape (step, time, thread and stats are the
// caller's to fill).
CheckRecord check_record_from_abi(const nt_site& site, const nt_tensor& t);

// The scanner's view of the tensor's memory.
TensorView tensor_view_from_abi(const nt_tensor& t);

}  // namespace nantrace
