// Decoding CUPTI kernel activity records without trusting one compile-time struct: the
// record layout depends on the libcupti loaded at run time (CUpti_ActivityKernel9 for 12.x,
// 10 for 13.0, 11 for 13.1/13.2, 12 for 13.3, 13 for 13.4+). The fields nantrace reads sit
// at offsets every layout since Kernel4 shares; the layout table keeps them per version
// anyway, so a future layout that moves a field is one table row, and tests build
// synthetic buffers from the table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace nantrace::cuda {

struct KernelRecordLayout {
  int version = 0;        // N of CUpti_ActivityKernelN
  size_t size = 0;        // sizeof(CUpti_ActivityKernelN)
  size_t off_kind = 0;
  size_t off_start = 0;
  size_t off_end = 0;
  size_t off_device = 0;
  size_t off_context = 0;
  size_t off_stream = 0;
  size_t off_correlation = 0;
  size_t off_name = 0;
};

// Layout the loaded CUPTI writes, chosen from cuptiGetVersion (12.x reports 19..28,
// 13.x and later report xxyyzz such as 130001). nullopt: too old (before CUDA 12).
std::optional<KernelRecordLayout> layout_for_cupti_version(uint32_t cupti_version);
// Layout by record version (9..13); nullopt for others.
std::optional<KernelRecordLayout> layout_for_record_version(int version);
// "13.0" / "12.x (API 24)" for logs.
std::string describe_cupti_version(uint32_t cupti_version);

// The fields of a kernel record nantrace uses.
struct KernelFields {
  uint32_t kind = 0;  // CUPTI_ACTIVITY_KIND_KERNEL (3) or _CONCURRENT_KERNEL (10)
  uint64_t start = 0, end = 0;
  uint32_t device = 0, context = 0, stream = 0;
  uint32_t correlation_id = 0;
  const char* name = nullptr;  // owned by CUPTI; valid while the buffer is
};

// Reads a record (at least layout.size bytes, any alignment) at the layout's offsets.
KernelFields decode_kernel_record(const void* record, const KernelRecordLayout& layout);

constexpr uint32_t kActivityKindKernel = 3;
constexpr uint32_t kActivityKindConcurrentKernel = 10;
inline bool is_kernel_kind(uint32_t kind) {
  return kind == kActivityKindKernel || kind == kActivityKindConcurrentKernel;
}

}  // namespace nantrace::cuda
