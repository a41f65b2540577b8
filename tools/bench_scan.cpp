// CPU scan throughput against a plain read of the same bytes.
//
// For fp16 and fp32 buffers of 256 MiB (random finite values, so every block takes the
// common path), times three passes over the same memory, interleaved and repeated, keeping
// the best of each: a summing read (the cheapest loop that still loads every byte: 64-bit
// integer adds), scan() with the histogram off (fast path) and scan() with it on.
// Prints GB/s and the ratios scan/sum, from wall-clock time and from the thread's CPU time
// (the CPU-time figures stay meaningful on a shared machine where the thread is preempted;
// on a quiet machine the two agree).  Usage: nantrace_bench_scan [MiB] [repeats]
#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "core/scanner.h"

namespace {

using Clock = std::chrono::steady_clock;

// Sum of the buffer as 64-bit words. The result is returned and printed, so the loop
// cannot be dropped; four accumulators let it run at load speed.
uint64_t sum_words(const void* p, size_t bytes) {
  const uint64_t* w = static_cast<const uint64_t*>(p);
  const size_t n = bytes / sizeof(uint64_t);
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += w[i];
    b += w[i + 1];
    c += w[i + 2];
    d += w[i + 3];
  }
  for (; i < n; ++i) a += w[i];
  return a + b + c + d;
}

// Wall-clock and thread-CPU seconds of one call.
struct Timing {
  double wall, cpu;
};
double thread_cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
template <class Fn>
Timing timed(Fn&& fn) {
  const auto w0 = Clock::now();
  const double c0 = thread_cpu_now();
  fn();
  return {std::chrono::duration<double>(Clock::now() - w0).count(), thread_cpu_now() - c0};
}

// Random finite values: uniform sign and mantissa, exponents spread over the binades
// activations and gradients use (a few dozen around 1), never NaN/Inf.
void fill(void* p, size_t bytes, nantrace::DType dt, uint64_t seed) {
  std::mt19937_64 rng(seed);
  if (dt == nantrace::DType::F16) {
    uint16_t* h = static_cast<uint16_t*>(p);
    for (size_t i = 0; i < bytes / 2; ++i) {
      const uint64_t r = rng();
      const uint16_t exp = uint16_t(1 + (r >> 40) % 30);  // 1..30: normal
      h[i] = uint16_t((r & 0x83FF) | (exp << 10));
    }
  } else {
    uint32_t* f = static_cast<uint32_t*>(p);
    for (size_t i = 0; i < bytes / 4; ++i) {
      const uint64_t r = rng();
      const uint32_t exp = uint32_t(127 - 40 + (r >> 40) % 60);
      f[i] = uint32_t((r & 0x807FFFFF) | (exp << 23));
    }
  }
}

struct Best {
  Timing sum{1e30, 1e30}, fast{1e30, 1e30}, hist{1e30, 1e30};
  static void keep(Timing& best, const Timing& t) {
    if (t.wall < best.wall) best.wall = t.wall;
    if (t.cpu < best.cpu) best.cpu = t.cpu;
  }
};

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? size_t(std::strtoull(argv[1], nullptr, 10)) : 256;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  const size_t bytes = mib << 20;
  void* buf = std::aligned_alloc(64, bytes);
  if (!buf) {
    std::fprintf(stderr, "cannot allocate %zu MiB\n", mib);
    return 1;
  }
  std::printf("buffer %zu MiB, best of %d interleaved runs, single thread\n", mib, repeats);
  std::printf("%-5s %-5s %9s %10s %10s %9s %9s\n", "dtype", "clock", "sum GB/s", "fast GB/s",
              "hist GB/s", "fast/sum", "hist/sum");
  uint64_t sink = 0;
  for (nantrace::DType dt : {nantrace::DType::F16, nantrace::DType::F32}) {
    fill(buf, bytes, dt, 7);
    const size_t esize = nantrace::scan_dtype_bytes(dt);
    const int64_t numel = int64_t(bytes / esize);
    const int64_t stride = 1;
    nantrace::TensorView v;
    v.data = buf;
    v.dtype = dt;
    v.ndim = 1;
    v.sizes = &numel;
    v.strides = &stride;
    Best best;
    for (int r = 0; r < repeats; ++r) {
      nantrace::TensorStats fast{}, hist{};
      Best::keep(best.sum, timed([&] { sink += sum_words(buf, bytes); }));
      Best::keep(best.fast, timed([&] { fast = nantrace::scan(v, nantrace::ScanOptions{false}); }));
      Best::keep(best.hist, timed([&] { hist = nantrace::scan(v, nantrace::ScanOptions{true}); }));
      // Use the results so nothing is optimised away, and check the scan saw everything.
      if (fast.numel != uint64_t(numel) || nantrace::has_nonfinite(fast) || hist.zero_count != fast.zero_count) {
        std::fprintf(stderr, "unexpected scan result\n");
        return 1;
      }
      sink += fast.zero_count + hist.headroom_hist[0];
    }
    const double gb = double(bytes) / 1e9;
    const char* name = dt == nantrace::DType::F16 ? "fp16" : "fp32";
    std::printf("%-5s %-5s %9.2f %10.2f %10.2f %9.3f %9.3f\n", name, "wall", gb / best.sum.wall,
                gb / best.fast.wall, gb / best.hist.wall, best.sum.wall / best.fast.wall,
                best.sum.wall / best.hist.wall);
    std::printf("%-5s %-5s %9.2f %10.2f %10.2f %9.3f %9.3f\n", name, "cpu", gb / best.sum.cpu,
                gb / best.fast.cpu, gb / best.hist.cpu, best.sum.cpu / best.fast.cpu,
                best.sum.cpu / best.hist.cpu);
  }
  std::printf("(checksum %llu)\n", static_cast<unsigned long long>(sink));
  std::free(buf);
  return 0;
}
