// GPU scan benchmark (run by tools/gpu_check.sh on a GPU machine): time of the nantrace
// scan kernel over a tensor vs a device-to-device copy of the same bytes, through the same
// dlopen'ed driver tables and NVRTC-compiled module the adapter uses, and a check that the
// GPU's statistics equal the CPU scanner's on the same data.
//
//   nantrace_bench_scan_gpu [MiB=256] [repeats=20]
// Prints one line per dtype; exit 0 when every ratio >= 0.8 and the results match, 2 when
// a ratio is below target, 1 on an error (no GPU, no NVRTC, mismatch).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/scanner.h"
#include "cuda/cuda_driver_api.h"
#include "cuda/library_loader.h"
#include "cuda/nvrtc_api.h"
#include "cuda/scan_module.h"
#include "cuda/scan_result.h"

using namespace nantrace;
using namespace nantrace::cuda;

namespace {

#define CHECK_CU(call)                                                                  \
  do {                                                                                  \
    CUresult r_ = (call);                                                               \
    if (r_ != CUDA_SUCCESS) {                                                           \
      std::fprintf(stderr, "bench_scan_gpu: %s failed: %s\n", #call, driver_error(drv, r_).c_str()); \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (0)

DriverApi drv;

// Host data: finite values of a plausible activation range, plus a few planted NaN/Inf.
std::vector<uint8_t> make_host(DType dtype, size_t bytes) {
  std::vector<uint8_t> h(bytes);
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd(0.f, 8.f);
  const size_t n = bytes / dtype_bytes(dtype);
  for (size_t i = 0; i < n; ++i) {
    float f = nd(rng);
    uint32_t b;
    std::memcpy(&b, &f, 4);
    if (dtype == DType::F32) {
      std::memcpy(&h[i * 4], &b, 4);
    } else if (dtype == DType::BF16) {
      const uint16_t v = uint16_t(b >> 16);
      std::memcpy(&h[i * 2], &v, 2);
    } else if (dtype == DType::F16) {
      // float -> half by bit arithmetic for normal values in range (good enough for data).
      const uint32_t sign = (b >> 16) & 0x8000u;
      int e = int((b >> 23) & 0xff) - 127 + 15;
      uint16_t v;
      if (e <= 0) v = uint16_t(sign);
      else if (e >= 31) v = uint16_t(sign | 0x7bffu);
      else v = uint16_t(sign | (uint32_t(e) << 10) | ((b >> 13) & 0x3ffu));
      std::memcpy(&h[i * 2], &v, 2);
    } else {
      const double d = f;
      std::memcpy(&h[i * 8], &d, 8);
    }
  }
  // Plant non-finite values (the first at a known index).
  const size_t es = dtype_bytes(dtype);
  const size_t where[] = {n / 3, n / 2, n - 1};
  for (size_t w : where) std::memset(&h[w * es], 0xff, es);  // all ones: NaN in every format
  return h;
}

bool same_stats(const TensorStats& a, const TensorStats& b) {
  bool ok = a.numel == b.numel && a.nan_count == b.nan_count && a.posinf_count == b.posinf_count &&
            a.neginf_count == b.neginf_count && a.zero_count == b.zero_count &&
            a.subnormal_count == b.subnormal_count && a.max_abs_finite == b.max_abs_finite &&
            a.first_bad_index == b.first_bad_index;
  for (int i = 0; i < NT_HEADROOM_BINS; ++i) ok = ok && a.headroom_hist[i] == b.headroom_hist[i];
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 20;
  const size_t bytes = mib << 20;

  std::string err;
  LoadedLibrary cu = load_library(driver_search(), &err);
  if (!cu.handle) {
    std::fprintf(stderr, "bench_scan_gpu: no libcuda.so.1 (%s)\n", err.c_str());
    return 1;
  }
  resolve_driver_api(cu.handle, &drv);
  if (!drv.usable() || !drv.cuEventElapsedTime || !drv.cuEventSynchronize || !drv.cuMemcpyHtoD ||
      !drv.cuMemcpyDtoDAsync) {
    std::fprintf(stderr, "bench_scan_gpu: libcuda lacks%s\n", drv.missing_required.c_str());
    return 1;
  }
  LibrarySearch ns = nvrtc_search();
  ns.extra_paths = {"/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.12"};
  LoadedLibrary nl = load_library(ns, &err);
  NvrtcApi nv;
  if (nl.handle) resolve_nvrtc_api(nl.handle, &nv);
  if (!nv.usable()) {
    std::fprintf(stderr, "bench_scan_gpu: no usable NVRTC (%s)\n", err.c_str());
    return 1;
  }

  CHECK_CU(drv.cuInit(0));
  CUdevice dev;
  CHECK_CU(drv.cuDeviceGet(&dev, 0));
  CUcontext ctx;
  CHECK_CU(drv.cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK_CU(drv.cuCtxSetCurrent(ctx));
  int major = 0, minor = 0, sms = 0, drv_version = 0;
  drv.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
  drv.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
  drv.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
  drv.cuDriverGetVersion(&drv_version);
  int nvrtc_major = 0, nvrtc_minor = 0;
  nv.nvrtcVersion(&nvrtc_major, &nvrtc_minor);

  CompiledKernel k;
  if (!compile_scan_kernel(nv, major, minor, &k, &err)) {
    std::fprintf(stderr, "bench_scan_gpu: compile failed: %s\n", err.c_str());
    return 1;
  }
  ScanModule mod;
  if (!mod.load(drv, k, &err)) {
    std::fprintf(stderr, "bench_scan_gpu: load failed: %s\n", err.c_str());
    return 1;
  }
  std::printf("bench_scan_gpu: sm_%d%d, %d SMs, driver %d, NVRTC %d.%d (%s, %s), %zu MiB, %d repeats\n",
              major, minor, sms, drv_version, nvrtc_major, nvrtc_minor, nl.how.c_str(), k.target.c_str(),
              mib, repeats);

  CUdeviceptr src, dst, acc;
  CHECK_CU(drv.cuMemAlloc(&src, bytes));
  CHECK_CU(drv.cuMemAlloc(&dst, bytes));
  CHECK_CU(drv.cuMemAlloc(&acc, sizeof(devscan::ScanResult)));
  void* out_host = nullptr;
  CHECK_CU(drv.cuMemHostAlloc(&out_host, sizeof(devscan::ScanResult),
                              CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP));
  CUdeviceptr out_dev;
  CHECK_CU(drv.cuMemHostGetDevicePointer(&out_dev, out_host, 0));
  CUstream stream;
  CHECK_CU(drv.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  CHECK_CU(drv.cuMemsetD8Async(acc, 0, sizeof(devscan::ScanResult), stream));
  CUevent e0, e1;
  CHECK_CU(drv.cuEventCreate(&e0, 0));
  CHECK_CU(drv.cuEventCreate(&e1, 0));

  bool all_ok = true, all_fast = true;
  for (DType dtype : {DType::F16, DType::BF16, DType::F32}) {
    const std::vector<uint8_t> host = make_host(dtype, bytes);
    CHECK_CU(drv.cuMemcpyHtoD(src, host.data(), bytes));
    const int64_t n = int64_t(bytes / dtype_bytes(dtype));
    const int64_t stride = 1;
    devscan::ScanParams p;
    make_scan_params(reinterpret_cast<const void*>(src), 1, &n, &stride, &p, nullptr);

    auto time_it = [&](auto&& op) {
      for (int i = 0; i < 3; ++i) op();  // warm-up
      CHECK_CU(drv.cuEventRecord(e0, stream));
      for (int i = 0; i < repeats; ++i) op();
      CHECK_CU(drv.cuEventRecord(e1, stream));
      CHECK_CU(drv.cuEventSynchronize(e1));
      float ms = 0;
      CHECK_CU(drv.cuEventElapsedTime(&ms, e0, e1));
      return double(ms) / repeats;
    };
    const double scan_ms = time_it([&] { CHECK_CU(mod.launch(drv, dtype, p, acc, out_dev, stream, sms)); });
    const double copy_ms = time_it([&] { CHECK_CU(drv.cuMemcpyDtoDAsync(dst, src, bytes, stream)); });

    // Correctness of the last scan against the CPU scanner on the same bytes.
    devscan::ScanResult res;
    std::memcpy(&res, out_host, sizeof res);
    const TensorStats gpu = to_stats(res, dtype, uint64_t(n));
    TensorView tv{host.data(), dtype, 1, &n, &stride};
    const TensorStats cpu = scan(tv);
    const bool ok = res.complete == 1 && same_stats(gpu, cpu);
    const double ratio = copy_ms / scan_ms;
    const double gbs_scan = double(bytes) / (scan_ms * 1e6);
    const double gbs_copy = double(bytes) / (copy_ms * 1e6);
    std::printf("scan %-4s %zu MiB: scan %.3f ms (%.0f GB/s read), d2d copy %.3f ms (%.0f GB/s copied), "
                "ratio copy/scan %.2f (target >= 0.80) %s; stats vs CPU scanner: %s (nan %llu, first bad %lld)\n",
                to_string(dtype), mib, scan_ms, gbs_scan, copy_ms, gbs_copy, ratio,
                ratio >= 0.8 ? "OK" : "BELOW TARGET", ok ? "equal" : "DIFFERENT",
                (unsigned long long)gpu.nan_count, (long long)gpu.first_bad_index);
    all_ok = all_ok && ok;
    all_fast = all_fast && ratio >= 0.8;
  }

  // Information only: a transposed (strided) fp16 view of the same bytes.
  {
    const int64_t rows = 4096, cols = int64_t(bytes / 2) / rows;
    const int64_t sizes[] = {cols, rows}, strides[] = {1, cols};
    devscan::ScanParams p;
    make_scan_params(reinterpret_cast<const void*>(src), 2, sizes, strides, &p, nullptr);
    CHECK_CU(drv.cuEventRecord(e0, stream));
    CHECK_CU(mod.launch(drv, DType::F16, p, acc, out_dev, stream, sms));
    CHECK_CU(drv.cuEventRecord(e1, stream));
    CHECK_CU(drv.cuEventSynchronize(e1));
    float ms = 0;
    CHECK_CU(drv.cuEventElapsedTime(&ms, e0, e1));
    std::printf("scan f16 transposed view %zu MiB: %.3f ms (%.0f GB/s), information only\n", mib, ms,
                double(bytes) / (double(ms) * 1e6));
  }
  if (!all_ok) return 1;
  return all_fast ? 0 : 2;
}
