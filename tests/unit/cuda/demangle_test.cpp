// Kernel names: demangling and the half-precision hint.
#include "cuda/demangle.h"

#include <gtest/gtest.h>

namespace nantrace::cuda {
namespace {

TEST(Demangle, CxxNames) {
  EXPECT_EQ(demangle("_Z3addPfS_"), "add(float*, float*)");
  const std::string d = demangle(
      "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIN3c104HalfEEESt5arrayIPcLm1EEEEviT0_T1_");
  EXPECT_NE(d.find("at::native::vectorized_elementwise_kernel"), std::string::npos) << d;
  EXPECT_NE(d.find("c10::Half"), std::string::npos) << d;
}

TEST(Demangle, LeavesOtherNamesAlone) {
  EXPECT_EQ(demangle("nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_NNT"), "nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_NNT");
  EXPECT_EQ(demangle("triton_poi_fused_exp_mul_0"), "triton_poi_fused_exp_mul_0");
  EXPECT_EQ(demangle("_Znot_really_mangled!"), "_Znot_really_mangled!");
  EXPECT_EQ(demangle(nullptr), "");
}

struct Case {
  const char* name;
  PrecisionHint hint;
};

TEST(KernelPrecision, FromNames) {
  const Case cases[] = {
      {"void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl<c10::Half>>()", PrecisionHint::F16},
      {"void at::native::reduce_kernel<512, 1, at::native::ReduceOp<c10::BFloat16, float>>()", PrecisionHint::BF16},
      {"void cutlass::Kernel<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_32x6_tn_align8>()", PrecisionHint::BF16},
      {"void cutlass::Kernel<cutlass::gemm::kernel::Gemm<cutlass::half_t, float>>()", PrecisionHint::F16},
      {"void kern(__half const*, __half*)", PrecisionHint::F16},
      {"void kern(__nv_bfloat16 const*)", PrecisionHint::BF16},
      {"volta_h884gemm_64x64_ldg8_nn", PrecisionHint::F16},
      {"turing_fp16_s1688gemm_fp16_128x128_ldg8_f2f_nn", PrecisionHint::F16},
      {"ampere_s16816gemm_fp16_128x64_ldg8_stages_32x6_tn", PrecisionHint::F16},
      {"sm80_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x32", PrecisionHint::F16},
      {"sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n", PrecisionHint::BF16},
      {"_ZN2at6native13reduce_kernelILi512ELi1ENS0_8ReduceOpIN3c104HalfEfEEEEvT1_", PrecisionHint::F16},
      {"_ZN2at6native13reduce_kernelILi512ELi1ENS0_8ReduceOpIN3c108BFloat16EfEEEEvT1_", PrecisionHint::BF16},
      // No dtype in the name: a hint is not invented.
      {"void at::native::vectorized_elementwise_kernel<4, at::native::AUnaryFunctor<float>>()", PrecisionHint::Unknown},
      {"nvjet_tst_128x64_64x8_2x1_v_bz_coopB_TNT", PrecisionHint::Unknown},
      {"sgemm_128x128x8_NN_vec", PrecisionHint::Unknown},
      {"copy_buf16_kernel", PrecisionHint::Unknown},  // "f16" inside a word
      {"", PrecisionHint::Unknown},
  };
  for (const Case& c : cases) {
    const KernelPrecision p = classify_kernel_precision(c.name);
    EXPECT_EQ(p.hint, c.hint) << c.name << " -> " << to_string(p.hint) << " via '" << p.evidence << "'";
    if (c.hint != PrecisionHint::Unknown) {
      EXPECT_FALSE(p.evidence.empty()) << c.name;
    }
  }
}

}  // namespace
}  // namespace nantrace::cuda
