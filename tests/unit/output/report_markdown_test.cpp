#include "output/report_markdown.h"

#include <regex>

#include <gtest/gtest.h>

#include "output/sample_report.h"

namespace nantrace {
namespace {

using testing_support::make_fault_report;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Lines of the mermaid blocks in md.
std::vector<std::string> mermaid_blocks(const std::string& md) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = md.find("```mermaid\n", pos)) != std::string::npos) {
    size_t end = md.find("\n```", pos);
    out.push_back(md.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

// Items inside "<keyword> [ ... ]" of one chart block.
std::vector<std::string> chart_items(const std::string& block, const std::string& keyword) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(block, m, std::regex(keyword + R"([^\[\n]*\[([^\]]*)\])"))) << block;
  std::vector<std::string> items;
  std::string list = m[1].str(), cur;
  for (char c : list) {
    if (c == ',') {
      items.push_back(cur);
      cur.clear();
    } else if (c != ' ' && c != '"') {
      cur += c;
    }
  }
  if (!cur.empty()) items.push_back(cur);
  return items;
}

TEST(ReportMarkdown, FindingFieldsAppear) {
  const std::string md = render_markdown(make_fault_report());
  const std::string title = md.substr(0, md.find('\n'));
  EXPECT_TRUE(contains(title, "fp16 overflow")) << title;
  EXPECT_TRUE(contains(title, "SynthesizerTrn/dec.ups.1")) << title;
  EXPECT_TRUE(contains(title, "step 200")) << title;
  EXPECT_TRUE(contains(title, "rank 1")) << title;
  for (const char* part : {"| Step | 200 |", "| Phase | forward |", "ConvTranspose1d", "aten::conv\\_transpose1d",
                           "cudnn::conv\\_kernel&lt;\\_\\_half&gt;", "| Tensor | output\\[0\\] |",
                           "| Dtype | float16 |", "| Shape | [4, 256, 8192] |", "| Device | cuda:3 |",
                           "## Why", "exceeded fp16's 65504", "## Recommended fix",
                           "**Run SynthesizerTrn/dec.ups.1 in fp32.**", "- Set \"fp16_run\": false in configs/s2.json",
                           "max |x| grew 2x", "## Evidence", "| **origin** |", "| input | input\\[0\\] |",
                           "| param | bias |", "| replay |", "65504", "81234.5"}) {
    EXPECT_TRUE(contains(md, part)) << "missing: " << part << "\n" << md;
  }
  EXPECT_TRUE(contains(md, "`logs/G_150.pth`"));
  EXPECT_TRUE(contains(md, "Loss-scaler skips handled (not a fault)"));
  EXPECT_TRUE(contains(md, "| 3 | 65536 | 32768 |"));
  EXPECT_TRUE(contains(md, "| 190 | SynthesizerTrn/dec.ups.1 | float16 | 40000 | 0.7 | within 2x of max |"));
  EXPECT_TRUE(contains(md, "| torch | 2.4.0+cu121 |"));
  EXPECT_TRUE(contains(md, "op-level checks enabled"));
  EXPECT_TRUE(contains(md, "201 steps, 98765 checks, 42 with non-finite values"));
}

TEST(ReportMarkdown, PipeInModuleNameIsEscapedInTables) {
  Report r = make_fault_report();
  r.finding.origin.site.module_path = "Model/a|b";
  r.finding.origin.site.module_type = "Odd`Type";
  r.warnings[0].module_path = "Model/a|b\nsecond line";
  const std::string md = render_markdown(r);
  EXPECT_TRUE(contains(md, "| Module | Model/a\\|b (Odd\\`Type) |")) << md;
  // A newline in a host-provided name is shown escaped, so it cannot break a row or heading.
  EXPECT_TRUE(contains(md, "| 190 | Model/a\\|b\\\\nsecond line |")) << md;
  EXPECT_FALSE(contains(md, "a|b\nsecond")) << md;
  // Every table row keeps its column count: count unescaped pipes of the module row.
  const size_t at = md.find("| Module |");
  const std::string row = md.substr(at, md.find('\n', at) - at);
  int pipes = 0;
  for (size_t i = 0; i < row.size(); ++i) pipes += row[i] == '|' && (i == 0 || row[i - 1] != '\\');
  EXPECT_EQ(pipes, 3) << row;
  // The title uses a code span long enough for the backtick in the type.
  EXPECT_TRUE(contains(md.substr(0, md.find('\n')), "``Odd`Type``")) << md.substr(0, md.find('\n'));
}

