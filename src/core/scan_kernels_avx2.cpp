// AVX2 copy of the scanner's block kernels, chosen at run time when the CPU has AVX2
// (the library itself is built for the baseline x86-64 so it loads anywhere).
#include <cstdint>
#include <type_traits>

#include "core/float_bits.h"
#include "core/scan_block.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define NT_SCAN_HAVE_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2")
#define NT_SCAN_ISA avx2
#include "core/scan_kernels.h"
#undef NT_SCAN_ISA
#pragma GCC pop_options
#endif

namespace nantrace {
namespace scan_detail {

template <class F>
BlockFn<F> block_fn_avx2() {
#ifdef NT_SCAN_HAVE_AVX2
  return &avx2::block<F>;
#else
  return nullptr;
#endif
}

template BlockFn<fbits::F16> block_fn_avx2<fbits::F16>();
template BlockFn<fbits::BF16> block_fn_avx2<fbits::BF16>();
template BlockFn<fbits::F32> block_fn_avx2<fbits::F32>();
template BlockFn<fbits::F64> block_fn_avx2<fbits::F64>();

}  // namespace scan_detail
}  // namespace nantrace
