// Without libcuda (this CI machine has no driver) the adapter must say so once, refuse
// scans with a reason, and never crash. On a GPU machine these tests skip themselves.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include "cuda/cuda_adapter.h"
#include "cuda/cuda_driver_api.h"
#include "cuda/device_scanner.h"
#include "cuda/fake_host.h"
#include "cuda/library_loader.h"
#include "cuda/nvrtc_api.h"

namespace nantrace::cuda {
namespace {

bool driver_present() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h) dlclose(h);
  return h != nullptr;
}

ScanRequest some_request() {
  static const float data[4] = {};
  ScanRequest r;
  r.seq = 17;
  r.data = data;
  r.dtype = DType::F32;
  r.ndim = 1;
  r.sizes[0] = 4;
  r.strides[0] = 1;
  return r;
}

TEST(AbsentLibraries, InitializeFailsWithOneLogLineAndScansAreSkipped) {
  if (driver_present()) GTEST_SKIP() << "libcuda.so.1 is present on this machine";
  testing::FakeHost host;
  EXPECT_FALSE(initialize(&host));
  EXPECT_FALSE(tracing_active());
  EXPECT_FALSE(scanning_active());
  ASSERT_EQ(host.log_calls, 1);
  ASSERT_EQ(host.logs.count("cuda.driver"), 1u);
  EXPECT_NE(host.logs["cuda.driver"].find("libcuda.so.1"), std::string::npos);

  std::string reason;
  EXPECT_EQ(enqueue_scan(some_request(), &reason), EnqueueResult::Skipped);
  EXPECT_EQ(reason.rfind("not checked: ", 0), 0u) << reason;
  EXPECT_NE(reason.find("libcuda"), std::string::npos) << reason;
  EXPECT_EQ(enqueue_scan(some_request(), nullptr), EnqueueResult::Skipped);  // no out-param: fine

  // Idempotent: a second call changes nothing and logs nothing more.
  EXPECT_FALSE(initialize(&host));
  EXPECT_EQ(host.log_calls, 1);
  flush(10);
  shutdown();
  shutdown();
  EXPECT_TRUE(host.results.empty());
  EXPECT_TRUE(host.failures.empty());
}

TEST(AbsentLibraries, LoaderReportsWhatItTried) {
  LibrarySearch s;
  s.sonames = {"libnantrace_no_such_library.so.1"};
  s.wheel_paths = {"nvidia/none/lib/libnone.so"};
  s.extra_paths = {"/nonexistent/libcupti.so.13"};
  std::string err;
  const LoadedLibrary lib = load_library(s, &err);
  EXPECT_EQ(lib.handle, nullptr);
  EXPECT_NE(err.find("libnantrace_no_such_library.so.1"), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent/libcupti.so.13"), std::string::npos) << err;
}

TEST(AbsentLibraries, LoaderReusesALibraryTheProcessHas) {
  // libm is loaded in every C++ test process: found by RTLD_NOLOAD, not loaded afresh.
  LibrarySearch s;
  s.sonames = {"libnantrace_no_such_library.so.1", "libm.so.6"};
  std::string err;
  const LoadedLibrary lib = load_library(s, &err);
  ASSERT_NE(lib.handle, nullptr) << err;
  EXPECT_EQ(lib.how, "already loaded");
  EXPECT_EQ(lib.path, "libm.so.6");
}

TEST(AbsentLibraries, EmptyTablesMakeTheScannerDecline) {
  DriverApi drv;
  NvrtcApi nvrtc;
  resolve_driver_api(nullptr, &drv);
  EXPECT_FALSE(drv.usable());
  testing::FakeHost host;
  DeviceScanner scanner(&drv, &nvrtc, &host, nullptr);
  std::string why;
  EXPECT_FALSE(scanner.available(&why));
  EXPECT_NE(why.find("libcuda"), std::string::npos) << why;
  std::string reason;
  EXPECT_EQ(scanner.enqueue(some_request(), &reason), EnqueueResult::Skipped);
  EXPECT_EQ(reason.rfind("not checked: CUDA scan unavailable", 0), 0u) << reason;
  EXPECT_TRUE(scanner.flush(1));
  EXPECT_EQ(scanner.in_flight(), 0u);
  scanner.stop();
  EXPECT_TRUE(host.failures.empty());
}

TEST(AbsentLibraries, ResolvingATableFromALibraryWithoutTheSymbolsListsThemMissing) {
  void* libm = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(libm, nullptr);
  DriverApi drv;
  resolve_driver_api(libm, &drv);
  EXPECT_FALSE(drv.usable());
  EXPECT_NE(drv.missing_required.find("cuLaunchKernel"), std::string::npos);
  EXPECT_NE(drv.missing_required.find("cuMemAlloc_v2"), std::string::npos);  // versioned name
  NvrtcApi nv;
  resolve_nvrtc_api(libm, &nv);
  EXPECT_FALSE(nv.usable());
  dlclose(libm);
}

}  // namespace
}  // namespace nantrace::cuda
