#include "cuda/device_scanner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include "cuda/launch_tracker.h"
#include "cuda/scan_result.h"

namespace nantrace::cuda {
namespace {

// Makes ctx current for a scope when it is not already; restores the previous one.
class ContextGuard {
 public:
  ContextGuard(const DriverApi& drv, CUcontext ctx) : drv_(drv) {
    CUcontext cur = nullptr;
    if (drv_.cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == ctx) return;
    pushed_ = drv_.cuCtxPushCurrent(ctx) == CUDA_SUCCESS;
  }
  ~ContextGuard() {
    if (pushed_) {
      CUcontext popped = nullptr;
      drv_.cuCtxPopCurrent(&popped);
    }
  }
 private:
  const DriverApi& drv_;
  bool pushed_ = false;
};

bool is_capture_error(CUresult r) {
  return r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED || r == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED ||
         r == CUDA_ERROR_STREAM_CAPTURE_MERGE || r == CUDA_ERROR_STREAM_CAPTURE_UNMATCHED ||
         r == CUDA_ERROR_STREAM_CAPTURE_UNJOINED || r == CUDA_ERROR_STREAM_CAPTURE_ISOLATION ||
         r == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT || r == CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD ||
         r == CUDA_ERROR_CAPTURED_EVENT;
}

bool valid_dtype(DType d) {
  return d == DType::F16 || d == DType::BF16 || d == DType::F32 || d == DType::F64;
}

}  // namespace

DeviceScanner::DeviceScanner(const DriverApi* drv, const NvrtcApi* nvrtc, Host* host,
                             LaunchTracker* tracker)
    : drv_(drv), nvrtc_(nvrtc), host_(host), tracker_(tracker) {}

DeviceScanner::~DeviceScanner() { stop(); }

bool DeviceScanner::available(std::string* why) const {
  if (!drv_ || !drv_->usable()) {
    if (why) *why = drv_ && drv_->lib ? "libcuda lacks" + drv_->missing_required : "libcuda.so.1 not loaded";
    return false;
  }
  if (!nvrtc_ || !nvrtc_->usable()) {
    if (why) *why = nvrtc_ && nvrtc_->lib ? "libnvrtc lacks" + nvrtc_->missing : "no NVRTC in the process or next to torch";
    return false;
  }
  return true;
}

size_t DeviceScanner::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

bool DeviceScanner::set_up(Context* c, std::string* error) {
  const DriverApi& drv = *drv_;
  CUdevice dev = 0;
  CUresult r = drv.cuDeviceGet(&dev, c->device);
  if (r != CUDA_SUCCESS) {
    *error = "cuDeviceGet: " + driver_error(drv, r);
    return false;
  }
  // PyTorch works in each device's primary context; retaining it keeps it alive for us.
  r = drv.cuDevicePrimaryCtxRetain(&c->ctx, dev);
  if (r != CUDA_SUCCESS) {
    *error = "cuDevicePrimaryCtxRetain: " + driver_error(drv, r);
    return false;
  }
  ContextGuard guard(drv, c->ctx);
  int major = 0, minor = 0;
  drv.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
  drv.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
  drv.cuDeviceGetAttribute(&c->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
  const CompiledKernel* kernel = compiled_for(major, minor, error);
  if (!kernel || !c->module.load(drv, *kernel, error)) return false;

  // The ring: pinned host results (mapped into the device's address space), device
  // accumulators zeroed once on a private stream, one event per slot.
  const size_t bytes = kSlotsPerContext * sizeof(devscan::ScanResult);
  void* host = nullptr;
  r = drv.cuMemHostAlloc(&host, bytes, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
  if (r != CUDA_SUCCESS) {
    *error = "cuMemHostAlloc: " + driver_error(drv, r);
    return false;
  }
  std::memset(host, 0, bytes);
  CUdeviceptr host_dev = 0;
  r = drv.cuMemHostGetDevicePointer(&host_dev, host, 0);
  if (r != CUDA_SUCCESS) {
    *error = "cuMemHostGetDevicePointer: " + driver_error(drv, r);
    return false;
  }
  CUdeviceptr acc = 0;
  r = drv.cuMemAlloc(&acc, bytes);
  if (r != CUDA_SUCCESS) {
    *error = "cuMemAlloc: " + driver_error(drv, r);
    return false;
  }
  CUstream own = nullptr;
  r = drv.cuStreamCreate(&own, CU_STREAM_NON_BLOCKING);
  if (r == CUDA_SUCCESS) r = drv.cuMemsetD8Async(acc, 0, bytes, own);
  if (r == CUDA_SUCCESS) r = drv.cuStreamSynchronize(own);  // our own stream only
  if (own) drv.cuStreamDestroy(own);
  if (r != CUDA_SUCCESS) {
    *error = "zeroing the accumulators: " + driver_error(drv, r);
    return false;
  }
  c->slots.resize(kSlotsPerContext);
  for (size_t i = 0; i < kSlotsPerContext; ++i) {
    Slot& s = c->slots[i];
    s.host = static_cast<devscan::ScanResult*>(host) + i;
    s.host_dev = host_dev + i * sizeof(devscan::ScanResult);
    s.acc = acc + i * sizeof(devscan::ScanResult);
    r = drv.cuEventCreate(&s.event, CU_EVENT_DISABLE_TIMING);
    if (r != CUDA_SUCCESS) {
      *error = "cuEventCreate: " + driver_error(drv, r);
      return false;
    }
  }
  return true;
}

const CompiledKernel* DeviceScanner::compiled_for(int major, int minor, std::string* error) {
  std::lock_guard<std::mutex> lock(compile_mu_);
  const int arch = major * 10 + minor;
  auto it = compiled_.find(arch);
  if (it == compiled_.end()) {
    CompiledKernel k;
    if (!compile_scan_kernel(*nvrtc_, major, minor, &k, error)) return nullptr;
    it = compiled_.emplace(arch, std::move(k)).first;
  }
  return &it->second;
}

void DeviceScanner::compile_for_visible_devices() {
  const DriverApi& drv = *drv_;
  int count = 0;
  // Called while the process initialises CUDA: wait a little for cuInit to finish; never
  // initialise CUDA ourselves in a process that did not.
  for (int attempt = 0; attempt < 40; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    const CUresult r = drv.cuDeviceGetCount(&count);
    if (r == CUDA_SUCCESS) break;
    if (r != CUDA_ERROR_NOT_INITIALIZED) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int d = 0; d < count; ++d) {
    CUdevice dev = 0;
    int major = 0, minor = 0;
    if (drv.cuDeviceGet(&dev, d) != CUDA_SUCCESS) continue;
    drv.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    drv.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    std::string err;
    if (!compiled_for(major, minor, &err) && host_)
      host_->log_once("cuda.scan.compile", "nantrace: compiling the scan kernel for sm_" +
                                               std::to_string(major * 10 + minor) + " failed: " + err);
  }
}

void DeviceScanner::warm_up() {
  if (forked_ || !available(nullptr)) return;
  std::lock_guard<std::mutex> lock(mu_);
  start_collector_locked(true);
}

DeviceScanner::Context* DeviceScanner::context_for(int device, std::string* error) {
  std::lock_guard<std::mutex> lock(setup_mu_);
  auto it = contexts_.find(device);
  if (it != contexts_.end()) {
    if (!it->second->ready) *error = it->second->error;
    return it->second->ready ? it->second.get() : nullptr;
  }
  auto c = std::make_unique<Context>();
  c->device = device;
  std::string err;
  // One-time per device, on the first scan there: compile (CPU only), load the module and
  // allocate the ring. Allocation and module load may be serialised by the driver with
  // running work; nothing here waits for the training's streams.
  c->ready = set_up(c.get(), &err);
  c->error = err;
  if (!c->ready) {
    *error = err;
    if (host_) host_->log_once("cuda.scan.setup." + std::to_string(device),
                               "nantrace: device scans on cuda:" + std::to_string(device) +
                                   " are off: " + err + " (module-level checks of CPU tensors keep working)");
  }
  Context* out = c->ready ? c.get() : nullptr;
  contexts_.emplace(device, std::move(c));
  return out;
}

void DeviceScanner::start_collector_locked(bool warm_up) {
  if (collector_ || stop_ || forked_) return;
  collector_ = std::make_unique<std::thread>([this, warm_up] { collector_loop(warm_up); });
}

EnqueueResult DeviceScanner::enqueue(const ScanRequest& req, std::string* skip_reason) {
  std::string dummy;
  std::string& reason = skip_reason ? *skip_reason : dummy;
  try {
    if (forked_) {
      reason = "not checked: CUDA unusable in a forked child";
      return EnqueueResult::Skipped;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) {
        reason = "not checked: CUDA scans stopped";
        return EnqueueResult::Skipped;
      }
    }
    std::string why;
    if (!available(&why)) {
      reason = "not checked: CUDA scan unavailable (" + why + ")";
      return EnqueueResult::Skipped;
    }
    if (!valid_dtype(req.dtype)) {
      reason = "not checked: unsupported dtype";
      return EnqueueResult::Skipped;
    }
    const DriverApi& drv = *drv_;
    const CUstream stream = reinterpret_cast<CUstream>(req.stream);
    // Never launch into a capturing stream: the kernel would become part of the user's graph.
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
    CUresult r = drv.cuStreamIsCapturing(stream, &capture);
    if (is_capture_error(r) || (r == CUDA_SUCCESS && capture != CU_STREAM_CAPTURE_STATUS_NONE)) {
      reason = "not checked: graph capture";
      return EnqueueResult::Skipped;
    }
    devscan::ScanParams params;
    std::string err;
    if (!make_scan_params(req.data, req.ndim, req.sizes, req.strides, &params, &err)) {
      reason = "not checked: " + err;
      return EnqueueResult::Skipped;
    }
    Context* c = context_for(req.device, &err);
    if (!c) {
      reason = "not checked: CUDA scan unavailable (" + err + ")";
      return EnqueueResult::Skipped;
    }
    if (r != CUDA_SUCCESS) {  // cuStreamIsCapturing failed for another reason
      ContextGuard guard(drv, c->ctx);
      capture = CU_STREAM_CAPTURE_STATUS_NONE;
      r = drv.cuStreamIsCapturing(stream, &capture);
      if (is_capture_error(r) || capture != CU_STREAM_CAPTURE_STATUS_NONE) {
        reason = "not checked: graph capture";
        return EnqueueResult::Skipped;
      }
      if (r != CUDA_SUCCESS) {
        reason = "not checked: cuStreamIsCapturing: " + driver_error(drv, r);
        return EnqueueResult::Skipped;
      }
    }
    Slot* slot = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t k = 0; k < c->slots.size(); ++k) {
        Slot& s = c->slots[(c->next + k) % c->slots.size()];
        if (!s.busy && !s.leaked) {
          slot = &s;
          c->next = (c->next + k + 1) % c->slots.size();
          s.busy = true;  // reserved; published to the collector below
          break;
        }
      }
    }
    if (!slot) {
      reason = "not checked: scan queue full";
      return EnqueueResult::Skipped;
    }
    std::memset(static_cast<void*>(slot->host), 0, sizeof(devscan::ScanResult));
    std::vector<std::string> kernels;
    if (tracker_) kernels = tracker_->take_stream_kernels(req.stream);
    {
      ContextGuard guard(drv, c->ctx);
      {
        ScopedOwnLaunch own;
        r = c->module.launch(drv, req.dtype, params, slot->acc, slot->host_dev, stream, c->sm_count);
      }
      if (r == CUDA_SUCCESS) {
        r = drv.cuEventRecord(slot->event, stream);
        if (r != CUDA_SUCCESS) {
          std::lock_guard<std::mutex> lock(mu_);
          slot->leaked = true;  // the kernel may still write it; never hand it out again
          reason = "not checked: cuEventRecord: " + driver_error(drv, r);
          return EnqueueResult::Skipped;
        }
      }
    }
    if (r != CUDA_SUCCESS) {
      std::lock_guard<std::mutex> lock(mu_);
      slot->busy = false;
      reason = "not checked: scan launch failed: " + driver_error(drv, r);
      return EnqueueResult::Skipped;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      slot->abandoned = false;
      slot->published = true;
      slot->seq = req.seq;
      slot->numel = static_cast<uint64_t>(params.numel);
      slot->dtype = req.dtype;
      slot->kernels = std::move(kernels);
      ++in_flight_;
      start_collector_locked();
    }
    work_cv_.notify_one();
    return EnqueueResult::Pending;
  } catch (...) {
    reason = "not checked: internal error in the CUDA scan";
    return EnqueueResult::Skipped;
  }
}

