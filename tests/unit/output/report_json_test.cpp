#include "output/report_json.h"

#include <cmath>

#include <gtest/gtest.h>

#include "output/sample_report.h"
#include "output/strict_json.h"

namespace nantrace {
namespace {

using nlohmann::json;
using testing_support::make_fault_report;

void expect_stats_eq(const TensorStats& a, const TensorStats& b) {
  EXPECT_EQ(a.numel, b.numel);
  EXPECT_EQ(a.nan_count, b.nan_count);
  EXPECT_EQ(a.posinf_count, b.posinf_count);
  EXPECT_EQ(a.neginf_count, b.neginf_count);
  EXPECT_EQ(a.zero_count, b.zero_count);
  EXPECT_EQ(a.subnormal_count, b.subnormal_count);
  EXPECT_EQ(a.max_abs_finite, b.max_abs_finite);
  EXPECT_EQ(a.first_bad_index, b.first_bad_index);
  for (int k = 0; k < NT_HEADROOM_BINS; ++k) EXPECT_EQ(a.headroom_hist[k], b.headroom_hist[k]) << "bin " << k;
}

void expect_evidence_eq(const std::vector<CheckRecord>& a, const std::vector<CheckRecord>& b, Role role) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].site.tensor_name, b[i].site.tensor_name);
    EXPECT_EQ(a[i].site.op, b[i].site.op);
    EXPECT_EQ(a[i].dtype, b[i].dtype);
    EXPECT_EQ(a[i].shape, b[i].shape);
    EXPECT_EQ(b[i].site.role, role);
    expect_stats_eq(a[i].stats, b[i].stats);
  }
}

TEST(ReportJson, SchemaFieldsAndNames) {
  const Report r = make_fault_report();
  const json j = report_to_json(r);
  EXPECT_EQ(j["nantrace_report_version"], 1);
  EXPECT_EQ(j["rank"], 1);
  EXPECT_EQ(j["world_size"], 2);
  const json& f = j["finding"];
  EXPECT_EQ(f["found"], true);
  EXPECT_EQ(f["kind"], "fp16_overflow");
  EXPECT_EQ(f["kind_text"], describe(FaultKind::Fp16Overflow));
  EXPECT_EQ(f["step"], 200);
  EXPECT_EQ(f["phase"], "forward");
  EXPECT_EQ(f["module_path"], "SynthesizerTrn/dec.ups.1");
  EXPECT_EQ(f["module_type"], "ConvTranspose1d");
  EXPECT_EQ(f["op"], "aten::conv_transpose1d");
  EXPECT_EQ(f["kernels"], json::array({"void cudnn::conv_kernel<__half>(...)"}));
  EXPECT_EQ(f["tensor"], "output[0]");
  EXPECT_EQ(f["dtype"], "float16");
  EXPECT_EQ(f["device"], "cuda:3");
  EXPECT_EQ(f["shape"], json::array({4, 256, 8192}));
  EXPECT_EQ(f["seq"], 123456);
  EXPECT_EQ(f["stats"]["posinf"], 12);
  EXPECT_EQ(f["stats"]["first_bad_index"], 17);
  EXPECT_EQ(f["stats"]["headroom_hist"].size(), size_t(NT_HEADROOM_BINS));
  EXPECT_EQ(f["inputs"][0]["name"], "input[0]");
  EXPECT_EQ(f["inputs"][0]["op"], nullptr);
  EXPECT_EQ(f["params"][1]["name"], "bias");
  EXPECT_EQ(f["replay"][0]["stats"]["max_abs_finite"], 81234.5);
  EXPECT_EQ(f["recommendation"]["actions"].size(), 2u);
  EXPECT_EQ(j["benign_skips"][0]["site"], "SynthesizerTrn/dec.ups.0 grad_output[0]");
  EXPECT_EQ(j["warnings"][0]["binades_left"], 0.7);
  EXPECT_EQ(j["series"]["loss"][2], json::array({200, "nan"}));
  EXPECT_EQ(j["series"]["loss"][3], json::array({201, "inf"}));
  EXPECT_EQ(j["culprit_magnitude"][3], json::array({200, 65504.0}));
  EXPECT_EQ(j["culprit_dtype"], "float16");
  EXPECT_EQ(j["last_checkpoint_before_fault"], "logs/G_150.pth");
  EXPECT_EQ(j["environment"]["torch"], "2.4.0+cu121");
  EXPECT_EQ(j["summary"], (json{{"steps", 201}, {"checks", 98765}, {"nonfinite_checks", 42}}));
  EXPECT_EQ(j["notes"].size(), 1u);
}

