// CUPTI callback -> KernelRecord translation with a fake host: the callback data, params
// structs and activity records are built here as CUPTI would hand them over.
#include "cuda/launch_tracker.h"

#include <gtest/gtest.h>

#include <cstring>

#include "cuda/fake_host.h"

namespace nantrace::cuda {
namespace {

CUpti_CallbackData callback(CUpti_ApiCallbackSite site, uint32_t correlation, const char* symbol,
                            const void* params) {
  CUpti_CallbackData cb;
  std::memset(&cb, 0, sizeof cb);
  cb.callbackSite = site;
  cb.correlationId = correlation;
  cb.symbolName = symbol;
  cb.functionParams = params;
  cb.functionName = "launch";
  return cb;
}

KernelFields activity(uint32_t correlation, uint64_t start, uint64_t end, const char* name) {
  KernelFields f;
  f.kind = kActivityKindConcurrentKernel;
  f.start = start;
  f.end = end;
  f.device = 0;
  f.stream = 7;
  f.correlation_id = correlation;
  f.name = name;
  return f;
}

CUstream fake_stream(uintptr_t v) { return reinterpret_cast<CUstream>(v); }

TEST(LaunchKind, RecognisesEveryLaunchIdAndNothingElse) {
  size_t n = 0;
  const LaunchCallbackId* ids = launch_callback_ids(&n);
  EXPECT_EQ(n, 18u);
  int graphs = 0;
  for (size_t i = 0; i < n; ++i) {
    const LaunchKind k = launch_kind(ids[i].domain, ids[i].cbid);
    EXPECT_NE(k, LaunchKind::None) << ids[i].cbid;
    graphs += k == LaunchKind::Graph;
  }
  EXPECT_EQ(graphs, 4);
  EXPECT_EQ(launch_kind(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020), LaunchKind::None);
  EXPECT_EQ(launch_kind(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2), LaunchKind::None);
  // The same number in the other domain is a different function.
  EXPECT_EQ(launch_kind(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000), LaunchKind::None);
}

TEST(LaunchStream, ReadFromEachParamsStruct) {
  uintptr_t s = 0;
  cudaLaunchKernel_v7000_params rt{};
  rt.stream = reinterpret_cast<cudaStream_t>(0x11);
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000, &rt, &s));
  EXPECT_EQ(s, 0x11u);
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000, &rt, &s));
  EXPECT_EQ(s, 0x11u);

  cudaLaunchConfig_t cfg{};
  cfg.stream = reinterpret_cast<cudaStream_t>(0x22);
  cudaLaunchKernelExC_v11060_params ex{};
  ex.config = &cfg;
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060, &ex, &s));
  EXPECT_EQ(s, 0x22u);
  ex.config = nullptr;
  EXPECT_FALSE(launch_stream(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060, &ex, &s));

  cudaLaunchCooperativeKernel_v9000_params coop{};
  coop.stream = reinterpret_cast<cudaStream_t>(0x33);
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000, &coop, &s));
  EXPECT_EQ(s, 0x33u);

  cudaGraphLaunch_v10000_params g{};
  g.stream = reinterpret_cast<cudaStream_t>(0x44);
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, &g, &s));
  EXPECT_EQ(s, 0x44u);

  cuLaunchKernel_params dk{};
  dk.hStream = fake_stream(0x55);
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &dk, &s));
  EXPECT_EQ(s, 0x55u);

  CUlaunchConfig dcfg{};
  dcfg.hStream = fake_stream(0x66);
  cuLaunchKernelEx_params dex{};
  dex.config = &dcfg;
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz, &dex, &s));
  EXPECT_EQ(s, 0x66u);

  cuLaunchCooperativeKernel_params dcoop{};
  dcoop.hStream = fake_stream(0x77);
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel, &dcoop, &s));
  EXPECT_EQ(s, 0x77u);

  cuGraphLaunch_params dg{};
  dg.hStream = fake_stream(0x88);
  ASSERT_TRUE(launch_stream(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz, &dg, &s));
  EXPECT_EQ(s, 0x88u);

  EXPECT_FALSE(launch_stream(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, nullptr, &s));
  EXPECT_FALSE(launch_stream(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2, &dk, &s));
}