TEST(ReportMarkdown, HistoriesAreMermaidXyCharts) {
  const std::string md = render_markdown(make_fault_report());
  const auto blocks = mermaid_blocks(md);
  ASSERT_EQ(blocks.size(), 4u) << md;  // culprit magnitude, loss scale, grad norm, loss
  for (const auto& b : blocks) {
    EXPECT_TRUE(contains(b, "xychart-beta")) << b;
    EXPECT_EQ(chart_items(b, "x-axis").size(), chart_items(b, "line").size()) << b;
    // mermaid's number token has no exponent and no NaN.
    for (const auto& v : chart_items(b, "line")) EXPECT_TRUE(std::regex_match(v, std::regex(R"(-?\d+(\.\d+)?)"))) << v;
  }
  EXPECT_TRUE(contains(blocks[0], "Largest finite |x| of SynthesizerTrn/dec.ups.1 (float16 outputs)"));
  // 65504 is float16's largest finite value: saturated or clamped, not a magnitude.
  EXPECT_EQ(chart_items(blocks[0], "line"), (std::vector<std::string>{"8000", "16000", "32000"}));
  EXPECT_TRUE(contains(md, "1 value(s) at the dtype's largest finite magnitude are left out")) << md;
  EXPECT_EQ(chart_items(blocks[1], "x-axis"), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(chart_items(blocks[2], "line"), (std::vector<std::string>{"0.000000001", "1500000"}));
  // The loss chart leaves out the NaN and the inf and says so.
  EXPECT_EQ(chart_items(blocks[3], "x-axis"), (std::vector<std::string>{"198", "199"}));
  EXPECT_TRUE(contains(md, "2 non-finite value(s) are left out (steps 200, 201)")) << md;
  // Each chart says why it is there.
  EXPECT_TRUE(contains(md, "GradScaler halves its scale")) << md;
}

TEST(ReportMarkdown, AConstantSeriesOrAFlagIsOneLineNotAChart) {
  Report r = make_fault_report();
  r.series.clear();
  r.culprit_magnitude.clear();
  r.series["lr"] = {{1, 0.001}, {2, 0.001}, {3, 0.001}};
  r.series["scaler_skipped"] = {{4, 1.0}, {5, 1.0}, {6, 1.0}};
  r.series["loss"] = {{1, 2.0}, {2, 1.5}};
  r.series["grad_underflow_share"] = {{1, 0.0}, {2, 0.0}};  // all 0: a constant, not a flag
  r.finding.found = false;
  const std::string md = render_markdown(r);
  const auto blocks = mermaid_blocks(md);
  ASSERT_EQ(blocks.size(), 1u) << md;  // the loss only
  EXPECT_TRUE(contains(md, "are zero or subnormal**: 0 at every step recorded (steps 1-2).")) << md;
  EXPECT_TRUE(contains(blocks[0], "Loss per step"));
  EXPECT_TRUE(contains(md, "**Learning rate per step**: 0.001 at every step recorded (steps 1-3).")) << md;
  EXPECT_TRUE(contains(md, "**GradScaler skipped the optimizer step**: at steps 4, 5, 6 (3 of 3 steps recorded).")) << md;
}

TEST(ReportMarkdown, SeveralLossesPerStepAreSeparateCharts) {
  Report r = make_fault_report();
  r.series.clear();
  r.culprit_magnitude.clear();
  r.series["loss"] = {{1, 2.0}, {2, 1.5}};
  r.series["loss #2"] = {{1, 0.7}, {2, 0.9}};
  const auto blocks = mermaid_blocks(render_markdown(r));
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_TRUE(contains(blocks[1], "Loss #2 per step"));
  EXPECT_EQ(chart_items(blocks[1], "line"), (std::vector<std::string>{"0.7", "0.9"}));
}

TEST(ReportMarkdown, NoMagnitudeChartBesideBadInput) {
  // The root module's magnitudes say nothing about a batch that arrived holding NaN.
  Report r = make_fault_report();
  r.finding.kind = FaultKind::BadInput;
  EXPECT_FALSE(contains(render_markdown(r), "Largest finite |x|"));
}

TEST(ReportMarkdown, LongHistoriesAreSubsampledKeepingTheLast) {
  Report r = make_fault_report();
  r.series.clear();
  r.culprit_magnitude.clear();
  for (int64_t s = 1; s <= 1003; ++s) r.series["loss_scale"][s] = double(s);
  const auto blocks = mermaid_blocks(render_markdown(r));
  ASSERT_EQ(blocks.size(), 1u);
  const auto steps = chart_items(blocks[0], "x-axis");
  EXPECT_EQ(steps.size(), 50u);
  EXPECT_EQ(steps.front(), "1");
  EXPECT_EQ(steps.back(), "1003");
  // Evenly spread: neighbouring steps 20 or 21 apart.
  for (size_t i = 1; i < steps.size(); ++i) {
    const long gap = std::stol(steps[i]) - std::stol(steps[i - 1]);
    EXPECT_TRUE(gap == 20 || gap == 21) << gap;
  }
}

TEST(ReportMarkdown, SubsampleHelper) {
  std::vector<std::pair<int64_t, double>> pts;
  for (int i = 0; i < 7; ++i) pts.emplace_back(i, i);
  EXPECT_EQ(markdown::subsample(pts, 50).size(), 7u);
  const auto few = markdown::subsample(pts, 3);
  ASSERT_EQ(few.size(), 3u);
  EXPECT_EQ(few[0].first, 0);
  EXPECT_EQ(few[1].first, 3);
  EXPECT_EQ(few[2].first, 6);
}

TEST(ReportMarkdown, ChartNumbers) {
  EXPECT_EQ(markdown::chart_number(65536), "65536");
  EXPECT_EQ(markdown::chart_number(0.5), "0.5");
  EXPECT_EQ(markdown::chart_number(-3.25), "-3.25");
  EXPECT_EQ(markdown::chart_number(1.5e-7), "0.00000015");
  EXPECT_EQ(markdown::chart_number(123456789.0), "123456789");
  EXPECT_EQ(markdown::chart_number(0), "0");
}

TEST(ReportMarkdown, HealthyRunSaysSoPlainly) {
  Report r;
  r.steps_seen = 50;
  r.checks = 1234;
  r.benign_skips = {{2, 65536.0, 32768.0, ""}};
  r.skips_recovered = true;
  r.series["loss"] = {{1, 3.0}, {2, 2.0}};
  const std::string md = render_markdown(r);
  EXPECT_TRUE(contains(md, "# nantrace: no NaN or Inf seen")) << md;
  EXPECT_TRUE(contains(md, "No non-finite value (NaN or ±Inf) was seen: 1234 checks over 50 steps")) << md;
  EXPECT_TRUE(contains(md, "handled, not a fault"));
  EXPECT_FALSE(contains(md, "## Why"));
  EXPECT_FALSE(contains(md, "Last checkpoint"));
  EXPECT_EQ(mermaid_blocks(md).size(), 1u);
}

TEST(ReportMarkdown, SkipsAreCalledRecoveredOnlyWhenTheLossCameBack) {
  Report r;
  r.benign_skips = {{2, 65536.0, 32768.0, ""}};
  r.skips_recovered = false;
  EXPECT_FALSE(contains(render_markdown(r), "came back to its level"));
  EXPECT_TRUE(contains(render_markdown(r), "did not come back"));
  r.skips_recovered.reset();
  EXPECT_TRUE(contains(render_markdown(r), "is not known"));
  r.blowup = LossBlowup{6, 0.02, 2e6, 8, "Net/fc2", 1e4};
  const std::string md = render_markdown(r);
  EXPECT_TRUE(contains(md, "### Loss blow-up without NaN")) << md;
  EXPECT_TRUE(contains(md, "at step 6")) << md;
  EXPECT_TRUE(contains(md, "`Net/fc2`")) << md;
}

TEST(ReportMarkdown, StepsSayWhatTheyCountAndTheScriptsOwnNumber) {
  Report r = make_fault_report();
  std::string md = render_markdown(r);
  EXPECT_TRUE(contains(md, "Steps are training iterations, counted from 1.")) << md;
  EXPECT_TRUE(contains(md, "| Step | 200 |")) << md;
  r.step_counter = "global_step";
  r.step_counter_offset = -1;
  md = render_markdown(r);
  EXPECT_TRUE(contains(md, "| Step | 200 (the script's `global_step` 199) |")) << md;
  EXPECT_TRUE(contains(md, "the script's own `global_step` is the step -1.")) << md;
}

TEST(ReportMarkdown, EnvironmentValuesAreRedactedAgain) {
  Report r;
  r.environment["argv"] = "python s2_train.py --api-key=supersecretvalue123 -c configs/s2.json";
  r.environment["proxy"] = "https://alice:hunter2@proxy.example.com:8080";
  const std::string md = render_markdown(r);
  EXPECT_FALSE(contains(md, "supersecretvalue123")) << md;
  EXPECT_FALSE(contains(md, "hunter2")) << md;
  EXPECT_TRUE(contains(md, "configs/s2.json"));
  EXPECT_TRUE(contains(md, "\\[REDACTED\\]"));
}

TEST(ReportMarkdown, CellAndCodeEscaping) {
  EXPECT_EQ(markdown::cell("a|b"), "a\\|b");
  EXPECT_EQ(markdown::cell("x\ny"), "x<br>y");
  EXPECT_EQ(markdown::cell("`t`"), "\\`t\\`");
  EXPECT_EQ(markdown::cell("<lambda>"), "&lt;lambda&gt;");
  EXPECT_EQ(markdown::code("plain"), "`plain`");
  EXPECT_EQ(markdown::code("a`b"), "``a`b``");
  EXPECT_EQ(markdown::code("`edge"), "`` `edge ``");
  EXPECT_EQ(markdown::code("two\nlines"), "`two lines`");
}

}  // namespace
}  // namespace nantrace