TEST(ReportJson, TextIsStrictJson) {
  const std::string text = report_to_json_text(make_fault_report());
  EXPECT_EQ(text.find("NaN"), std::string::npos);
  EXPECT_NO_THROW(json::parse(text));
}

TEST(ReportJson, RoundTrip) {
  const Report r = make_fault_report();
  Report back;
  std::string err;
  ASSERT_TRUE(report_from_json_text(report_to_json_text(r), &back, &err)) << err;

  EXPECT_EQ(back.run_dir, r.run_dir);
  EXPECT_EQ(back.rank, r.rank);
  EXPECT_EQ(back.world_size, r.world_size);
  const Finding &a = r.finding, &b = back.finding;
  EXPECT_TRUE(b.found);
  EXPECT_EQ(b.kind, a.kind);
  EXPECT_EQ(b.origin.step, a.origin.step);
  EXPECT_EQ(b.origin.seq, a.origin.seq);
  EXPECT_EQ(b.origin.ts_ns, a.origin.ts_ns);
  EXPECT_EQ(b.origin.site.phase, a.origin.site.phase);
  EXPECT_EQ(b.origin.site.module_path, a.origin.site.module_path);
  EXPECT_EQ(b.origin.site.module_type, a.origin.site.module_type);
  EXPECT_EQ(b.origin.site.tensor_name, a.origin.site.tensor_name);
  EXPECT_EQ(b.origin.dtype, a.origin.dtype);
  EXPECT_EQ(b.origin.device, a.origin.device);
  EXPECT_EQ(b.origin.device_index, a.origin.device_index);
  EXPECT_EQ(b.origin.shape, a.origin.shape);
  expect_stats_eq(a.origin.stats, b.origin.stats);
  EXPECT_EQ(b.op, a.op);
  EXPECT_EQ(b.kernels, a.kernels);
  expect_evidence_eq(a.inputs, b.inputs, Role::Input);
  expect_evidence_eq(a.params, b.params, Role::Param);
  expect_evidence_eq(a.replay, b.replay, Role::Replay);
  EXPECT_EQ(b.explanation, a.explanation);
  EXPECT_EQ(b.recommendation.headline, a.recommendation.headline);
  EXPECT_EQ(b.recommendation.actions, a.recommendation.actions);
  EXPECT_EQ(b.recommendation.evidence, a.recommendation.evidence);
  ASSERT_EQ(back.benign_skips.size(), r.benign_skips.size());
  EXPECT_EQ(back.benign_skips[1].scale_after, 16384.0);
  EXPECT_EQ(back.benign_skips[0].first_site, r.benign_skips[0].first_site);
  ASSERT_EQ(back.warnings.size(), 1u);
  EXPECT_EQ(back.warnings[0].module_path, r.warnings[0].module_path);
  EXPECT_EQ(back.warnings[0].dtype, DType::F16);
  EXPECT_EQ(back.warnings[0].reason, r.warnings[0].reason);
  EXPECT_EQ(back.series.size(), r.series.size());
  EXPECT_TRUE(std::isnan(back.series["loss"][200]));
  EXPECT_EQ(back.series["loss"][201], HUGE_VAL);
  EXPECT_EQ(back.series["grad_norm"], r.series.at("grad_norm"));
  EXPECT_EQ(back.culprit_magnitude, r.culprit_magnitude);
  EXPECT_EQ(back.last_checkpoint_before_fault, r.last_checkpoint_before_fault);
  EXPECT_EQ(back.environment, r.environment);
  EXPECT_EQ(back.steps_seen, r.steps_seen);
  EXPECT_EQ(back.checks, r.checks);
  EXPECT_EQ(back.nonfinite_checks, r.nonfinite_checks);
  EXPECT_EQ(back.notes, r.notes);
  // And the whole document is a fixed point.
  EXPECT_EQ(strict_json::dump(report_to_json(back)), strict_json::dump(report_to_json(r)));
}

