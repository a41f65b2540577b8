// Kernel names: demangling and a precision hint read from the name. The hint is only a
// hint: cuBLAS nvjet_* and many others show no dtype at all; the tensor's dtype is the truth.
#pragma once

#include <string>

namespace nantrace::cuda {

// abi::__cxa_demangle; returns the input unchanged when it is not a mangled C++ name.
std::string demangle(const char* name);

enum class PrecisionHint { Unknown, F16, BF16 };

struct KernelPrecision {
  PrecisionHint hint = PrecisionHint::Unknown;
  std::string evidence;  // the token that decided ("c10::Half", "h884", ...), "" if none
};

// Looks for half-precision markers in a (demangled or mangled) kernel name.
KernelPrecision classify_kernel_precision(const std::string& name);
const char* to_string(PrecisionHint h);

}  // namespace nantrace::cuda