std::vector<DeviceScanner::Context*> DeviceScanner::ready_contexts() {
  std::vector<Context*> out;
  std::lock_guard<std::mutex> lock(setup_mu_);
  for (auto& kv : contexts_)
    if (kv.second->ready) out.push_back(kv.second.get());
  return out;
}

void DeviceScanner::collector_loop(bool warm_up) {
  if (warm_up) {
    try {
      compile_for_visible_devices();
    } catch (...) {
    }
  }
  struct Done {
    uint64_t seq = 0;
    bool ok = false;
    bool report = true;
    TensorStats stats{};
    std::vector<std::string> kernels;
    std::string error;
  };
  using std::chrono::microseconds;
  microseconds backoff(50);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stop_ || in_flight_ > 0; });
      if (stop_) return;
    }
    std::vector<Done> done;
    try {
      for (Context* c : ready_contexts()) {
        drv_->cuCtxSetCurrent(c->ctx);
        for (Slot& s : c->slots) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (!s.published) continue;
          }
          // A published slot's event and memory are stable until this thread frees it.
          const CUresult r = drv_->cuEventQuery(s.event);
          if (r == CUDA_ERROR_NOT_READY) continue;
          Done d;
          if (r == CUDA_SUCCESS) {
            std::atomic_thread_fence(std::memory_order_acquire);
            devscan::ScanResult res;
            std::memcpy(&res, const_cast<const devscan::ScanResult*>(s.host), sizeof res);
            if (res.complete == 1) {
              d.ok = true;
              d.stats = to_stats(res, s.dtype, s.numel);
            } else {
              d.error = "not checked: scan kernel finished without writing its result";
            }
          } else {
            d.error = "not checked: cuEventQuery: " + driver_error(*drv_, r);
          }
          std::lock_guard<std::mutex> lock(mu_);
          d.seq = s.seq;
          d.report = !s.abandoned;
          d.kernels = std::move(s.kernels);
          s.kernels.clear();
          s.published = false;
          s.busy = false;
          s.abandoned = false;
          --in_flight_;
          done.push_back(std::move(d));
        }
      }
    } catch (...) {
      // Out of memory building a result: the slots stay in flight and are retried.
    }
    if (!done.empty()) idle_cv_.notify_all();
    for (Done& d : done) {
      if (!d.report || !host_) continue;
      if (d.ok) {
        host_->on_scan_result(d.seq, d.stats, std::move(d.kernels));
      } else {
        host_->on_scan_failed(d.seq, d.error);
      }
    }
    if (done.empty()) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, microseconds(1000));
    } else {
      backoff = microseconds(50);
    }
  }
}

