// The device scan kernel. Compiled at run time by the process's NVRTC for the GPU in use
// (docs/gpu.md explains why); its text is embedded in libnantrace by CMake. One launch per
// checked tensor, on the stream that produced it: grid-stride loop with 16-byte loads for
// dense views, per-thread counters, a per-thread histogram column in shared memory, warp
// reductions, a few atomics per warp, and the last block to finish copies the result to
// the request's pinned host slot and resets the device accumulator for the slot's next use.
#include "cuda/scan_kernel.cuh"

#define NT_SCAN_THREADS 256
#define NT_HIST_STRIDE (NT_HEADROOM_BINS + 1)

namespace nantrace {
namespace devscan {

__device__ __forceinline__ nt_u64 warp_sum(nt_u64 v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ nt_u64 warp_max(nt_u64 v) {
  for (int o = 16; o > 0; o >>= 1) {
    const nt_u64 w = __shfl_down_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// nt_u64 is uint64_t (unsigned long) under nvcc on Linux but the atomics take unsigned long
// long: same width, so cast.
typedef unsigned long long nt_ull;
__device__ __forceinline__ nt_ull* ull(nt_u64* p) { return reinterpret_cast<nt_ull*>(p); }

__device__ __forceinline__ void add_if(nt_u64* dst, nt_u64 v) {
  if (v) atomicAdd(ull(dst), (nt_ull)v);
}

template <class F>
__device__ void scan_body(const ScanParams& p, ScanResult* acc, ScanResult* out) {
  typedef typename F::bits_t bits_t;
  __shared__ unsigned int hist[NT_SCAN_THREADS * NT_HIST_STRIDE];
  __shared__ int is_last;
  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  for (int b = 0; b < NT_HEADROOM_BINS; ++b) hist[tid * NT_HIST_STRIDE + b] = 0;

  ThreadAcc<F> a;
  a.reset();
  ColumnHist h;
  h.base = hist + tid * NT_HIST_STRIDE;
  const long long gtid = (long long)blockIdx.x * blockDim.x + tid;
  const long long gstride = (long long)gridDim.x * blockDim.x;
  const bits_t* base = (const bits_t*)p.data;

  if (p.contiguous) {
    const int kPer = 16 / (int)sizeof(bits_t);
    // Elements before the first 16-byte boundary, then whole 16-byte words, then a tail.
    const unsigned long long addr = (unsigned long long)base;
    long long head = (long long)(((16 - (addr & 15)) & 15) / sizeof(bits_t));
    if (head > p.numel) head = p.numel;
    for (long long i = gtid; i < head; i += gstride) accumulate<F>(a, h, base[i], (nt_u64)i);
    const long long nvec = (p.numel - head) / kPer;
    const uint4* vp = (const uint4*)(base + head);
    for (long long v = gtid; v < nvec; v += gstride) {
      union {
        uint4 w;
        bits_t e[16 / sizeof(bits_t)];
      } u;
      u.w = __ldg(vp + v);
      const long long i0 = head + v * kPer;
#pragma unroll
      for (int k = 0; k < kPer; ++k) accumulate<F>(a, h, u.e[k], (nt_u64)(i0 + k));
    }
    for (long long i = head + nvec * kPer + gtid; i < p.numel; i += gstride)
      accumulate<F>(a, h, base[i], (nt_u64)i);
  } else {
    for (long long i = gtid; i < p.numel; i += gstride)
      accumulate<F>(a, h, base[element_offset(p, i)], (nt_u64)i);
  }

  // Counters: one atomic per warp and field.
  nt_u64 v;
  v = warp_sum(a.nan);
  if (lane == 0) add_if(&acc->nan, v);
  v = warp_sum(a.posinf);
  if (lane == 0) add_if(&acc->posinf, v);
  v = warp_sum(a.neginf);
  if (lane == 0) add_if(&acc->neginf, v);
  v = warp_sum(a.zero);
  if (lane == 0) add_if(&acc->zero, v);
  v = warp_sum(a.subnormal);
  if (lane == 0) add_if(&acc->subnormal, v);
  v = warp_max((nt_u64)a.max_abs);
  if (lane == 0 && v) atomicMax(ull(&acc->max_abs_bits), (nt_ull)v);
  v = warp_max(a.first_bad_inv);
  if (lane == 0 && v) atomicMax(ull(&acc->first_bad_inv), (nt_ull)v);

  // Histogram: warp w sums bins w, w+8, ...; lane l reads the columns of threads l, l+32...
  __syncthreads();
  const int warps = blockDim.x >> 5;
  for (int b = warp; b < NT_HEADROOM_BINS; b += warps) {
    nt_u64 s = 0;
    for (int t = lane; t < (int)blockDim.x; t += 32) s += hist[t * NT_HIST_STRIDE + b];
    s = warp_sum(s);
    if (lane == 0) add_if(&acc->hist[b], s);
  }

  // The last block to finish publishes the result and resets the accumulator.
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    const nt_u64 done = atomicAdd(ull(&acc->blocks_done), 1ull);
    is_last = done == (nt_u64)gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  const int words = (int)(sizeof(ScanResult) / sizeof(nt_u64));
  volatile nt_u64* src = (volatile nt_u64*)acc;
  volatile nt_u64* dst = (volatile nt_u64*)out;
  for (int w = tid; w < words; w += blockDim.x) dst[w] = src[w];
  __syncthreads();
  for (int w = tid; w < words; w += blockDim.x) src[w] = 0;
  __threadfence_system();
  __syncthreads();
  if (tid == 0) {
    out->blocks_done = gridDim.x;
    __threadfence_system();
    *(volatile nt_u64*)&out->complete = 1;
    __threadfence_system();
  }
}

}  // namespace devscan
}  // namespace nantrace

using nantrace::devscan::ScanParams;
using nantrace::devscan::ScanResult;
namespace fb = nantrace::fbits;

extern "C" __global__ void __launch_bounds__(NT_SCAN_THREADS)
nt_scan_f16(ScanParams p, ScanResult* acc, ScanResult* out) {
  nantrace::devscan::scan_body<fb::F16>(p, acc, out);
}
extern "C" __global__ void __launch_bounds__(NT_SCAN_THREADS)
nt_scan_bf16(ScanParams p, ScanResult* acc, ScanResult* out) {
  nantrace::devscan::scan_body<fb::BF16>(p, acc, out);
}
extern "C" __global__ void __launch_bounds__(NT_SCAN_THREADS)
nt_scan_f32(ScanParams p, ScanResult* acc, ScanResult* out) {
  nantrace::devscan::scan_body<fb::F32>(p, acc, out);
}
extern "C" __global__ void __launch_bounds__(NT_SCAN_THREADS)
nt_scan_f64(ScanParams p, ScanResult* acc, ScanResult* out) {
  nantrace::devscan::scan_body<fb::F64>(p, acc, out);
}
