// Asynchronous device scans: a scan kernel launched on the producer's stream, its result
// written by the GPU into a slot of a pinned host ring, an event recorded after it, and one
// background thread that polls the events (cuEventQuery, never a synchronize) and hands
// finished results to the host. The training thread never waits for the GPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cuda/cuda_adapter.h"
#include "cuda/cuda_driver_api.h"
#include "cuda/nvrtc_api.h"
#include "cuda/scan_module.h"

namespace nantrace::cuda {

class LaunchTracker;

class DeviceScanner {
 public:
  static constexpr size_t kSlotsPerContext = 256;

  // drv / nvrtc / tracker must outlive the scanner; tracker may be null (no kernel names).
  DeviceScanner(const DriverApi* drv, const NvrtcApi* nvrtc, Host* host, LaunchTracker* tracker);
  ~DeviceScanner();
  DeviceScanner(const DeviceScanner&) = delete;
  DeviceScanner& operator=(const DeviceScanner&) = delete;

  // Compiles the kernel for every visible GPU's architecture on the collector thread, so
  // the first scan does not wait for NVRTC (seconds) on the training thread. Needs CUDA
  // initialised by the process; does nothing (compile stays lazy) otherwise.
  void warm_up();
  // Whether scans can be attempted at all (driver and NVRTC present); *why otherwise.
  bool available(std::string* why) const;
  // Never synchronizes; Skipped with "not checked: ..." in *skip_reason.
  EnqueueResult enqueue(const ScanRequest& req, std::string* skip_reason);
  // Waits up to timeout_ms for scans in flight; those still running are reported to the
  // host as failed (and dropped when they finish). True when none was left.
  bool flush(int timeout_ms);
  // Stops the collector thread. Scans in flight are reported as failed.
  void stop();
  // In a forked child: CUDA is unusable and the collector thread does not exist there.
  void on_fork_child();
  size_t in_flight() const;

 private:
  struct Slot {
    devscan::ScanResult* host = nullptr;  // pinned, mapped
    CUdeviceptr host_dev = 0;             // its device address
    CUdeviceptr acc = 0;                  // device accumulator (all-zero between uses)
    CUevent event = nullptr;
    bool busy = false;                    // reserved by an enqueue (or in flight)
    bool published = false;               // launched + event recorded: the collector polls it
    bool abandoned = false;               // reported failed at flush; drop when done
    bool leaked = false;                  // event could not be recorded: never reuse
    uint64_t seq = 0;
    uint64_t numel = 0;
    DType dtype = DType::F32;
    std::vector<std::string> kernels;
  };
  struct Context {
    int device = -1;
    CUcontext ctx = nullptr;
    int sm_count = 0;
    ScanModule module;
    std::vector<Slot> slots;
    size_t next = 0;
    bool ready = false;
    std::string error;  // set-up failure, reported in every skip reason for this device
  };

  Context* context_for(int device, std::string* error);
  bool set_up(Context* c, std::string* error);
  void collector_loop(bool warm_up);
  void compile_for_visible_devices();
  // The compiled kernel for an arch, compiling it if needed (serialised by compile_mu_).
  const CompiledKernel* compiled_for(int major, int minor, std::string* error);
  void start_collector_locked(bool warm_up = false);
  std::vector<Context*> ready_contexts();
  // Marks every published slot abandoned and reports it failed with `reason`.
  void abandon_in_flight(const std::string& reason);

  const DriverApi* drv_;
  const NvrtcApi* nvrtc_;
  Host* host_;
  LaunchTracker* tracker_;

  std::mutex setup_mu_;  // serialises per-device set-up (compile, load, allocate)
  std::map<int, std::unique_ptr<Context>> contexts_;  // guarded by setup_mu_ for insertion
  std::mutex compile_mu_;
  std::map<int, CompiledKernel> compiled_;  // per arch (major*10+minor), under compile_mu_

  mutable std::mutex mu_;  // slots' busy state, in_flight_, stop_
  std::condition_variable work_cv_, idle_cv_;
  size_t in_flight_ = 0;
  bool stop_ = false;
  std::atomic<bool> forked_{false};  // read without locks: a fork may leave mu_ held
  std::unique_ptr<std::thread> collector_;  // leaked, not joined, in a forked child
};

}  // namespace nantrace::cuda
