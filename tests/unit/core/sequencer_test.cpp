#include "core/sequencer.h"

#include <gtest/gtest.h>

namespace nantrace {
namespace {

SequencedItem check_item(bool ready) {
  SequencedItem i;
  i.kind = SequencedItem::Kind::Check;
  i.ready = ready;
  return i;
}

TEST(Sequencer, ReleasesInProgramOrderWhenDeviceResultsArriveLate) {
  Sequencer s;
  std::vector<uint64_t> order;
  auto emit = [&](SequencedItem& i) { order.push_back(i.check.seq); };
  const uint64_t a = s.reserve(), b = s.reserve(), c = s.reserve();
  auto ia = check_item(false);
  ia.check.seq = a;
  auto ib = check_item(true);
  ib.check.seq = b;
  auto ic = check_item(false);
  ic.check.seq = c;
  s.put(a, ia);
  s.put(b, ib);
  s.put(c, ic);
  s.drain(emit);
  EXPECT_TRUE(order.empty());  // a is still on the device
  TensorStats st{};
  st.nan_count = 1;
  s.complete(c, st, {"k"});
  s.drain(emit);
  EXPECT_TRUE(order.empty());
  s.complete(a, TensorStats{}, {});
  s.drain(emit);
  EXPECT_EQ(order, (std::vector<uint64_t>{a, b, c}));
  EXPECT_EQ(s.pending(), 0u);
}

TEST(Sequencer, FailAllPendingReleasesEverythingAsNotChecked) {
  Sequencer s;
  const uint64_t a = s.reserve();
  s.put(a, check_item(false));
  std::vector<bool> checked;
  s.fail_all_pending("exit");
  s.drain([&](SequencedItem& i) { checked.push_back(i.check.checked); });
  ASSERT_EQ(checked.size(), 1u);
  EXPECT_FALSE(checked[0]);
}

}  // namespace
}  // namespace nantrace
