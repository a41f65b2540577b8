// The shared text conventions: numbers, control characters, devices, non-finite JSON numbers.
#include "core/text.h"

#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace nantrace {
namespace {

TEST(Text, NumbersHaveSixSignificantDigitsAndWordsForNonFinite) {
  EXPECT_EQ(text::number(0.0499938), "0.0499938");
  EXPECT_EQ(text::number(65504), "65504");
  EXPECT_EQ(text::number(3.4028234663852886e38), "3.40282e+38");
  EXPECT_EQ(text::number(std::nan("")), "nan");
  EXPECT_EQ(text::number(-std::nan("")), "nan");
  EXPECT_EQ(text::number(-HUGE_VAL), "-inf");
}

TEST(Text, ControlCharactersStayOnOneLine) {
  EXPECT_EQ(text::escape_controls("a\nb\rc\td\x01"), "a\\nb\\rc\\td?");
  EXPECT_EQ(text::escape_controls("a\tb", /*keep_tabs=*/true), "a\tb");
}

TEST(Text, Devices) {
  EXPECT_EQ(text::device(Device::CUDA, 1), "cuda:1");
  EXPECT_EQ(text::device(Device::CPU, 0), "cpu");
  EXPECT_STREQ(text::device_type(Device::CUDA), "cuda");
}

TEST(Text, NonFiniteJsonNumbersReadBack) {
  EXPECT_TRUE(std::isnan(*text::json_to_double(nlohmann::json("nan"))));
  EXPECT_EQ(*text::json_to_double(nlohmann::json("-inf")), -HUGE_VAL);
  EXPECT_EQ(*text::json_to_double(nlohmann::json(2.5)), 2.5);
  EXPECT_FALSE(text::json_to_double(nlohmann::json("Infinity")));
  EXPECT_FALSE(text::json_to_double(nlohmann::json(nullptr)));
}

}  // namespace
}  // namespace nantrace
