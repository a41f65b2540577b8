// The embedded scan kernel compiles with NVRTC (no GPU needed): CUBIN for a GPU NVRTC
// knows, PTX for one newer than it. Skipped where no libnvrtc can be loaded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "cuda/library_loader.h"
#include "cuda/nvrtc_api.h"
#include "cuda/scan_module.h"

namespace nantrace::cuda {
namespace {

class NvrtcCompile : public ::testing::Test {
 protected:
  void SetUp() override {
    LibrarySearch s = nvrtc_search();
    s.extra_paths = {std::string(NT_TEST_CUDA_LIB_DIR) + "/libnvrtc.so.13",
                     std::string(NT_TEST_CUDA_LIB_DIR) + "/libnvrtc.so.12",
                     std::string(NT_TEST_CUDA_LIB_DIR) + "/libnvrtc.so"};
    std::string err;
    const LoadedLibrary lib = load_library(s, &err);
    if (!lib.handle) GTEST_SKIP() << "no libnvrtc here: " << err;
    resolve_nvrtc_api(lib.handle, &nv_);
    if (!nv_.usable()) GTEST_SKIP() << "libnvrtc lacks" << nv_.missing;
    nv_.nvrtcGetNumSupportedArchs(&narchs_);
    archs_.resize(size_t(narchs_));
    nv_.nvrtcGetSupportedArchs(archs_.data());
  }
  NvrtcApi nv_;
  int narchs_ = 0;
  std::vector<int> archs_;
};

TEST_F(NvrtcCompile, CubinForAKnownArchitecture) {
  ASSERT_FALSE(archs_.empty());
  const int arch = archs_.front();  // the oldest this NVRTC supports
  CompiledKernel k;
  std::string err;
  ASSERT_TRUE(compile_scan_kernel(nv_, arch / 10, arch % 10, &k, &err)) << err;
  EXPECT_TRUE(k.cubin);
  EXPECT_EQ(k.target, "sm_" + std::to_string(arch));
  ASSERT_GT(k.image.size(), 4u);
  EXPECT_EQ(std::memcmp(k.image.data(), "\x7f" "ELF", 4), 0) << "a CUBIN is an ELF image";
}

TEST_F(NvrtcCompile, PtxForAGpuNewerThanNvrtc) {
  ASSERT_FALSE(archs_.empty());
  CompiledKernel k;
  std::string err;
  ASSERT_TRUE(compile_scan_kernel(nv_, 99, 9, &k, &err)) << err;
  EXPECT_FALSE(k.cubin);
  EXPECT_EQ(k.target, "compute_" + std::to_string(archs_.back()));
  const std::string ptx(k.image.data());
  EXPECT_NE(ptx.find(".version"), std::string::npos);
  for (const char* entry : {"nt_scan_f16", "nt_scan_bf16", "nt_scan_f32", "nt_scan_f64"})
    EXPECT_NE(ptx.find(std::string(".entry ") + entry), std::string::npos) << entry;
  EXPECT_TRUE(k.log.find("error") == std::string::npos) << k.log;
}

TEST_F(NvrtcCompile, CommonTrainingGpus) {
  // T4 (7.5, weak fp16 and common in the GPT-SoVITS reports) and H100/H200 (9.0), where
  // this NVRTC has them (each compile takes seconds on a CI core).
  for (int arch : {75, 90}) {
    if (std::find(archs_.begin(), archs_.end(), arch) == archs_.end()) continue;
    CompiledKernel k;
    std::string err;
    EXPECT_TRUE(compile_scan_kernel(nv_, arch / 10, arch % 10, &k, &err)) << arch << ": " << err;
    EXPECT_TRUE(k.cubin) << arch;
  }
}

TEST_F(NvrtcCompile, NoArchitectureBelowTheGpu) {
  CompiledKernel k;
  std::string err;
  EXPECT_FALSE(compile_scan_kernel(nv_, 1, 0, &k, &err));
  EXPECT_NE(err.find("sm_10"), std::string::npos) << err;
}

}  // namespace
}  // namespace nantrace::cuda
