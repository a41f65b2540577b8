#include "cuda/demangle.h"

#include <cxxabi.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace nantrace::cuda {

std::string demangle(const char* name) {
  if (!name) return std::string();
  if (std::strncmp(name, "_Z", 2) != 0) return name;
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || !out) {
    std::free(out);
    return name;
  }
  std::string s(out);
  std::free(out);
  return s;
}

namespace {

struct Token {
  const char* text;
  PrecisionHint hint;
  bool word;  // must not be glued to letters/digits on either side (short library tags)
};

// Checked in order: bf16 markers before fp16 ones, because "bf16" contains "f16".
const Token kTokens[] = {
    {"c10::BFloat16", PrecisionHint::BF16, false},
    {"N3c108BFloat16E", PrecisionHint::BF16, false},  // mangled c10::BFloat16
    {"__nv_bfloat16", PrecisionHint::BF16, false},
    {"cutlass::bfloat16_t", PrecisionHint::BF16, false},
    {"bfloat16", PrecisionHint::BF16, false},
    {"bf16", PrecisionHint::BF16, false},
    {"c10::Half", PrecisionHint::F16, false},
    {"N3c104HalfE", PrecisionHint::F16, false},  // mangled c10::Half
    {"cutlass::half_t", PrecisionHint::F16, false},
    {"__half", PrecisionHint::F16, false},
    {"half_t", PrecisionHint::F16, false},
    {"fp16", PrecisionHint::F16, false},
    {"f16", PrecisionHint::F16, true},
    // cuDNN/cuBLAS tensor-core tags: h884/h1688/h16816 (fp16 math), s884/s1688/s16816
    // (fp16 inputs, fp32 accumulation).
    {"h884", PrecisionHint::F16, false},
    {"h1688", PrecisionHint::F16, false},
    {"h16816", PrecisionHint::F16, false},
    {"s884", PrecisionHint::F16, false},
    {"s1688", PrecisionHint::F16, false},
    {"s16816", PrecisionHint::F16, false},
};

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// "f16" as its own tag: "f16_f32", "_f16f16": allow digits/underscores around, not letters
// that would make it part of a longer identifier such as "buf16".
bool standalone(const std::string& s, size_t at, size_t len) {
  const bool left_ok = at == 0 || !std::isalpha(static_cast<unsigned char>(s[at - 1]));
  const bool right_ok = at + len >= s.size() || !is_alnum(s[at + len]) ||
                        std::isdigit(static_cast<unsigned char>(s[at + len])) ||
                        s[at + len] == 'f';
  return left_ok && right_ok;
}

}  // namespace

KernelPrecision classify_kernel_precision(const std::string& name) {
  KernelPrecision r;
  for (const Token& t : kTokens) {
    const size_t len = std::strlen(t.text);
    for (size_t at = name.find(t.text); at != std::string::npos; at = name.find(t.text, at + 1)) {
      if (t.word && !standalone(name, at, len)) continue;
      r.hint = t.hint;
      r.evidence = t.text;
      return r;
    }
  }
  return r;
}

const char* to_string(PrecisionHint h) {
  switch (h) {
    case PrecisionHint::F16: return "float16";
    case PrecisionHint::BF16: return "bfloat16";
    case PrecisionHint::Unknown: break;
  }
  return "unknown";
}

}  // namespace nantrace::cuda
