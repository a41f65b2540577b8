// The CUDA adapter's face towards the runtime: CUPTI attribution + timeline, and the
// asynchronous device scan. Nothing here needs a CUDA header; libcuda and libcupti are
// loaded at run time. Compiled, not run on a GPU, unless docs/gpu.md says otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"

namespace nantrace::cuda {

// Scope of the launching thread, as the runtime knows it.
struct LaunchContext {
  int64_t step = 0;
  std::string module_path;
  std::string op;
};

// Implemented by the runtime. Callbacks arrive on CUPTI's threads and on the collector
// thread: implementations must be thread-safe and must never call back into CUDA.
class Host {
 public:
  virtual ~Host() = default;
  // Called inside launch callbacks on the launching thread: must be cheap.
  virtual LaunchContext launch_context() = 0;
  // A kernel with its GPU start/end (from activity buffers), any thread.
  virtual void on_kernel(KernelRecord rec) = 0;
  // A device scan finished; results may arrive in any order (the runtime reorders by seq).
  virtual void on_scan_result(uint64_t seq, const TensorStats& stats, std::vector<std::string> kernels) = 0;
  // A scan that was enqueued but could not complete (context lost, timeout at exit...).
  virtual void on_scan_failed(uint64_t seq, const std::string& reason) = 0;
  // One log line per key for the process lifetime.
  virtual void log_once(const std::string& key, const std::string& message) = 0;
};

struct ScanRequest {
  uint64_t seq = 0;  // program order, taken by the runtime at enqueue
  const void* data = nullptr;  // device pointer of the view's first element
  DType dtype = DType::F32;
  int32_t ndim = 0;
  int64_t sizes[16] = {};
  int64_t strides[16] = {};  // in elements
  int32_t device = 0;
  uintptr_t stream = 0;  // CUstream of the producer; 0 = legacy default stream
};

enum class EnqueueResult { Pending, Skipped };

// Idempotent. From InitializeInjection (CUDA_INJECTION64_PATH) and from the runtime.
// Returns false, after one log line, when libcuda / libcupti cannot be used; the CUPTI part
// and the scan part degrade independently (a refused subscription keeps scans working).
bool initialize(Host* host);
bool tracing_active();   // CUPTI subscription held
bool scanning_active();  // device scan kernel available
// Never synchronizes. Skipped (with *skip_reason) under stream capture or when unavailable.
EnqueueResult enqueue_scan(const ScanRequest& req, std::string* skip_reason);
// At exit: wait (bounded) for outstanding scans, force-flush CUPTI activity buffers.
void flush(int timeout_ms);
void shutdown();

}  // namespace nantrace::cuda