TEST(LaunchTracker, KernelTaggedWithLaunchingThreadsScope) {
  testing::FakeHost host;
  host.context.step = 12;
  host.context.module_path = "TinyVits/enc.post";
  host.context.op = "aten::exp";
  LaunchTracker tracker(&host);

  cuLaunchKernel_params p{};
  p.hStream = fake_stream(0xABC);
  const char* mangled = "_ZN2at6native29vectorized_elementwise_kernelILi4EN3c104HalfEEEviT_";
  CUpti_CallbackData enter = callback(CUPTI_API_ENTER, 501, mangled, &p);
  tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &enter);
  CUpti_CallbackData exit = callback(CUPTI_API_EXIT, 501, mangled, &p);
  tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &exit);
  EXPECT_EQ(tracker.pending_launches(), 1u);

  host.context = LaunchContext{};  // the scope moved on before the record arrived
  tracker.on_kernel_activity(activity(501, 5000, 7000, mangled));
  ASSERT_EQ(host.kernels.size(), 1u);
  const KernelRecord& k = host.kernels[0];
  EXPECT_EQ(k.correlation_id, 501u);
  EXPECT_EQ(k.step, 12);
  EXPECT_EQ(k.module_path, "TinyVits/enc.post");
  EXPECT_EQ(k.op, "aten::exp");
  EXPECT_EQ(k.start_ns, 5000);
  EXPECT_EQ(k.end_ns, 7000);
  EXPECT_GT(k.launch_ns, 1600000000LL * 1000000000LL);  // CLOCK_REALTIME, like CUPTI
  EXPECT_GT(k.launch_tid, 0u);
  EXPECT_NE(k.name.find("c10::Half"), std::string::npos) << k.name;
  EXPECT_EQ(tracker.pending_launches(), 0u);  // consumed

  const auto names = tracker.take_stream_kernels(0xABC);
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0], k.name);
  EXPECT_TRUE(tracker.take_stream_kernels(0xABC).empty());  // cleared by the take
}

TEST(LaunchTracker, UnknownCorrelationStillReported) {
  testing::FakeHost host;
  LaunchTracker tracker(&host);
  tracker.on_kernel_activity(activity(9, 1, 2, "k"));
  ASSERT_EQ(host.kernels.size(), 1u);
  EXPECT_EQ(host.kernels[0].step, 0);
  EXPECT_EQ(host.kernels[0].module_path, "");
  EXPECT_EQ(host.kernels[0].name, "k");
}

TEST(LaunchTracker, DriverCallInsideRuntimeLaunchCountedOnce) {
  testing::FakeHost host;
  host.context.op = "aten::mm";
  LaunchTracker tracker(&host);
  cudaLaunchKernel_v7000_params rp{};
  rp.stream = reinterpret_cast<cudaStream_t>(0x5);
  cuLaunchKernel_params dp{};
  dp.hStream = fake_stream(0x5);
  auto r_enter = callback(CUPTI_API_ENTER, 1, "_Z4gemmv", &rp);
  auto d_enter = callback(CUPTI_API_ENTER, 2, "_Z4gemmv", &dp);
  auto d_exit = callback(CUPTI_API_EXIT, 2, "_Z4gemmv", &dp);
  auto r_exit = callback(CUPTI_API_EXIT, 1, "_Z4gemmv", &rp);
  tracker.on_callback(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &r_enter);
  tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &d_enter);
  tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &d_exit);
  tracker.on_callback(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &r_exit);
  EXPECT_EQ(tracker.pending_launches(), 1u);
  EXPECT_EQ(tracker.take_stream_kernels(0x5).size(), 1u);

  // After the runtime launch returned, a plain driver launch (Triton) counts again.
  auto t_enter = callback(CUPTI_API_ENTER, 3, "triton_poi_fused_0", &dp);
  tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &t_enter);
  const auto names = tracker.take_stream_kernels(0x5);
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0], "triton_poi_fused_0");
}

