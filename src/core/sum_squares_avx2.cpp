// AVX2 copy of sum_of_squares' contiguous loop, chosen at run time when the CPU has AVX2.
#include "core/model.h"

#if defined(__GNUC__) && defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define NT_SQ_ISA avx2
#include "core/sum_squares_kernels.h"
#undef NT_SQ_ISA
#pragma GCC pop_options

namespace nantrace {
namespace sq_detail {
double contiguous_avx2(const void* data, DType dtype, int64_t n) { return avx2::contiguous(data, dtype, n); }
bool have_avx2() { return true; }
}  // namespace sq_detail
}  // namespace nantrace
#else
namespace nantrace {
namespace sq_detail {
double contiguous_avx2(const void*, DType, int64_t) { return 0; }
bool have_avx2() { return false; }
}  // namespace sq_detail
}  // namespace nantrace
#endif