TEST(ReportJson, AFindingLocatedAtARecurrenceKeepsBothMomentsThroughARoundTrip) {
  Report r = make_fault_report();
  CheckRecord seen = r.finding.origin;
  seen.step = 199;
  seen.site.phase = Phase::Loss;
  seen.site.module_path = "";
  seen.site.tensor_name = "loss";
  r.finding.first_seen = seen;
  r.finding.located_step = 200;
  r.finding.op_pinned_step = 201;
  const json j = report_to_json(r);
  EXPECT_EQ(j["finding"]["step"], 199);        // the fault's step: when it was first seen
  EXPECT_EQ(j["finding"]["origin_step"], 200);  // the step the origin's numbers come from
  EXPECT_EQ(j["finding"]["located_at_step"], 200);
  EXPECT_EQ(j["finding"]["op_pinned_at_step"], 201);
  EXPECT_EQ(j["finding"]["first_seen"]["phase"], "loss");
  Report back;
  std::string error;
  ASSERT_TRUE(report_from_json_text(report_to_json_text(r), &back, &error)) << error;
  ASSERT_TRUE(back.finding.first_seen.has_value());
  EXPECT_EQ(back.finding.step(), 199);
  EXPECT_EQ(back.finding.origin.step, 200);
  EXPECT_EQ(back.finding.located_step, 200);
  EXPECT_EQ(back.finding.op_pinned_step, 201);
  EXPECT_EQ(strict_json::dump(report_to_json(back)), strict_json::dump(report_to_json(r)));
}

TEST(ReportJson, ABackwardBirthAndAnEvaluationFindingSurviveARoundTrip) {
  Report r = make_fault_report();
  r.finding.origin.site.phase = Phase::Backward;
  r.finding.backward = BackwardBirth{"Net/proj", "grad_output", "NormalizeBackward", {"Net/norm"}};
  CheckRecord ev = r.finding.origin;
  ev.site.phase = Phase::Evaluation;
  ev.site.role = Role::Input;
  ev.site.tensor_name = "args[0]";
  ev.step = 3;
  r.evaluation = ev;
  r.evaluation_nonfinite_checks = 7;
  const json j = report_to_json(r);
  EXPECT_EQ(j["finding"]["backward"]["seen_at"], "Net/proj");
  EXPECT_EQ(j["finding"]["backward"]["node"], "NormalizeBackward");
  EXPECT_EQ(j["evaluation"]["what"], "batch");
  EXPECT_EQ(j["evaluation"]["step"], 3);
  Report back;
  std::string error;
  ASSERT_TRUE(report_from_json_text(report_to_json_text(r), &back, &error)) << error;
  ASSERT_TRUE(back.finding.backward.has_value());
  EXPECT_EQ(back.finding.backward->consumers, std::vector<std::string>{"Net/norm"});
  ASSERT_TRUE(back.evaluation.has_value());
  EXPECT_EQ(back.evaluation->site.role, Role::Input);
  EXPECT_EQ(back.evaluation_nonfinite_checks, 7);
  EXPECT_EQ(strict_json::dump(report_to_json(back)), strict_json::dump(report_to_json(r)));
  // A wrong "what" is named.
  json bad = j;
  bad["evaluation"]["what"] = "loss";
  EXPECT_FALSE(report_from_json_text(bad.dump(), &back, &error));
  EXPECT_NE(error.find("evaluation.what"), std::string::npos) << error;
}

TEST(ReportJson, HealthyRunHasMinimalFinding) {
  Report r;
  r.steps_seen = 10;
  r.checks = 100;
  json j = report_to_json(r);
  EXPECT_EQ(j["finding"], (json{{"found", false}, {"kind", "none"}}));
  EXPECT_EQ(j["last_checkpoint_before_fault"], nullptr);
  r.finding.recommendation.headline = "Nothing to fix.";
  j = report_to_json(r);
  EXPECT_EQ(j["finding"]["recommendation"]["headline"], "Nothing to fix.");
  Report back;
  std::string err;
  ASSERT_TRUE(report_from_json(j, &back, &err)) << err;
  EXPECT_FALSE(back.finding.found);
  EXPECT_EQ(back.finding.kind, FaultKind::None);
  EXPECT_EQ(back.finding.recommendation.headline, "Nothing to fix.");
  EXPECT_EQ(back.checks, 100u);
}

TEST(ReportJson, EnvironmentIsRedactedAgain) {
  Report r;
  r.environment["argv"] = "train.py --hf-token hf_abcdefghijklmnopqrstuvwxyz0123";
  const json j = report_to_json(r);
  const std::string argv = j["environment"]["argv"];
  EXPECT_EQ(argv.find("hf_abcdef"), std::string::npos) << argv;
  EXPECT_NE(argv.find("[REDACTED]"), std::string::npos);
}