TEST(LaunchTracker, GraphLaunchTagsEveryKernelOfTheGraph) {
  testing::FakeHost host;
  host.context.step = 3;
  host.context.module_path = "M";
  LaunchTracker tracker(&host);
  cuGraphLaunch_params gp{};
  gp.hStream = fake_stream(0x9);
  auto enter = callback(CUPTI_API_ENTER, 77, nullptr, &gp);
  tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &enter);
  tracker.on_kernel_activity(activity(77, 1, 2, "node_a"));
  tracker.on_kernel_activity(activity(77, 3, 4, "node_b"));
  ASSERT_EQ(host.kernels.size(), 2u);
  EXPECT_EQ(host.kernels[0].module_path, "M");
  EXPECT_EQ(host.kernels[1].module_path, "M");
  EXPECT_EQ(host.kernels[1].step, 3);
  const auto names = tracker.take_stream_kernels(0x9);
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0], "<CUDA graph>");
}

TEST(LaunchTracker, BoundedWhenRecordsNeverArrive) {
  testing::FakeHost host;
  LaunchTracker tracker(&host, 4);
  cuLaunchKernel_params p{};
  for (uint32_t i = 0; i < 10; ++i) {
    auto enter = callback(CUPTI_API_ENTER, 100 + i, "_Z1kv", &p);
    tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &enter);
  }
  EXPECT_EQ(tracker.pending_launches(), 4u);
  // The newest survive.
  host.context.op = "";
  tracker.on_kernel_activity(activity(109, 1, 2, "_Z1kv"));
  EXPECT_EQ(tracker.pending_launches(), 3u);
}

TEST(LaunchTracker, StreamKernelListKeepsTheLastFewAndCountsTheRest) {
  testing::FakeHost host;
  LaunchTracker tracker(&host);
  cuLaunchKernel_params p{};
  p.hStream = fake_stream(0x1);
  const char* names[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10"};
  for (uint32_t i = 0; i < 11; ++i) {
    auto enter = callback(CUPTI_API_ENTER, i + 1, names[i], &p);
    tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &enter);
  }
  const auto got = tracker.take_stream_kernels(0x1);
  ASSERT_EQ(got.size(), LaunchTracker::kKernelsPerStream + 1);
  EXPECT_EQ(got.front(), "<3 earlier kernels>");
  EXPECT_EQ(got.back(), "k10");
  EXPECT_EQ(got[1], "k3");
  EXPECT_TRUE(tracker.take_stream_kernels(0x2).empty());  // another stream saw nothing
}

TEST(LaunchTracker, OwnScanLaunchesAreNotTheProducers) {
  testing::FakeHost host;
  host.context.module_path = "User";
  LaunchTracker tracker(&host);
  cuLaunchKernel_params p{};
  p.hStream = fake_stream(0x3);
  {
    ScopedOwnLaunch own;
    auto enter = callback(CUPTI_API_ENTER, 5, "nt_scan_f16", &p);
    tracker.on_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &enter);
  }
  EXPECT_TRUE(tracker.take_stream_kernels(0x3).empty());
  tracker.on_kernel_activity(activity(5, 1, 2, "nt_scan_f16"));
  ASSERT_EQ(host.kernels.size(), 1u);
  EXPECT_EQ(host.kernels[0].op, "nantrace::scan");
  EXPECT_EQ(host.kernels[0].module_path, "");
}

TEST(MakeKernelRecord, JoinsFieldsAndLaunch) {
  LaunchInfo li;
  li.context.step = 4;
  li.context.module_path = "A/b";
  li.context.op = "aten::add";
  li.launch_ns = 123;
  li.tid = 456;
  KernelFields f = activity(8, 1000, 1500, "_Z3addPfS_");
  f.device = 2;
  const KernelRecord r = make_kernel_record(f, &li);
  EXPECT_EQ(r.name, "add(float*, float*)");
  EXPECT_EQ(r.device, 2);
  EXPECT_EQ(r.stream, 7u);
  EXPECT_EQ(r.launch_ns, 123);
  EXPECT_EQ(r.launch_tid, 456u);
  EXPECT_EQ(r.step, 4);
  EXPECT_EQ(r.op, "aten::add");
}

}  // namespace
}  // namespace nantrace::cuda
