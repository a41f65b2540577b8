#include "cuda/launch_tracker.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cuda/demangle.h"

namespace nantrace::cuda {
namespace {

// __cudaLaunchKernel (CUDA 13's <<<>>> entry) has no params struct in CUPTI's generated
// headers; its signature (crt/device_functions.h) is cudaLaunchKernel's with a cudaKernel_t.
struct DunderLaunchKernelParams {
  const void* kernel;
  dim3 gridDim;
  dim3 blockDim;
  void** args;
  size_t sharedMem;
  cudaStream_t stream;
};
static_assert(sizeof(DunderLaunchKernelParams) == sizeof(cudaLaunchKernel_v7000_params),
              "same layout as cudaLaunchKernel");

thread_local int t_runtime_launch_depth = 0;  // >0 while inside a runtime launch
thread_local int t_own_launch = 0;            // >0 while nantrace launches its own kernel

uint32_t this_tid() {
  thread_local uint32_t tid = static_cast<uint32_t>(::syscall(SYS_gettid));
  return tid;
}

int64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

constexpr size_t kMaxNames = 100000;  // distinct kernel names interned; bounded for long runs

}  // namespace

LaunchKind launch_kind(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) {
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000:
      case CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000:
        return LaunchKind::Kernel;
      case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000:
        return LaunchKind::Graph;
      default:
        return LaunchKind::None;
    }
  }
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    switch (cbid) {
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz:
        return LaunchKind::Kernel;
      case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch:
      case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz:
        return LaunchKind::Graph;
      default:
        return LaunchKind::None;
    }
  }
  return LaunchKind::None;
}

const LaunchCallbackId* launch_callback_ids(size_t* count) {
  static const LaunchCallbackId kIds[] = {
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000},
      {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch},
      {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz},
  };
  *count = sizeof kIds / sizeof kIds[0];
  return kIds;
}

bool launch_stream(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, const void* params,
                   uintptr_t* stream) {
  if (!params || !stream) return false;
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000:
        *stream = reinterpret_cast<uintptr_t>(
            static_cast<const cudaLaunchKernel_v7000_params*>(params)->stream);
        return true;
      case CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000:
      case CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000:
        *stream = reinterpret_cast<uintptr_t>(
            static_cast<const DunderLaunchKernelParams*>(params)->stream);
        return true;
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060: {
        const auto* p = static_cast<const cudaLaunchKernelExC_v11060_params*>(params);
        if (!p->config) return false;
        *stream = reinterpret_cast<uintptr_t>(p->config->stream);
        return true;
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000:
        *stream = reinterpret_cast<uintptr_t>(
            static_cast<const cudaLaunchCooperativeKernel_v9000_params*>(params)->stream);
        return true;
      case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000:
        *stream = reinterpret_cast<uintptr_t>(
            static_cast<const cudaGraphLaunch_v10000_params*>(params)->stream);
        return true;
      default:
        return false;
    }
  }
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    switch (cbid) {
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz:
        *stream = reinterpret_cast<uintptr_t>(static_cast<const cuLaunchKernel_params*>(params)->hStream);
        return true;
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz: {
        const auto* p = static_cast<const cuLaunchKernelEx_params*>(params);
        if (!p->config) return false;
        *stream = reinterpret_cast<uintptr_t>(p->config->hStream);
        return true;
      }
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz:
        *stream = reinterpret_cast<uintptr_t>(
            static_cast<const cuLaunchCooperativeKernel_params*>(params)->hStream);
        return true;
      case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch:
      case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz:
        *stream = reinterpret_cast<uintptr_t>(static_cast<const cuGraphLaunch_params*>(params)->hStream);
        return true;
      default:
        return false;
    }
  }
  return false;
}

KernelRecord make_kernel_record(const KernelFields& f, const LaunchInfo* launch) {
  KernelRecord r;
  r.correlation_id = f.correlation_id;
  r.name = demangle(f.name);
  r.device = static_cast<int32_t>(f.device);
  r.stream = f.stream;
  r.start_ns = static_cast<int64_t>(f.start);
  r.end_ns = static_cast<int64_t>(f.end);
  if (launch) {
    r.launch_ns = launch->launch_ns;
    r.launch_tid = launch->tid;
    r.step = launch->context.step;
    r.module_path = launch->context.module_path;
    r.op = launch->context.op;
  }
  return r;
}

ScopedOwnLaunch::ScopedOwnLaunch() { ++t_own_launch; }
ScopedOwnLaunch::~ScopedOwnLaunch() { --t_own_launch; }

LaunchTracker::LaunchTracker(Host* host, size_t capacity)
    : host_(host), capacity_(capacity ? capacity : 1) {}

