// CUPTI launch callbacks -> KernelRecords. On the launching thread, at API enter, a launch
// is tagged with that thread's scope (module, op, step), its stream and CPU time, keyed by
// CUPTI's correlation id; when the kernel's activity record arrives (GPU start/end), the
// two are joined into a KernelRecord for the host. Per stream it also remembers which
// kernels were launched since the last device scan on that stream: those wrote the tensor
// the scan checks, so a finding can name them.
#pragma once

#include <cupti.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/model.h"
#include "cuda/cuda_adapter.h"
#include "cuda/kernel_record.h"

namespace nantrace::cuda {

enum class LaunchKind { None, Kernel, Graph };

// Which callback ids are launches: runtime cudaLaunchKernel (+_ptsz), __cudaLaunchKernel
// (CUDA 13's <<<>>> path, +_ptsz), cudaLaunchKernelExC, cudaLaunchCooperativeKernel,
// cudaGraphLaunch; driver cuLaunchKernel, cuLaunchKernelEx, cuLaunchCooperativeKernel,
// cuGraphLaunch (each +_ptsz).
LaunchKind launch_kind(CUpti_CallbackDomain domain, CUpti_CallbackId cbid);
// Every (domain, callback id) above, to enable on a subscription.
struct LaunchCallbackId {
  CUpti_CallbackDomain domain;
  CUpti_CallbackId cbid;
};
const LaunchCallbackId* launch_callback_ids(size_t* count);

// The stream a launch goes to, read from CUPTI's functionParams (valid only inside the
// callback). False when the id is not a launch or the params are missing.
bool launch_stream(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, const void* params,
                   uintptr_t* stream);

struct LaunchInfo {
  LaunchContext context;  // module / op / step of the launching thread
  uintptr_t stream = 0;   // CUstream handle
  int64_t launch_ns = 0;  // CLOCK_REALTIME
  uint32_t tid = 0;
  bool graph = false;     // a graph launch: several kernels share its correlation id
};

// The join of an activity record with its launch (nullptr: launch unknown).
KernelRecord make_kernel_record(const KernelFields& fields, const LaunchInfo* launch);

// Marks launches made by nantrace itself (the scan kernel) on this thread, so they are not
// counted among the kernels that produced the user's tensors.
class ScopedOwnLaunch {
 public:
  ScopedOwnLaunch();
  ~ScopedOwnLaunch();
  ScopedOwnLaunch(const ScopedOwnLaunch&) = delete;
  ScopedOwnLaunch& operator=(const ScopedOwnLaunch&) = delete;
};

class LaunchTracker {
 public:
  static constexpr size_t kDefaultCapacity = 1 << 16;  // launches awaiting their record
  static constexpr size_t kKernelsPerStream = 8;       // names kept per stream between scans

  explicit LaunchTracker(Host* host, size_t capacity = kDefaultCapacity);

  // Body of the CUPTI callback (runtime and driver domains). Never throws.
  void on_callback(CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                   const CUpti_CallbackData* cb);
  // One decoded kernel activity record: emits a KernelRecord to the host.
  void on_kernel_activity(const KernelFields& fields);
  // Walks a completed activity buffer. next() has cuptiActivityGetNextRecord's contract
  // (true and *record set while records remain). Returns the kernel records emitted.
  using NextRecordFn = bool (*)(void* ctx, uint8_t* buffer, size_t valid, const void** record);
  size_t on_activity_buffer(uint8_t* buffer, size_t valid, const KernelRecordLayout& layout,
                            NextRecordFn next, void* next_ctx);

  // Demangled names of the kernels launched on `stream` since the previous call for it
  // (the last kKernelsPerStream; "<N earlier kernels>" first when some were dropped).
  std::vector<std::string> take_stream_kernels(uintptr_t stream);

  size_t pending_launches() const;

 private:
  struct Name {
    std::string mangled;
    std::string demangled;  // filled on first use
  };
  struct StreamKernels {
    std::vector<Name*> names;
    uint64_t dropped = 0;
  };

  Name* intern_locked(const char* symbol);
  const std::string& demangled_locked(Name* n);
  void remember_launch_locked(uint32_t correlation_id, LaunchInfo info);

  Host* host_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, LaunchInfo> launches_;
  std::deque<uint32_t> order_;  // insertion order, for bounded eviction
  std::unordered_map<uintptr_t, StreamKernels> streams_;
  std::unordered_map<std::string, std::unique_ptr<Name>> names_;
  std::unordered_map<const void*, Name*> names_by_ptr_;  // CUPTI's symbolName pointers
  std::unordered_map<std::string, std::string> activity_names_;  // mangled -> demangled
};

}  // namespace nantrace::cuda
