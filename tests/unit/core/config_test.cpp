#include "core/config.h"

#include <gtest/gtest.h>

#include <map>

namespace nantrace {
namespace {

Config parse(const std::map<std::string, std::string>& env, std::vector<std::string>* errors) {
  return parse_config(
      [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      errors);
}

TEST(Config, DefaultsWhenNothingIsSet) {
  std::vector<std::string> errors;
  Config c = parse({}, &errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(c.check_level, CheckLevel::Module);
  EXPECT_EQ(c.every, kEveryAuto);
  EXPECT_FALSE(c.disabled);
  EXPECT_EQ(c.output_root, "nantrace_runs");
}

TEST(Config, ValidValuesAreTaken) {
  std::vector<std::string> errors;
  Config c = parse({{"NANTRACE_CHECK", "OP"}, {"NANTRACE_EVERY", "10"}, {"NANTRACE_DIR", "/tmp/x"},
                    {"NANTRACE_WINDOW", "4"}, {"NANTRACE_LOG", "warn"}, {"NANTRACE_CUDA", "off"},
                    {"NANTRACE_DISABLE", "yes"}},
                   &errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(c.check_level, CheckLevel::Op);
  EXPECT_EQ(c.every, 10);
  EXPECT_EQ(c.output_root, "/tmp/x");
  EXPECT_EQ(c.window, 4);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_FALSE(c.cuda);
  EXPECT_TRUE(c.disabled);
}

TEST(Config, EveryAutoIsTheDefaultAndAcceptedByName) {
  EXPECT_EQ(parse({}, nullptr).every, kEveryAuto);
  std::vector<std::string> errors;
  EXPECT_EQ(parse({{"NANTRACE_EVERY", "AUTO"}}, &errors).every, kEveryAuto);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(parse({{"NANTRACE_EVERY", "16"}}, nullptr).every, 16);
  parse({{"NANTRACE_EVERY", "sometimes"}}, &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("auto or a whole number from 1 to 1000000"), std::string::npos) << errors[0];
}

TEST(Config, EveryInvalidValueGivesOneLineNamingVariableAndAcceptedValues) {
  const std::map<std::string, std::string> bad = {
      {"NANTRACE_CHECK", "everything"}, {"NANTRACE_EVERY", "0"},     {"NANTRACE_WINDOW", "-3"},
      {"NANTRACE_DETAIL_STEPS", "x"},   {"NANTRACE_MAX_TRACE_MB", "1e9"}, {"NANTRACE_WARN_STEPS", "12abc"},
      {"NANTRACE_LOG", "loud"},         {"NANTRACE_CUDA", "maybe"},  {"NANTRACE_DISABLE", "perhaps"},
      {"NANTRACE_DIR", ""}};
  std::vector<std::string> errors;
  Config c = parse(bad, &errors);
  EXPECT_EQ(errors.size(), bad.size());
  for (auto& e : errors) {
    EXPECT_EQ(e.find('\n'), std::string::npos);
    EXPECT_NE(e.find("expected"), std::string::npos) << e;
    EXPECT_NE(e.find("using"), std::string::npos) << e;
  }
  // Defaults survive.
  EXPECT_EQ(c.check_level, CheckLevel::Module);
  EXPECT_EQ(c.every, kEveryAuto);
  EXPECT_FALSE(c.disabled);
}

TEST(Config, HostileValuesStayOneShortLine) {
  std::vector<std::string> errors;
  parse({{"NANTRACE_EVERY", std::string(500, '9') + "\n\x1b[31m"}}, &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_LT(errors[0].size(), 200u);
  EXPECT_EQ(errors[0].find('\n'), std::string::npos);
  EXPECT_EQ(errors[0].find('\x1b'), std::string::npos);
}

TEST(Config, IntParserIsStrict) {
  int64_t v = 0;
  EXPECT_TRUE(parse_int_in_range("42", 1, 100, &v));
  EXPECT_EQ(v, 42);
  EXPECT_FALSE(parse_int_in_range("42 ", 1, 100, &v));
  EXPECT_FALSE(parse_int_in_range("", 1, 100, &v));
  EXPECT_FALSE(parse_int_in_range("101", 1, 100, &v));
  EXPECT_FALSE(parse_int_in_range("99999999999999999999999", 1, 100, &v));
}

}  // namespace
}  // namespace nantrace
