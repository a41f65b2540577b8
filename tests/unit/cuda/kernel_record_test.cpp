// Decoding kernel activity records for every layout CUPTI 12.x/13.x writes, from synthetic
// buffers built here (no GPU, no libcupti).
#include "cuda/kernel_record.h"

#include <gtest/gtest.h>

#include <cupti.h>

#include <cstring>
#include <vector>

#include "cuda/fake_host.h"
#include "cuda/launch_tracker.h"

namespace nantrace::cuda {
namespace {

struct Rec {
  uint32_t kind;
  uint64_t start, end;
  uint32_t device, context, stream, correlation;
  const char* name;
};

template <class T>
void put(std::vector<uint8_t>& buf, size_t base, size_t off, T v) {
  std::memcpy(buf.data() + base + off, &v, sizeof v);
}

// A buffer of records laid out exactly as `layout` says, as CUPTI would fill it.
std::vector<uint8_t> make_buffer(const KernelRecordLayout& l, const std::vector<Rec>& recs) {
  std::vector<uint8_t> buf(l.size * recs.size(), 0xAB);  // junk in fields nobody reads
  for (size_t i = 0; i < recs.size(); ++i) {
    const size_t b = i * l.size;
    put(buf, b, l.off_kind, recs[i].kind);
    put(buf, b, l.off_start, recs[i].start);
    put(buf, b, l.off_end, recs[i].end);
    put(buf, b, l.off_device, recs[i].device);
    put(buf, b, l.off_context, recs[i].context);
    put(buf, b, l.off_stream, recs[i].stream);
    put(buf, b, l.off_correlation, recs[i].correlation);
    put(buf, b, l.off_name, recs[i].name);
  }
  return buf;
}

struct Walker {
  size_t record_size;
};
// cuptiActivityGetNextRecord's contract over fixed-size records.
bool next_fixed(void* ctx, uint8_t* buffer, size_t valid, const void** record) {
  const size_t size = static_cast<Walker*>(ctx)->record_size;
  const uint8_t* next = *record ? static_cast<const uint8_t*>(*record) + size : buffer;
  if (next + size > buffer + valid) return false;
  *record = next;
  return true;
}

TEST(KernelRecordLayout, VersionChosenFromCuptiVersion) {
  struct Case {
    uint32_t cupti;
    int record;
  } cases[] = {{19, 9},      {24, 9},      {28, 9},      {130000, 10}, {130001, 10},
               {130100, 11}, {130202, 11}, {130300, 12}, {130401, 13}, {140000, 13}};
  for (const Case& c : cases) {
    auto l = layout_for_cupti_version(c.cupti);
    ASSERT_TRUE(l.has_value()) << c.cupti;
    EXPECT_EQ(l->version, c.record) << c.cupti;
  }
  EXPECT_FALSE(layout_for_cupti_version(18).has_value());  // CUDA 11.8
  EXPECT_FALSE(layout_for_cupti_version(0).has_value());
  EXPECT_FALSE(layout_for_record_version(8).has_value());
}

TEST(KernelRecordLayout, SizesGrowWithVersion) {
  size_t prev = 0;
  for (int v = 9; v <= 13; ++v) {
    auto l = layout_for_record_version(v);
    ASSERT_TRUE(l.has_value());
    EXPECT_GT(l->size, prev) << v;
    EXPECT_EQ(l->size % 8, 0u) << "records are 8-byte aligned";
    prev = l->size;
  }
}

// The table against the real structs of the toolkit this is built with.
TEST(KernelRecordLayout, MatchesToolkitStructs) {
  CUpti_ActivityKernel9 k9;
  std::memset(&k9, 0, sizeof k9);
  k9.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  k9.start = 111;
  k9.end = 222;
  k9.deviceId = 3;
  k9.contextId = 4;
  k9.streamId = 5;
  k9.correlationId = 66;
  k9.name = "k9";
  KernelFields f = decode_kernel_record(&k9, *layout_for_record_version(9));
  EXPECT_EQ(f.kind, 10u);
  EXPECT_EQ(f.start, 111u);
  EXPECT_EQ(f.end, 222u);
  EXPECT_EQ(f.device, 3u);
  EXPECT_EQ(f.context, 4u);
  EXPECT_EQ(f.stream, 5u);
  EXPECT_EQ(f.correlation_id, 66u);
  EXPECT_STREQ(f.name, "k9");
  EXPECT_EQ(sizeof k9, layout_for_record_version(9)->size);

  CUpti_ActivityKernel10 k10;
  std::memset(&k10, 0, sizeof k10);
  k10.kind = CUPTI_ACTIVITY_KIND_KERNEL;
  k10.start = 1;
  k10.end = 2;
  k10.deviceId = 7;
  k10.streamId = 13;
  k10.correlationId = 99;
  k10.name = "k10";
  f = decode_kernel_record(&k10, *layout_for_record_version(10));
  EXPECT_EQ(f.kind, 3u);
  EXPECT_EQ(f.device, 7u);
  EXPECT_EQ(f.stream, 13u);
  EXPECT_EQ(f.correlation_id, 99u);
  EXPECT_STREQ(f.name, "k10");
  EXPECT_EQ(sizeof k10, layout_for_record_version(10)->size);
}

class EveryLayout : public ::testing::TestWithParam<int> {};

TEST_P(EveryLayout, SyntheticBufferDecodesToKernelRecords) {
  const KernelRecordLayout l = *layout_for_record_version(GetParam());
  const char* k1 =
      "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIN3c104HalfEEESt5arrayIPcLm1EEEEviT0_T1_";
  const char* k2 = "triton_poi_fused_exp_0";
  std::vector<Rec> recs = {
      {10, 1000, 2000, 0, 1, 7, 41, k1},
      {1, 5, 6, 0, 1, 7, 42, "memcpy"},  // not a kernel: skipped
      {10, 3000, 3500, 1, 2, 13, 43, k2},
  };
  std::vector<uint8_t> buf = make_buffer(l, recs);

  testing::FakeHost host;
  LaunchTracker tracker(&host);
  Walker w{l.size};
  const size_t n = tracker.on_activity_buffer(buf.data(), buf.size(), l, next_fixed, &w);
  EXPECT_EQ(n, 2u);
  ASSERT_EQ(host.kernels.size(), 2u);
  EXPECT_EQ(host.kernels[0].correlation_id, 41u);
  EXPECT_EQ(host.kernels[0].start_ns, 1000);
  EXPECT_EQ(host.kernels[0].end_ns, 2000);
  EXPECT_EQ(host.kernels[0].device, 0);
  EXPECT_EQ(host.kernels[0].stream, 7u);
  EXPECT_NE(host.kernels[0].name.find("c10::Half"), std::string::npos) << host.kernels[0].name;
  EXPECT_EQ(host.kernels[1].correlation_id, 43u);
  EXPECT_EQ(host.kernels[1].device, 1);
  EXPECT_EQ(host.kernels[1].stream, 13u);
  EXPECT_EQ(host.kernels[1].name, k2);
}

INSTANTIATE_TEST_SUITE_P(Cupti12To13, EveryLayout, ::testing::Values(9, 10, 11, 12, 13));

// Walking with the wrong record size must not be what makes the test above pass.
TEST(KernelRecordLayout, WrongStrideMisreadsSecondRecord) {
  const KernelRecordLayout l9 = *layout_for_record_version(9);
  const KernelRecordLayout l13 = *layout_for_record_version(13);
  std::vector<Rec> recs = {{10, 1, 2, 0, 0, 1, 5, "a"}, {10, 3, 4, 0, 0, 1, 6, "b"}};
  std::vector<uint8_t> buf = make_buffer(l13, recs);
  testing::FakeHost host;
  LaunchTracker tracker(&host);
  Walker w{l9.size};
  tracker.on_activity_buffer(buf.data(), buf.size(), l9, next_fixed, &w);
  ASSERT_GE(host.kernels.size(), 1u);
  for (size_t i = 1; i < host.kernels.size(); ++i) EXPECT_NE(host.kernels[i].correlation_id, 6u);
}

}  // namespace
}  // namespace nantrace::cuda
