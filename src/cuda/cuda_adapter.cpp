// The adapter's process-wide state and its CUPTI plumbing: loads the libraries, holds the
// subscription, routes callbacks and activity buffers to the LaunchTracker, and scans to
// the DeviceScanner. Every entry point catches everything: no exception reaches CUDA's or
// the runtime's frames.
#include "cuda/cuda_adapter.h"

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>

#include "cuda/cuda_driver_api.h"
#include "cuda/cupti_api.h"
#include "cuda/device_scanner.h"
#include "cuda/kernel_record.h"
#include "cuda/launch_tracker.h"
#include "cuda/library_loader.h"
#include "cuda/nvrtc_api.h"

namespace nantrace::cuda {
namespace {

constexpr size_t kActivityBufferBytes = 4 << 20;
constexpr int kMaxActivityBuffers = 16;  // 64 MiB at most held by CUPTI; beyond, it drops
constexpr CUptiResult kMultipleSubscribers = static_cast<CUptiResult>(39);

struct Adapter {
  std::mutex mu;
  bool initialized = false;
  bool result = false;
  Host* host = nullptr;
  DriverApi drv;
  CuptiApi cupti;
  NvrtcApi nvrtc;
  std::optional<KernelRecordLayout> layout;
  std::unique_ptr<LaunchTracker> tracker;
  std::unique_ptr<DeviceScanner> scanner;
  std::atomic<DeviceScanner*> scanner_ready{nullptr};  // read by enqueue_scan without the lock
  CUpti_SubscriberHandle subscriber = nullptr;
  std::atomic<bool> tracing{false};
  std::atomic<bool> scanning{false};
  std::atomic<bool> forked{false};
  std::atomic<int> buffers{0};
};

// Never destroyed: CUPTI may call back while static destructors run at exit.
Adapter& state() {
  static Adapter* a = new Adapter;
  return *a;
}

void log_once(const std::string& key, const std::string& msg) {
  Adapter& a = state();
  if (a.host) {
    try {
      a.host->log_once(key, msg);
    } catch (...) {
    }
  }
}

std::string first_lines(const std::string& s, size_t max_chars = 300) {
  std::string out = s;
  for (char& c : out)
    if (c == '\n') c = ' ';
  if (out.size() > max_chars) out = out.substr(0, max_chars) + "...";
  return out;
}

void CUPTIAPI api_callback(void*, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                           const void* data) {
  Adapter& a = state();
  if (a.forked || !a.tracker) return;
  a.tracker->on_callback(domain, cbid, static_cast<const CUpti_CallbackData*>(data));
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  Adapter& a = state();
  *buffer = nullptr;
  *size = 0;
  *max_records = 0;
  if (a.buffers.load() >= kMaxActivityBuffers) {
    log_once("cuda.cupti.buffers", "nantrace: CUPTI activity buffers full; some kernel records are dropped");
    return;
  }
  void* p = std::aligned_alloc(8, kActivityBufferBytes);
  if (!p) return;
  ++a.buffers;
  *buffer = static_cast<uint8_t*>(p);
  *size = kActivityBufferBytes;
}

bool next_cupti_record(void*, uint8_t* buffer, size_t valid, const void** record) {
  Adapter& a = state();
  CUpti_Activity* rec = const_cast<CUpti_Activity*>(static_cast<const CUpti_Activity*>(*record));
  if (a.cupti.cuptiActivityGetNextRecord(buffer, valid, &rec) != CUPTI_SUCCESS) return false;
  *record = rec;
  return true;
}

void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream_id, uint8_t* buffer, size_t,
                               size_t valid) {
  Adapter& a = state();
  try {
    if (buffer && valid && a.tracker && a.layout && !a.forked)
      a.tracker->on_activity_buffer(buffer, valid, *a.layout, next_cupti_record, nullptr);
    size_t dropped = 0;
    if (a.cupti.cuptiActivityGetNumDroppedRecords(ctx, stream_id, &dropped) == CUPTI_SUCCESS && dropped)
      log_once("cuda.cupti.dropped", "nantrace: CUPTI dropped " + std::to_string(dropped) +
                                         " kernel records (the timeline has gaps)");
  } catch (...) {
  }
  std::free(buffer);
  if (buffer) --a.buffers;
}

void on_fork_child() {
  Adapter& a = state();
  a.forked = true;
  a.tracing = false;
  a.scanning = false;
  if (a.scanner) a.scanner->on_fork_child();
}

// CUPTI: load, check the version, subscribe, enable launch callbacks and kernel activity.
void start_tracing(Adapter& a) {
  std::string err;
  const LoadedLibrary lib = load_library(cupti_search(), &err);
  if (!lib.handle) {
    log_once("cuda.cupti", "nantrace: libcupti not found, so no kernel names or GPU timeline "
                           "(device scans and framework checks keep working); " + first_lines(err));
    return;
  }
  resolve_cupti_api(lib.handle, &a.cupti);
  if (!a.cupti.usable()) {
    log_once("cuda.cupti", "nantrace: " + lib.path + " lacks" + a.cupti.missing + ": CUPTI tracing off");
    return;
  }
  uint32_t version = 0;
  a.cupti.cuptiGetVersion(&version);
  a.layout = layout_for_cupti_version(version);
  if (!a.layout) {
    log_once("cuda.cupti", "nantrace: CUPTI " + describe_cupti_version(version) +
                               " is older than CUDA 12: CUPTI tracing off");
    return;
  }
  CUptiResult r = a.cupti.cuptiSubscribe(&a.subscriber, api_callback, nullptr);
  if (r != CUPTI_SUCCESS) {
    a.subscriber = nullptr;
    if (r == kMultipleSubscribers) {
      log_once("cuda.cupti", "nantrace: CUPTI is already in use by another tool (torch.profiler, "
                             "Nsight Systems/Compute, compute-sanitizer): no kernel names or GPU "
                             "timeline in this run; module-level checks and device scans keep working");
    } else {
      log_once("cuda.cupti", "nantrace: cuptiSubscribe failed: " + cupti_error(a.cupti, r) +
                                 ": CUPTI tracing off; other checks keep working");
    }
    return;
  }
  size_t n = 0, enabled = 0;
  const LaunchCallbackId* ids = launch_callback_ids(&n);
  for (size_t i = 0; i < n; ++i) {
    // Ids newer than the loaded CUPTI (CUDA 13's __cudaLaunchKernel on 12.x) are refused:
    // fine, that CUDA never calls them.
    if (a.cupti.cuptiEnableCallback(1, a.subscriber, ids[i].domain, ids[i].cbid) == CUPTI_SUCCESS)
      ++enabled;
  }
  r = enabled ? a.cupti.cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed)
              : CUPTI_ERROR_UNKNOWN;
  if (r == CUPTI_SUCCESS) r = a.cupti.cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  if (r != CUPTI_SUCCESS) {
    log_once("cuda.cupti", "nantrace: enabling CUPTI callbacks/activity failed: " +
                               cupti_error(a.cupti, r) + ": CUPTI tracing off");
    a.cupti.cuptiUnsubscribe(a.subscriber);
    a.subscriber = nullptr;
    return;
  }
  a.tracing = true;
}

