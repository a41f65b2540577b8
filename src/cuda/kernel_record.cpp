#include "cuda/kernel_record.h"

#include <cupti.h>

#include <cstring>

namespace nantrace::cuda {
namespace {

// Offsets of the fields read, identical from CUpti_ActivityKernel4 to 13 (checked with
// offsetof against the CUPTI 13.0, 13.2 and 13.4 headers; the static_asserts below keep
// checking them against whatever toolkit this is built with).
constexpr size_t kOffKind = 0, kOffStart = 16, kOffEnd = 24, kOffDevice = 40, kOffContext = 44,
                 kOffStream = 48, kOffCorrelation = 92, kOffName = 104;

// sizeof(CUpti_ActivityKernelN): 9 and 10 from CUDA 13.0's headers, 11 from 13.2's,
// 12 and 13 from 13.4's (each adds fields at the end).
constexpr size_t kSize9 = 208, kSize10 = 216, kSize11 = 224, kSize12 = 232, kSize13 = 248;

#define NT_CHECK_LAYOUT(T)                                              \
  static_assert(offsetof(T, start) == kOffStart, #T " start");          \
  static_assert(offsetof(T, end) == kOffEnd, #T " end");                \
  static_assert(offsetof(T, deviceId) == kOffDevice, #T " deviceId");   \
  static_assert(offsetof(T, contextId) == kOffContext, #T " contextId"); \
  static_assert(offsetof(T, streamId) == kOffStream, #T " streamId");   \
  static_assert(offsetof(T, correlationId) == kOffCorrelation, #T " correlationId"); \
  static_assert(offsetof(T, name) == kOffName, #T " name");

NT_CHECK_LAYOUT(CUpti_ActivityKernel9)
static_assert(sizeof(CUpti_ActivityKernel9) == kSize9, "Kernel9 size");
NT_CHECK_LAYOUT(CUpti_ActivityKernel10)
static_assert(sizeof(CUpti_ActivityKernel10) == kSize10, "Kernel10 size");

template <class T>
T read_at(const void* base, size_t off) {
  T v;
  std::memcpy(&v, static_cast<const char*>(base) + off, sizeof v);
  return v;
}

}  // namespace

std::optional<KernelRecordLayout> layout_for_record_version(int version) {
  KernelRecordLayout l;
  l.version = version;
  switch (version) {
    case 9: l.size = kSize9; break;
    case 10: l.size = kSize10; break;
    case 11: l.size = kSize11; break;
    case 12: l.size = kSize12; break;
    case 13: l.size = kSize13; break;
    default: return std::nullopt;
  }
  l.off_kind = kOffKind;
  l.off_start = kOffStart;
  l.off_end = kOffEnd;
  l.off_device = kOffDevice;
  l.off_context = kOffContext;
  l.off_stream = kOffStream;
  l.off_correlation = kOffCorrelation;
  l.off_name = kOffName;
  return l;
}

std::optional<KernelRecordLayout> layout_for_cupti_version(uint32_t v) {
  if (v >= 130000) {
    const uint32_t minor = (v / 100) % 100;
    if (v / 10000 == 13) {
      if (minor == 0) return layout_for_record_version(10);
      if (minor <= 2) return layout_for_record_version(11);
      if (minor == 3) return layout_for_record_version(12);
    }
    // 13.4 and anything newer: the newest layout known; the fields read have not moved
    // since Kernel4.
    return layout_for_record_version(13);
  }
  if (v >= 19) return layout_for_record_version(9);  // CUDA 12.0 .. 12.9 (API 19..28)
  return std::nullopt;                                // CUDA 11 and older: unsupported
}

std::string describe_cupti_version(uint32_t v) {
  if (v >= 130000) {
    return std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + " (API " +
           std::to_string(v) + ")";
  }
  if (v >= 19) return "12.x (API " + std::to_string(v) + ")";
  return "API " + std::to_string(v) + " (before CUDA 12)";
}

KernelFields decode_kernel_record(const void* record, const KernelRecordLayout& l) {
  KernelFields f;
  f.kind = read_at<uint32_t>(record, l.off_kind);
  f.start = read_at<uint64_t>(record, l.off_start);
  f.end = read_at<uint64_t>(record, l.off_end);
  f.device = read_at<uint32_t>(record, l.off_device);
  f.context = read_at<uint32_t>(record, l.off_context);
  f.stream = read_at<uint32_t>(record, l.off_stream);
  f.correlation_id = read_at<uint32_t>(record, l.off_correlation);
  f.name = read_at<const char*>(record, l.off_name);
  return f;
}

}  // namespace nantrace::cuda