// Each corruption must be refused with a message naming the field.
struct Corruption {
  const char* what;
  std::function<void(json&)> apply;
  const char* expect_in_error;
};

TEST(ReportJson, WrongTypesAndMissingFieldsAreNamed) {
  const std::vector<Corruption> cases = {
      {"missing rank", [](json& j) { j.erase("rank"); }, "'rank'"},
      {"rank as string", [](json& j) { j["rank"] = "1"; }, "field 'rank': expected an integer, got string"},
      {"missing finding", [](json& j) { j.erase("finding"); }, "'finding'"},
      {"found not bool", [](json& j) { j["finding"]["found"] = 1; }, "'finding.found'"},
      {"unknown kind", [](json& j) { j["finding"]["kind"] = "meteor"; }, "'finding.kind'"},
      {"unknown phase", [](json& j) { j["finding"]["phase"] = "lunch"; }, "'finding.phase'"},
      {"bad dtype", [](json& j) { j["finding"]["dtype"] = "int8"; }, "'finding.dtype'"},
      {"bad device", [](json& j) { j["finding"]["device"] = "tpu:0"; }, "'finding.device'"},
      {"negative count", [](json& j) { j["finding"]["stats"]["nan"] = -3; }, "'finding.stats.nan'"},
      {"count as float", [](json& j) { j["finding"]["stats"]["zeros"] = 1.5; }, "'finding.stats.zeros'"},
      {"missing stats field", [](json& j) { j["finding"]["stats"].erase("numel"); }, "'finding.stats.numel'"},
      {"hist too long", [](json& j) { j["finding"]["stats"]["headroom_hist"].push_back(1); },
       "finding.stats.headroom_hist"},
      {"shape element", [](json& j) { j["finding"]["shape"][1] = "x"; }, "'finding.shape[1]'"},
      {"evidence not object", [](json& j) { j["finding"]["inputs"][0] = 5; }, "'finding.inputs[0]'"},
      {"evidence stats", [](json& j) { j["finding"]["params"][1]["stats"]["max_abs_finite"] = "big"; },
       "'finding.params[1].stats.max_abs_finite'"},
      {"action not string", [](json& j) { j["finding"]["recommendation"]["actions"][1] = 7; },
       "'finding.recommendation.actions[1]'"},
      {"series point", [](json& j) { j["series"]["loss"][0] = json::array({1}); }, "'series.loss[0]'"},
      {"culprit value", [](json& j) { j["culprit_magnitude"][0][1] = true; }, "'culprit_magnitude[0][1]'"},
      {"skip step", [](json& j) { j["benign_skips"][1]["step"] = nullptr; }, "'benign_skips[1].step'"},
      {"warning dtype", [](json& j) { j["warnings"][0].erase("dtype"); }, "'warnings[0].dtype'"},
      {"env value", [](json& j) { j["environment"]["gpu"] = 3; }, "'environment.gpu'"},
      {"summary", [](json& j) { j["summary"]["checks"] = "many"; }, "'summary.checks'"},
      {"version", [](json& j) { j["nantrace_report_version"] = 2; }, "nantrace_report_version"},
      {"not an object", [](json& j) { j = json::array(); }, "top level"},
  };
  const json good = report_to_json(make_fault_report());
  for (const auto& c : cases) {
    json j = good;
    c.apply(j);
    Report out;
    out.run_dir = "untouched";
    std::string err;
    EXPECT_FALSE(report_from_json(j, &out, &err)) << c.what;
    EXPECT_NE(err.find(c.expect_in_error), std::string::npos) << c.what << ": " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "one line: " << err;
    EXPECT_EQ(out.run_dir, "untouched") << c.what << ": *out is left alone on failure";
  }
}

TEST(ReportJson, TruncatedTextIsRefusedAtEveryCut) {
  const std::string text = report_to_json_text(make_fault_report());
  // Every proper prefix (a rank killed while writing, a disk that filled) must be refused.
  for (size_t cut = 0; cut < text.size() - 2; cut += 37) {
    Report out;
    std::string err;
    EXPECT_FALSE(report_from_json_text(text.substr(0, cut), &out, &err)) << "cut at " << cut;
    EXPECT_NE(err.find("not valid JSON"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace nantrace