LaunchTracker::Name* LaunchTracker::intern_locked(const char* symbol) {
  if (!symbol || !*symbol) return nullptr;
  auto p = names_by_ptr_.find(symbol);
  if (p != names_by_ptr_.end() && p->second->mangled == symbol) return p->second;
  auto it = names_.find(symbol);
  Name* n = nullptr;
  if (it != names_.end()) {
    n = it->second.get();
  } else {
    if (names_.size() >= kMaxNames) return nullptr;
    auto owned = std::make_unique<Name>();
    owned->mangled = symbol;
    n = owned.get();
    names_.emplace(n->mangled, std::move(owned));
  }
  if (names_by_ptr_.size() < kMaxNames) names_by_ptr_[symbol] = n;
  return n;
}

const std::string& LaunchTracker::demangled_locked(Name* n) {
  if (n->demangled.empty()) n->demangled = demangle(n->mangled.c_str());
  return n->demangled;
}

void LaunchTracker::remember_launch_locked(uint32_t correlation_id, LaunchInfo info) {
  launches_[correlation_id] = std::move(info);
  order_.push_back(correlation_id);
  // Launches whose record never comes (CUPTI dropped it, the kernel failed) must not pile up.
  while (order_.size() > capacity_) {
    launches_.erase(order_.front());
    order_.pop_front();
  }
}

void LaunchTracker::on_callback(CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                                const CUpti_CallbackData* cb) {
  if (!cb) return;
  const LaunchKind kind = launch_kind(domain, cbid);
  if (kind == LaunchKind::None) return;
  const bool runtime = domain == CUPTI_CB_DOMAIN_RUNTIME_API;
  if (cb->callbackSite == CUPTI_API_EXIT) {
    if (runtime && t_runtime_launch_depth > 0) --t_runtime_launch_depth;
    return;
  }
  if (cb->callbackSite != CUPTI_API_ENTER) return;
  if (runtime) {
    ++t_runtime_launch_depth;
  } else if (t_runtime_launch_depth > 0) {
    return;  // the driver call inside a runtime launch: the runtime callback already has it
  }
  try {
    LaunchInfo info;
    info.graph = kind == LaunchKind::Graph;
    launch_stream(domain, cbid, cb->functionParams, &info.stream);
    info.launch_ns = realtime_ns();
    info.tid = this_tid();
    const bool own = t_own_launch > 0;
    if (own) {
      info.context.op = "nantrace::scan";
    } else if (host_) {
      info.context = host_->launch_context();
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!own) {
      if (streams_.size() >= 4096 && !streams_.count(info.stream)) streams_.clear();
      StreamKernels& sk = streams_[info.stream];
      Name* n = info.graph ? intern_locked("<CUDA graph>") : intern_locked(cb->symbolName);
      if (n) {
        if (sk.names.size() >= kKernelsPerStream) {
          sk.names.erase(sk.names.begin());
          ++sk.dropped;
        }
        sk.names.push_back(n);
      }
    }
    remember_launch_locked(cb->correlationId, std::move(info));
  } catch (...) {
    // Out of memory inside a CUDA call: lose this launch's tag, never the training.
  }
}

void LaunchTracker::on_kernel_activity(const KernelFields& f) {
  if (!is_kernel_kind(f.kind)) return;
  KernelRecord rec;
  try {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = launches_.find(f.correlation_id);
    const LaunchInfo* launch = it == launches_.end() ? nullptr : &it->second;
    rec = make_kernel_record(KernelFields{f.kind, f.start, f.end, f.device, f.context, f.stream,
                                          f.correlation_id, nullptr},
                             launch);
    if (f.name) {
      auto dn = activity_names_.find(f.name);
      if (dn == activity_names_.end()) {
        std::string d = demangle(f.name);
        if (activity_names_.size() < kMaxNames) activity_names_.emplace(f.name, d);
        rec.name = std::move(d);
      } else {
        rec.name = dn->second;
      }
    }
    // A kernel's launch is consumed by its one record; a graph launch's stays for its
    // other kernels until evicted.
    if (launch && !launch->graph) launches_.erase(it);
  } catch (...) {
    return;
  }
  if (host_) host_->on_kernel(std::move(rec));
}

size_t LaunchTracker::on_activity_buffer(uint8_t* buffer, size_t valid,
                                         const KernelRecordLayout& layout, NextRecordFn next,
                                         void* next_ctx) {
  if (!buffer || !next) return 0;
  size_t n = 0;
  const void* record = nullptr;
  while (next(next_ctx, buffer, valid, &record)) {
    const KernelFields f = decode_kernel_record(record, layout);
    if (!is_kernel_kind(f.kind)) continue;
    on_kernel_activity(f);
    ++n;
  }
  return n;
}

std::vector<std::string> LaunchTracker::take_stream_kernels(uintptr_t stream) {
  std::vector<std::string> out;
  try {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream);
    if (it == streams_.end()) return out;
    if (it->second.dropped) out.push_back("<" + std::to_string(it->second.dropped) + " earlier kernels>");
    for (Name* n : it->second.names) out.push_back(demangled_locked(n));
    it->second.names.clear();
    it->second.dropped = 0;
  } catch (...) {
  }
  return out;
}

size_t LaunchTracker::pending_launches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return launches_.size();
}

}  // namespace nantrace::cuda