void start_scanning(Adapter& a) {
  std::string err;
  const LoadedLibrary lib = load_library(nvrtc_search(), &err);
  if (lib.handle) resolve_nvrtc_api(lib.handle, &a.nvrtc);
  a.scanner = std::make_unique<DeviceScanner>(&a.drv, &a.nvrtc, a.host, a.tracker.get());
  a.scanner_ready = a.scanner.get();
  std::string why;
  if (a.scanner->available(&why)) {
    a.scanning = true;
    a.scanner->warm_up();
  } else {
    log_once("cuda.scan", "nantrace: device scans of CUDA tensors are off: " + why +
                              (lib.handle ? "" : "; " + first_lines(err)));
  }
}

}  // namespace

bool initialize(Host* host) {
  Adapter& a = state();
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.initialized) return a.result;
  a.initialized = true;
  a.host = host;
  try {
    std::string err;
    const LoadedLibrary drv = load_library(driver_search(), &err);
    if (drv.handle) resolve_driver_api(drv.handle, &a.drv);
    a.tracker = std::make_unique<LaunchTracker>(host);
    if (!drv.handle) {
      log_once("cuda.driver", "nantrace: libcuda.so.1 not available, so no CUDA tracing or device "
                              "scans (CPU checks keep working)");
      a.scanner = std::make_unique<DeviceScanner>(&a.drv, &a.nvrtc, a.host, a.tracker.get());
      a.scanner_ready = a.scanner.get();
      a.result = false;
      return false;
    }
    start_tracing(a);
    start_scanning(a);
    static std::once_flag fork_once;
    std::call_once(fork_once, [] { pthread_atfork(nullptr, nullptr, on_fork_child); });
    a.result = a.tracing || a.scanning;
  } catch (...) {
    log_once("cuda.init", "nantrace: CUDA adapter failed to start; CPU checks keep working");
    a.result = false;
  }
  return a.result;
}

bool tracing_active() { return state().tracing.load(); }
bool scanning_active() { return state().scanning.load(); }

EnqueueResult enqueue_scan(const ScanRequest& req, std::string* skip_reason) {
  Adapter& a = state();
  DeviceScanner* s = a.scanner_ready.load();
  if (!s) {
    if (skip_reason) *skip_reason = "not checked: CUDA adapter not initialized";
    return EnqueueResult::Skipped;
  }
  return s->enqueue(req, skip_reason);
}

void flush(int timeout_ms) {
  Adapter& a = state();
  if (a.forked) return;
  try {
    if (DeviceScanner* s = a.scanner_ready.load()) s->flush(timeout_ms);
    if (a.tracing) a.cupti.cuptiActivityFlushAll(1 /* CUPTI_ACTIVITY_FLAG_FLUSH_FORCED */);
  } catch (...) {
  }
}

void shutdown() {
  Adapter& a = state();
  if (a.forked) return;
  std::lock_guard<std::mutex> lock(a.mu);
  try {
    if (a.scanner) a.scanner->stop();
    a.scanning = false;
    if (a.tracing.exchange(false)) {
      a.cupti.cuptiActivityFlushAll(1);
      a.cupti.cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
      if (a.subscriber) a.cupti.cuptiUnsubscribe(a.subscriber);
      a.subscriber = nullptr;
    }
  } catch (...) {
  }
}

}  // namespace nantrace::cuda