void DeviceScanner::abandon_in_flight(const std::string& reason) {
  std::vector<uint64_t> seqs;
  const std::vector<Context*> contexts = ready_contexts();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Context* c : contexts)
      for (Slot& s : c->slots)
        if (s.published && !s.abandoned) {
          s.abandoned = true;
          seqs.push_back(s.seq);
        }
  }
  if (!host_) return;
  for (uint64_t seq : seqs) host_->on_scan_failed(seq, reason);
}

bool DeviceScanner::flush(int timeout_ms) {
  if (forked_) return true;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (idle_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 0),
                          [this] { return in_flight_ == 0; }))
      return true;
  }
  abandon_in_flight("not checked: scan still running after " + std::to_string(timeout_ms) +
                    " ms at exit");
  return false;
}

void DeviceScanner::stop() {
  if (forked_) return;
  std::unique_ptr<std::thread> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    t = std::move(collector_);
  }
  work_cv_.notify_all();
  if (t && t->joinable()) t->join();
  abandon_in_flight("not checked: CUDA scans stopped before the result arrived");
}

void DeviceScanner::on_fork_child() {
  // No lock: the parent's threads may have held one at fork time. The collector thread
  // does not exist here, so its handle is leaked rather than joined.
  forked_ = true;
  (void)collector_.release();
}

}  // namespace nantrace::cuda
