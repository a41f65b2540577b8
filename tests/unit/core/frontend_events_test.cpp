// One test per event kind: what the frontend writes (the schema beside nt_event_kind in
// nantrace.h) decodes to the typed struct the analysis uses; wrong types read as missing.
#include "core/frontend_events.h"

#include <cmath>

#include <gtest/gtest.h>

#include "nantrace/nantrace.h"

namespace nantrace {
namespace {

using namespace events;

EventRecord rec(int32_t kind, const std::string& name, const std::string& detail) {
  EventRecord r;
  r.kind = kind;
  r.name = name;
  r.detail_json = detail;
  r.step = 4;
  return r;
}

template <class T>
T as(const EventRecord& r) {
  std::string error;
  const auto e = decode(r, &error);
  EXPECT_TRUE(e.has_value()) << error;
  EXPECT_TRUE(e && std::holds_alternative<T>(*e)) << "kind " << r.kind;
  return e && std::holds_alternative<T>(*e) ? std::get<T>(*e) : T{};
}

TEST(FrontendEvents, NoteIsFreeText) {
  const Note n = as<Note>(rec(NT_EVENT_NOTE, "config_unreadable", "could not read s2.json: no such file"));
  EXPECT_EQ(n.label, "config_unreadable");
  EXPECT_EQ(n.text, "could not read s2.json: no such file");
  EXPECT_EQ(as<Note>(rec(NT_EVENT_NOTE, "x", R"({"module":"a"})")).text, R"({"module":"a"})") << "not parsed";
}

TEST(FrontendEvents, OptimizerStep) {
  const OptimizerStep o = as<OptimizerStep>(rec(NT_EVENT_OPTIMIZER_STEP, "AdamW", R"({"lr":0.0002,"skipped":true})"));
  EXPECT_EQ(o.label, "AdamW");
  ASSERT_TRUE(o.lr);
  EXPECT_DOUBLE_EQ(*o.lr, 0.0002);
  EXPECT_TRUE(o.skipped);
  const OptimizerStep d = as<OptimizerStep>(rec(NT_EVENT_OPTIMIZER_STEP, "SGD", R"({"lr":"fast","skipped":1})"));
  EXPECT_FALSE(d.lr);
  EXPECT_FALSE(d.skipped);
}

TEST(FrontendEvents, ScalerUpdate) {
  const ScalerUpdate u = as<ScalerUpdate>(rec(NT_EVENT_SCALER_UPDATE, "", R"({"scale_before":65536,"scale_after":32768})"));
  EXPECT_EQ(u.scale_before, 65536);
  EXPECT_EQ(u.scale_after, 32768);
  EXPECT_TRUE(u.found_inf) << "defaults to scale_after < scale_before";
  EXPECT_FALSE(as<ScalerUpdate>(rec(NT_EVENT_SCALER_UPDATE, "", R"({"scale_before":1,"scale_after":0.5,"found_inf":false})"))
                   .found_inf);
}

TEST(FrontendEvents, CheckpointAndReproSaved) {
  EXPECT_EQ(as<Checkpoint>(rec(NT_EVENT_CHECKPOINT, "logs/G_100.pth", "")).path, "logs/G_100.pth");
  EXPECT_EQ(as<ReproSaved>(rec(NT_EVENT_REPRO_SAVED, "run/repro/origin_module.pt", "")).path, "run/repro/origin_module.pt");
}

TEST(FrontendEvents, Config) {
  const Config c = as<Config>(rec(NT_EVENT_CONFIG, "/x/s2.json",
                                  R"({"trainer":"GPT-SoVITS s2_train.py","fp16_key":"train.fp16_run","fp16":true,"lr_key":"train.learning_rate","learning_rate":0.02,"step_counter":"global_step","step_counter_offset":-1})"));
  EXPECT_EQ(c.path, "/x/s2.json");
  EXPECT_EQ(c.trainer, "GPT-SoVITS s2_train.py");
  EXPECT_EQ(c.fp16_key, "train.fp16_run");
  EXPECT_EQ(c.fp16, std::optional<bool>(true));
  EXPECT_EQ(c.lr_key, "train.learning_rate");
  EXPECT_EQ(c.learning_rate, std::optional<double>(0.02));
  EXPECT_EQ(c.step_counter, "global_step");
  EXPECT_EQ(c.step_counter_offset, std::optional<int64_t>(-1));
}

TEST(FrontendEvents, Warning) {
  const Warning w = as<Warning>(rec(NT_EVENT_WARNING, "hooks_disabled", R"({"reason":"x"})"));
  EXPECT_EQ(w.label, "hooks_disabled");
  EXPECT_EQ(w.detail["reason"], "x");
}

TEST(FrontendEvents, CheckMode) {
  const CheckMode m = as<CheckMode>(rec(NT_EVENT_CHECK_MODE, "", R"({"module":"Net/enc","level":"op","reason":"origin"})"));
  EXPECT_EQ(m.module, "Net/enc");
  EXPECT_EQ(m.level, "op");
  EXPECT_EQ(m.reason, "origin");
}

TEST(FrontendEvents, BackwardOrigin) {
  const BackwardOrigin b = as<BackwardOrigin>(rec(NT_EVENT_BACKWARD_ORIGIN, "backward_origin",
      R"({"module":"Net/norm","module_type":"RowNorm","node":"NormalizeBackward","seen_at":"Net/proj","consumers":["Net/norm",3]})"));
  EXPECT_EQ(b.module, "Net/norm");
  EXPECT_EQ(b.module_type, "RowNorm");
  EXPECT_EQ(b.node, "NormalizeBackward");
  EXPECT_EQ(b.seen_at, "Net/proj");
  ASSERT_EQ(b.consumers.size(), 1u);  // the number is not a path: left out
  EXPECT_EQ(as<BackwardOrigin>(rec(NT_EVENT_BACKWARD_ORIGIN, "", R"({"node":null})")).node, "");
}

TEST(FrontendEvents, OriginInCode) {
  const OriginInCode o = as<OriginInCode>(rec(NT_EVENT_ORIGIN_IN_CODE, "origin_in_code",
                                              R"({"module":"Net/dec.res","module_type":"ResBlock","relay":"Net/dec.res.conv","recurrence":true})"));
  EXPECT_EQ(o.module, "Net/dec.res");
  EXPECT_EQ(o.module_type, "ResBlock");
  EXPECT_EQ(o.relay, "Net/dec.res.conv");
  EXPECT_TRUE(o.recurrence);
  EXPECT_FALSE(as<OriginInCode>(rec(NT_EVENT_ORIGIN_IN_CODE, "", R"({"module":"Net"})")).recurrence);
}

TEST(FrontendEvents, ReplayBeginAndEnd) {
  const ReplayBegin b = as<ReplayBegin>(rec(NT_EVENT_REPLAY_BEGIN, "", R"({"module":"Net/enc","step":7,"recurrence":true})"));
  EXPECT_EQ(b.module, "Net/enc");
  EXPECT_EQ(b.step, std::optional<int64_t>(7));
  EXPECT_TRUE(b.recurrence);
  EXPECT_FALSE(as<ReplayBegin>(rec(NT_EVENT_REPLAY_BEGIN, "", R"({"module":"Net","step":"7"})")).step);
  EXPECT_EQ(as<ReplayEnd>(rec(NT_EVENT_REPLAY_END, "", R"({"module":"Net","op":"aten::exp"})")).op, "aten::exp");
  EXPECT_EQ(as<ReplayEnd>(rec(NT_EVENT_REPLAY_END, "", R"({"module":"Net","op":null})")).op, "");
}

TEST(FrontendEvents, FixCheck) {
  const FixCheck f = as<FixCheck>(rec(NT_EVENT_FIX_CHECK, "", R"({"variant":"bf16","module":"Net","finite":false,"max_abs":"inf"})"));
  EXPECT_EQ(f.variant, "bf16");
  EXPECT_EQ(f.module, "Net");
  EXPECT_EQ(f.finite, std::optional<bool>(false));
  EXPECT_TRUE(std::isinf(f.max_abs));
  const FixCheck e = as<FixCheck>(rec(NT_EVENT_FIX_CHECK, "", R"({"error":"shape mismatch"})"));
  EXPECT_EQ(e.variant, "fp32") << "the default variant";
  EXPECT_FALSE(e.finite);
  EXPECT_EQ(e.error, "shape mismatch");
}

TEST(FrontendEvents, EvidenceUnavailableAndCapture) {
  const EvidenceUnavailable u =
      as<EvidenceUnavailable>(rec(NT_EVENT_EVIDENCE_UNAVAILABLE, "replay", R"({"module":"Net/enc","reason":"deepcopy failed"})"));
  EXPECT_EQ(u.what, "replay");
  EXPECT_EQ(u.module, "Net/enc");
  EXPECT_EQ(u.reason, "deepcopy failed");
  const Capture c = as<Capture>(rec(NT_EVENT_CAPTURE, "gave_up", R"({"module":"Net/enc","why":"no recurrence","forwards":64})"));
  EXPECT_EQ(c.stage, "gave_up");
  EXPECT_EQ(c.forwards, std::optional<int64_t>(64));
}

TEST(FrontendEvents, UnknownKindAndNonObjectDetailAreRefusedWithOneLine) {
  std::string error;
  EXPECT_FALSE(decode(rec(999, "future", "{}"), &error));
  EXPECT_NE(error.find("999"), std::string::npos) << error;
  EXPECT_FALSE(decode(rec(NT_EVENT_REPLAY_BEGIN, "r", "not json"), &error));
  EXPECT_NE(error.find("not a JSON object"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}


TEST(FrontendEvents, ReplayFromTheAutogradGraph) {
  const ReplayBegin b = as<ReplayBegin>(rec(NT_EVENT_REPLAY_BEGIN, "", R"({"module":"","graph":true})"));
  EXPECT_TRUE(b.graph);
  EXPECT_FALSE(as<ReplayBegin>(rec(NT_EVENT_REPLAY_BEGIN, "", R"({"module":"Net"})")).graph);
  const ReplayEnd e = as<ReplayEnd>(rec(NT_EVENT_REPLAY_END, "",
      R"({"module":"","op":null,"graph":true,"node":"SqrtBackward0","status":"undetermined","reason":"why"})"));
  EXPECT_TRUE(e.graph);
  EXPECT_EQ(e.node, "SqrtBackward0");
  EXPECT_EQ(e.status, "undetermined");
  EXPECT_EQ(e.reason, "why");
  EXPECT_EQ(e.op, "");
}
}  // namespace
}  // namespace nantrace
