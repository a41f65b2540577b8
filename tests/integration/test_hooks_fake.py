"""The torch hooks against a recording fake of the C ABI: paths, phases, steps, evidence,
replay, safety. Runs in-process with real PyTorch training on CPU (no libnantrace.so needed)."""
import contextlib
import io
import math
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "injector", "python"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import nantrace_torch  # noqa: E402
from nantrace_torch import _runtime as R, _modules, _context, _binding as B  # noqa: E402
from fake_api import AsyncFakeApi, FakeApi  # noqa: E402



# The investigation's typed events (nantrace.h), as (step, label, detail): a capture's stage
# is labelled "capture_<stage>".
INVESTIGATION_NAMES = {"origin_in_code", "replay_start", "replay", "fix_check", "capture_armed",
                       "capture_gave_up", "capture_moved_outwards"}


def investigation(api):
    kinds = (B.EVENT_ORIGIN_IN_CODE, B.EVENT_REPLAY_BEGIN, B.EVENT_REPLAY_END, B.EVENT_FIX_CHECK,
             B.EVENT_EVIDENCE_UNAVAILABLE)
    out = []
    for s, k, n, d in api.events:
        if k == B.EVENT_CAPTURE:
            out.append((s, "capture_" + n, d))
        elif k in kinds:
            out.append((s, n, d))
    return out

class Enc(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 16)

    def forward(self, x):
        m, logs = self.proj(x).chunk(2, dim=-1)
        return m + torch.randn_like(m) * torch.exp(logs), {"m": m, "note": "not a tensor"}


class Dec(nn.Module):
    def __init__(self):
        super().__init__()
        self.ups = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.act = nn.ReLU(inplace=True)

    def forward(self, z):
        for u in self.ups:
            z = self.act(u(z))
        return z


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Enc()
        self.dec = Dec()

    def forward(self, x):
        z, extra = self.enc(x)
        return self.dec(z), extra["m"]


def train(steps, blow_at=None, seed=0, gan=False, autocast=True, nan_input_at=None, wrap=None):
    torch.manual_seed(seed)
    model = TinyNet()
    net = wrap(model) if wrap else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    disc = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1)) if gan else None
    opt_d = torch.optim.AdamW(disc.parameters(), lr=1e-3) if gan else None
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    losses = []
    for step in range(1, steps + 1):
        x = torch.randn(4, 8)
        if nan_input_at == step:
            x[1, 2] = float("nan")
        if blow_at == step:
            with torch.no_grad():
                model.enc.proj.bias[8:].fill_(30.0)  # exp(30) overflows fp16
        with torch.autocast("cpu", dtype=torch.float16, enabled=autocast):
            y, m = net(x)
            if gan:
                d_loss = disc(y.detach()).mean()
        if gan:
            opt_d.zero_grad()
            scaler.scale(d_loss.float()).backward()
            scaler.step(opt_d)
            with torch.autocast("cpu", dtype=torch.float16, enabled=autocast):
                g_adv = disc(y).mean()
        loss = (y.float() - 1).abs().mean() + m.float().pow(2).mean()
        if gan:
            loss = loss + g_adv.float()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss.detach()))
    return losses


class RelayResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(4, 4, 1), nn.Conv1d(4, 4, 1)])

    def forward(self, x):
        for conv in self.convs:
            x = x + conv(torch.nn.functional.leaky_relu(x, 0.1))
        return x

class Voc(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = nn.Conv1d(2, 4, 1)
        self.res = RelayResBlock()

    def forward(self, x):
        return self.res(self.pre(x))



def nantrace_replay_output(blob):
    from nantrace_torch._replay import run_module
    return run_module(blob["module"], blob["args"], blob["kwargs"], blob["autocast"])[0]


class InstalledTest(unittest.TestCase):
    """Every hook installed against a FakeApi, removed after each test."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.install(FakeApi(run_dir=self.tmp.name))

    def install(self, api):
        """(Re)install every hook against `api`, from a clean state."""
        if nantrace_torch._installed:
            nantrace_torch.uninstall()
        self.api = api
        R.reset_for_tests(api)
        _modules.reset_for_tests()
        _context.reset_for_tests()
        nantrace_torch._installed = False
        nantrace_torch.install(api)
        return api

    def tearDown(self):
        nantrace_torch.uninstall()
        self.tmp.cleanup()


class HookTest(InstalledTest):

    def test_readback_queue_reads_in_order_bounded(self):
        from nantrace_torch._tensors import ReadbackQueue

        class Entry:
            def __init__(self, name):
                self.name, self.landed = name, False

            def ready(self):
                return self.landed

        q = ReadbackQueue(2)
        a, b, c = Entry("a"), Entry("b"), Entry("c")
        self.assertTrue(q.push(a) and q.push(b))
        self.assertFalse(q.push(c), "a full queue refuses")
        b.landed = True
        self.assertIsNone(q.pop_ready(), "b landed first but a is older: nothing is read")
        a.landed = True
        self.assertEqual([q.pop_ready().name, q.pop_ready().name], ["a", "b"])
        self.assertIsNone(q.pop_ready())
        self.assertEqual(len(q), 0)

    def test_hook_suspension_nests_and_restores(self):
        # A replay run from inside a capture must not end the capture's suspension.
        self.assertFalse(R.suspended())
        with R.hooks_suspended():
            with R.hooks_suspended():
                self.assertTrue(R.suspended())
            self.assertTrue(R.suspended(), "the inner suspension ended the outer one")
            try:
                with R.hooks_suspended():
                    raise ValueError("inside")
            except ValueError:
                pass
            self.assertTrue(R.suspended())
        self.assertFalse(R.suspended())

    def test_paths_phases_and_steps(self):
        train(3)
        api = self.api
        self.assertEqual(api.steps, [1, 2, 3])
        paths = {c.path for c in api.checks if c.phase == B.PHASE_FORWARD}
        for p in ("TinyNet/enc", "TinyNet/enc.proj", "TinyNet/dec.ups.1", "TinyNet/dec.act"):
            self.assertIn(p, paths)
        # TinyNet and TinyNet/dec return tensors their submodules returned (and that were checked
        # there, unmodified since): not checked a second time.
        self.assertNotIn("TinyNet", paths)
        self.assertNotIn("TinyNet/dec", paths)
        names = {c.name for c in api.checks if c.path == "TinyNet/enc" and c.phase == B.PHASE_FORWARD}
        self.assertEqual(names, {"output[0]", "output[1]['m']"})
        phases = {c.phase for c in api.checks}
        for ph in (B.PHASE_INPUT, B.PHASE_FORWARD, B.PHASE_LOSS, B.PHASE_BACKWARD):
            self.assertIn(ph, phases)
        # Finite CPU gradients and parameters pass one fused norm per optimizer step: no
        # per-tensor checks (test_nonfinite_gradient_named_by_the_optimizer_check has them).
        self.assertNotIn(B.PHASE_OPTIMIZER_GRAD, phases)
        self.assertNotIn(B.PHASE_OPTIMIZER_PARAM, phases)
        inputs = [c for c in api.checks if c.phase == B.PHASE_INPUT]
        self.assertEqual([(c.step, c.path, c.name) for c in inputs],
                         [(s, "TinyNet", "x") for s in (1, 2, 3)])  # TinyNet.forward(self, x)
        self.assertTrue(all(c.finite for c in api.checks))
        self.assertEqual(api.scopes, [])  # balanced push/pop
        names = [s[1] for s in api.scalars]
        for n in ("loss", "lr", "grad_norm", "loss_scale"):
            self.assertIn(n, names)
        # the loss recorded is the unscaled one
        loss_scalar = [v for s, n, v in api.scalars if n == "loss"]
        self.assertLess(max(loss_scalar), 100.0)
        self.assertEqual(api.started, 1)

    def test_nonfinite_gradient_named_by_the_optimizer_check(self):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in (1, 2):
            loss = model(torch.randn(3, 4)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            if step == 2:
                model[1].weight.grad[0, 2] = float("inf")  # born outside any module or hook
            opt.step()
        grads = [c for c in self.api.checks if c.phase == B.PHASE_OPTIMIZER_GRAD]
        self.assertTrue(grads and all(c.step == 2 for c in grads), grads)
        self.assertEqual([c.name for c in grads if not c.finite], ["Sequential/1.weight"])
        params = [c for c in self.api.checks if c.phase == B.PHASE_OPTIMIZER_PARAM]
        self.assertEqual([c.name for c in params if not c.finite], ["Sequential/1.weight"])
        norms = [v for s, n, v in self.api.scalars if n == "grad_norm"]
        self.assertEqual(len(norms), 2)
        self.assertTrue(math.isfinite(norms[0]) and math.isinf(norms[1]), norms)

    def test_fused_norm_never_misses_a_nan_or_inf(self):
        from nantrace_torch import _training
        R.ensure_started()
        for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            for bad in (float("nan"), float("inf"), float("-inf")):
                ts = [torch.ones(5, dtype=dtype), torch.zeros(3, 3, dtype=dtype)]
                ts[1][2, 1] = bad
                ts.append(torch.full((4,), 60000.0 if dtype == torch.float16 else 1e30, dtype=dtype))
                norm = _training._fused_norm(ts)
                self.assertFalse(math.isfinite(norm), (dtype, bad, norm))
            # large finite values (squares that overflow the dtype) are not a fault: fp32 accumulation
            big = [torch.full((64,), 60000.0, dtype=torch.float16)]
            self.assertTrue(math.isfinite(_training._fused_norm(big)))
        self.assertIsNone(_training._fused_norm([]))

    def test_losses_unchanged(self):
        nantrace_torch.uninstall()
        plain = train(4)
        nantrace_torch._installed = False
        nantrace_torch.install(self.api)
        hooked = train(4)
        self.assertEqual(plain, hooked)

    def test_forward_overflow_evidence_replay_fix(self):
        train(4, blow_at=3)
        api = self.api
        first = api.first_bad(role=B.ROLE_OUTPUT)
        self.assertEqual((first.step, first.phase, first.path), (3, B.PHASE_FORWARD, "TinyNet/enc"))
        self.assertEqual(first.dtype, torch.float16)
        ev_inputs = [c for c in api.checks if c.role == B.ROLE_INPUT and c.path == "TinyNet/enc" and c.op is None]
        self.assertTrue(ev_inputs and all(c.finite for c in ev_inputs))
        replay = [c for c in api.checks if c.role == B.ROLE_REPLAY]
        self.assertTrue(replay)
        self.assertEqual(replay[-1].op, "aten::exp")
        self.assertFalse(replay[-1].finite)
        self.assertTrue(all(c.finite for c in replay[:-1]))
        fix = [d for _, k, n, d in api.events if k == B.EVENT_FIX_CHECK]
        # The investigation travels as typed events; a note is free text only.
        self.assertFalse([n for _, k, n, _ in api.events if k == B.EVENT_NOTE and n in INVESTIGATION_NAMES])
        fp32 = [d for d in fix if d["variant"] == "fp32"]
        self.assertEqual(len(fp32), 1)
        self.assertTrue(fp32[0]["finite"])
        self.assertGreater(fp32[0]["max_abs"], 1e6)
        mode = [d for _, k, n, d in api.events if k == B.EVENT_CHECK_MODE]
        self.assertEqual(mode[0]["module"], "TinyNet/enc")
        # op-level switched on inside the culprit: step 4 names the op in the live run
        live_ops = [c for c in api.checks if c.step == 4 and c.op and c.role == B.ROLE_OUTPUT]
        self.assertTrue(any(c.op == "aten::exp" and not c.finite for c in live_ops))
        self.assertTrue(all(c.path.startswith("TinyNet/enc") for c in live_ops))
        self.assertFalse([c for c in api.checks if c.step == 2 and c.op])
        saved = os.path.join(self.tmp.name, "repro", "origin_module.pt")
        self.assertTrue(os.path.isfile(saved))
        blob = torch.load(saved, weights_only=False)
        self.assertEqual(blob["module_path"], "TinyNet/enc")
        self.assertTrue(blob["autocast"]["enabled"])
        # the scaler skipped the poisoned steps: recorded as skipped, never as a step forward
        skips = [d for _, k, n, d in api.events if k == B.EVENT_OPTIMIZER_STEP and d["skipped"]]
        self.assertTrue(skips)
        self.assertEqual(api.steps, [1, 2, 3, 4])

    def test_asynchronous_origin_is_captured_at_its_recurrence(self):
        # Device checks answer late: nothing can be kept at the fault itself. The next step arms
        # capture for the origin's module, its next forward is snapshotted, the snapshot turns
        # out non-finite, and the module is replayed on those inputs (CPU here; the CUDA part
        # is the event and the pinned copy of the answer).
        api = self.install(AsyncFakeApi(run_dir=self.tmp.name))
        train(5, blow_at=3)
        self.assertEqual((api.origin.step, api.origin.path), (3, "TinyNet/enc"))
        notes = investigation(api)
        names = [n for _, n, _ in notes]
        armed = [(s, d) for s, n, d in notes if n == "capture_armed"]
        self.assertEqual(armed, [(4, armed[0][1])])
        self.assertEqual(armed[0][1]["module"], "TinyNet/enc")
        # nothing replayed at step 3 (the answer was pending), the replay ran at step 4
        starts = [(s, d) for s, n, d in notes if n == "replay_start"]
        self.assertTrue(starts and all(s == 4 for s, _ in starts), starts)
        self.assertEqual(starts[0][1], {"module": "TinyNet/enc", "step": 4, "recurrence": True})
        replay_note = [d for _, n, d in notes if n == "replay"]
        self.assertEqual(replay_note[0]["op"], "aten::exp")
        self.assertLess(names.index("replay_start"), names.index("replay"))
        fp32 = [d for _, n, d in notes if n == "fix_check" and d.get("variant") == "fp32"]
        self.assertTrue(fp32 and fp32[0]["finite"])
        # evidence of the recurrence: the module's inputs, finite
        ev = [c for c in api.checks if c.role == B.ROLE_INPUT and c.op is None and c.path == "TinyNet/enc"]
        self.assertTrue(ev and all(c.step == 4 and c.finite for c in ev))
        # op level switched on inside the culprit when capture was armed
        mode = [(s, d["module"]) for s, k, n, d in api.events if k == B.EVENT_CHECK_MODE]
        self.assertEqual(mode, [(4, "TinyNet/enc")])
        blob = torch.load(os.path.join(self.tmp.name, "repro", "origin_module.pt"), weights_only=False)
        self.assertEqual((blob["module_path"], blob["step"]), ("TinyNet/enc", 4))
        self.assertTrue(blob["autocast"]["enabled"])
        # the captured module is the one at the recurrence: its exp overflows again in fp16
        out = nantrace_replay_output(blob)
        self.assertFalse(bool(torch.isfinite(out).all()))

    def test_asynchronous_relay_is_followed_out_to_the_enclosing_code(self):
        # Device checks, and the value is born in a residual add (ResBlock's own code): the
        # first non-finite module output, convs.1's, only relays it. Its captured inputs are
        # non-finite, so capture moves out to the innermost running module around it.
        api = self.install(AsyncFakeApi(run_dir=self.tmp.name))

        torch.manual_seed(0)
        model = Voc()
        with torch.no_grad():
            c0 = model.res.convs[0]
            c0.weight.zero_()
            c0.weight[:, :, 0] = torch.eye(4)
            c0.bias.zero_()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        scaler = torch.amp.GradScaler("cpu")
        for step in range(1, 6):
            if step == 2:
                with torch.no_grad():
                    model.pre.weight.zero_()
                    model.pre.bias.fill_(40000.0)  # x and convs.0(x) finite, x + convs.0(x) not
            with torch.autocast("cpu", dtype=torch.float16):
                loss = model(torch.rand(2, 2, 8)).float().mean()
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        self.assertEqual((api.origin.step, api.origin.path), (2, "Voc/res.convs.1"))
        notes = investigation(api)
        names = [n for _, n, _ in notes]
        self.assertIn("capture_moved_outwards", names)
        moved = [d for _, n, d in notes if n == "origin_in_code"]
        self.assertEqual(moved, [{"module": "Voc/res", "module_type": "RelayResBlock", "relay": "Voc/res.convs.1",
                                  "recurrence": True}])
        self.assertLess(names.index("origin_in_code"), names.index("replay_start"))
        self.assertEqual([d["op"] for _, n, d in notes if n == "replay"], ["aten::add"])
        starts = [d for _, n, d in notes if n == "replay_start"]
        self.assertTrue(starts and all(d["module"] == "Voc/res" and d["recurrence"] for d in starts), starts)
        blob = torch.load(os.path.join(self.tmp.name, "repro", "origin_module.pt"), weights_only=False)
        self.assertEqual(blob["module_path"], "Voc/res")

    def test_asynchronous_capture_gives_up_without_recurrence(self):
        from nantrace_torch import _capture
        api = self.install(AsyncFakeApi(run_dir=self.tmp.name))
        old = _capture.MAX_ATTEMPTS
        _capture.MAX_ATTEMPTS = 3
        try:
            torch.manual_seed(0)
            model = TinyNet()
            opt = torch.optim.SGD(model.parameters(), lr=1e-3)
            scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 4)  # skips the bad step
            for step in range(1, 9):
                x = torch.randn(4, 8)
                with torch.no_grad():
                    model.enc.proj.bias[8:].fill_(30.0 if step == 2 else 0.0)  # one bad step only
                with torch.autocast("cpu", dtype=torch.float16):
                    y, m = model(x)
                opt.zero_grad()
                scaler.scale(y.float().mean() + m.float().mean()).backward()
                scaler.step(opt)
                scaler.update()
        finally:
            _capture.MAX_ATTEMPTS = old
        names = [n for _, n, _ in investigation(api)]
        self.assertIn("capture_armed", names)
        self.assertIn("capture_gave_up", names)
        self.assertNotIn("replay_start", names)
        self.assertIsNone(_capture.armed_path)
        self.assertFalse(_capture._pending)

    def test_readback_of_a_cpu_value_is_ready_at_once(self):
        from nantrace_torch._tensors import Readback
        back = Readback(torch.tensor([2.0, 3.0]))
        self.assertTrue(back.ready())
        self.assertEqual(back.value().tolist(), [2.0, 3.0])

    def test_bad_input_batch(self):
        train(3, nan_input_at=2)
        first = self.api.first_bad(role=B.ROLE_OUTPUT)
        self.assertEqual((first.step, first.phase, first.path, first.name),
                         (2, B.PHASE_INPUT, "TinyNet", "x"))
        # propagated module outputs are not replayed
        self.assertFalse([c for c in self.api.checks if c.role == B.ROLE_REPLAY])

    def test_gan_two_optimizers_one_step(self):
        train(4, gan=True)
        self.assertEqual(self.api.steps, [1, 2, 3, 4])
        labels = {n for _, k, n, d in self.api.events if k == B.EVENT_OPTIMIZER_STEP}
        self.assertEqual(len(labels), 2)

    def test_dataparallel_prefix_stripped(self):
        train(2, wrap=nn.DataParallel)
        paths = {c.path for c in self.api.checks if c.phase == B.PHASE_FORWARD}
        self.assertIn("TinyNet/dec.ups.0", paths)
        self.assertFalse([p for p in paths if p and "module." in p])

    def test_every_n_samples_module_checks(self):
        self.api.config["every"] = 3
        R.reset_for_tests(self.api)
        _context.install()
        train(5)
        fwd_steps = sorted({c.step for c in self.api.checks if c.phase == B.PHASE_FORWARD})
        self.assertEqual(fwd_steps, [1, 4])
        loss_steps = sorted({c.step for c in self.api.checks if c.phase == B.PHASE_LOSS})
        self.assertEqual(loss_steps, [1, 2, 3, 4, 5])

    def test_every_n_switches_full_checks_on_fault(self):
        self.api.config["every"] = 10
        R.reset_for_tests(self.api)
        train(5, blow_at=3)
        mode = [d for _, k, n, d in self.api.events if k == B.EVENT_CHECK_MODE]
        self.assertEqual(mode[0]["level"], "module")
        fwd_steps = sorted({c.step for c in self.api.checks if c.phase == B.PHASE_FORWARD})
        self.assertEqual(fwd_steps[0], 1)
        self.assertIn(4, fwd_steps)
        self.assertNotIn(2, fwd_steps)

    def test_op_level_everywhere(self):
        self.api.config["check_level"] = 2
        R.reset_for_tests(self.api)
        R.on_started.append(nantrace_torch._enter_op_level)
        try:
            train(2)
            ops = {c.op for c in self.api.checks if c.op}
            self.assertIn("aten::exp", ops)
            self.assertIn("aten::addmm", ops)
        finally:
            if nantrace_torch.op_level_mode is not None:
                nantrace_torch.op_level_mode.__exit__(None, None, None)
                nantrace_torch.op_level_mode = None

    def test_a_failing_hook_disables_itself_with_one_line(self):
        calls = {"n": 0}
        real = self.api.check

        def broken(*a, **k):
            calls["n"] += 1
            if a[0] == B.PHASE_FORWARD:
                raise ValueError("boom")
            return real(*a, **k)
        self.api.check = broken
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            losses = train(3)
        lines = [ln for ln in err.getvalue().splitlines() if ln]
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("nantrace: module hook disabled"))
        self.assertEqual(len(losses), 3)
        self.assertTrue([c for c in self.api.checks if c.phase == B.PHASE_LOSS and c.step == 3])

    def test_keyboard_interrupt_passes_through(self):
        def interrupt(*a, **k):
            raise KeyboardInterrupt
        self.api.check = interrupt
        with self.assertRaises(KeyboardInterrupt):
            train(1)

    def test_odd_modules(self):
        class NoTensor(nn.Module):
            def forward(self, x):
                return "text", 3, None

        class Raises(nn.Module):
            def forward(self, x):
                raise RuntimeError("user error")

        torch.manual_seed(0)
        seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Linear(4, 4), nn.ReLU(inplace=True))
        out = seq(torch.randn(2, 4, requires_grad=True))
        out.sum().backward()
        self.assertEqual(NoTensor()(torch.ones(1)), ("text", 3, None))
        with self.assertRaises(RuntimeError):
            Raises()(torch.ones(1))
        with torch.no_grad():
            seq(torch.randn(2, 4))
        self.assertEqual(self.api.scopes, [])
        self.assertEqual(self.api.checks[-1].path, "Sequential/3")  # not nested under Raises

    def test_config_of_an_unknown_trainer_uses_the_common_spellings(self):
        from nantrace_torch import _trainers
        self.assertEqual(_trainers.facts({"fp16": True, "optim": {"lr": 1}, "lr": 0.002}, ["train_hifigan.py"]),
                         {"fp16_key": "fp16", "fp16": True, "lr_key": "lr", "learning_rate": 0.002})
        self.assertEqual(_trainers.facts({"train": {"fp16_run": "yes"}}, ["x.py"]), {})  # not a bool: not a fact

    def test_config_and_checkpoint(self):
        cfg = os.path.join(self.tmp.name, "s2.json")
        with open(cfg, "w") as f:
            f.write('{"train": {"fp16_run": true, "learning_rate": 0.0001, "batch_size": 8, "x": 1}}')
        old = sys.argv
        sys.argv = ["s2_train.py", "-c", cfg]
        try:
            train(1)
            torch.save({"a": 1}, os.path.join(self.tmp.name, "G_1.pth"))
        finally:
            sys.argv = old
        conf = [(n, d) for _, k, n, d in self.api.events if k == B.EVENT_CONFIG]
        # Neutral facts from the table of known trainers (GPT-SoVITS's s2_train.py).
        self.assertEqual(conf, [(cfg, {"trainer": "GPT-SoVITS s2_train.py", "fp16_key": "train.fp16_run",
                                       "fp16": True, "lr_key": "train.learning_rate", "learning_rate": 0.0001,
                                       "default_learning_rate": 0.0001,
                                       "step_counter": "global_step", "step_counter_offset": -1})])
        ck = [n for _, k, n, d in self.api.events if k == B.EVENT_CHECKPOINT]
        self.assertEqual(ck, [os.path.join(self.tmp.name, "G_1.pth")])
        self.assertIn("torch", self.api.meta)
        self.assertIn("argv", self.api.meta)



class CheckpointTest(InstalledTest):
    """Each torch.save is counted: its floating tensors holding NaN/Inf, its numbered family and
    whether it heads it; a torch.load of the family marks it as what the script resumes from."""

    def saves(self):
        return [(s, n, d) for s, k, n, d in self.api.events if k == B.EVENT_CHECKPOINT]

    def test_counts_nonfinite_tensors_of_a_state_dict_and_of_a_module(self):
        train(1)
        d = self.tmp.name
        model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
        torch.save({"model": model.state_dict(), "epoch": 1, "opt": {"state": {0: {"m": torch.ones(2)}}}},
                   os.path.join(d, "G_1.pth"))
        with torch.no_grad():
            model[0].weight[0, 1] = float("nan")
            model[1].running_var[0] = float("inf")
        torch.save(model, os.path.join(d, "G_2.pth"))
        (_, n1, d1), (_, n2, d2) = self.saves()
        self.assertEqual((n1, d1["tensors"], d1["nonfinite_tensors"]), (os.path.join(d, "G_1.pth"), 7, 0))
        self.assertEqual(d1["pattern"], os.path.join(d, "G_*.pth"))
        self.assertTrue(d1["heads_pattern"])
        self.assertFalse(d1["resumed_from_pattern"])
        # Parameters and buffers of the module itself (its state_dict hooks are never run).
        self.assertEqual((d2["tensors"], d2["nonfinite_tensors"]), (6, 2))
        self.assertEqual(d2["nonfinite_names"], ["0.weight", "1.running_var"])
        self.assertTrue(d2["heads_pattern"])

    def test_a_load_of_the_family_marks_it_resumed_and_an_older_number_does_not_head_it(self):
        d = self.tmp.name
        torch.save({"w": torch.ones(2)}, os.path.join(d, "G_9.pth"))  # before training: not recorded
        torch.load(os.path.join(d, "G_9.pth"))                           # the script resumes
        train(1)
        torch.save({"w": torch.ones(2)}, os.path.join(d, "G_3.pth"))
        (_, _, det), = self.saves()
        self.assertTrue(det["resumed_from_pattern"])
        self.assertFalse(det["heads_pattern"])  # G_9 is still the newest

    def test_numbered_directories_and_unnamed_buffers(self):
        train(1)
        d = os.path.join(self.tmp.name, "checkpoint-500")
        os.makedirs(d)
        torch.save({"w": torch.ones(2)}, os.path.join(d, "optimizer.pt"))
        torch.save({"w": torch.ones(2)}, io.BytesIO())  # not a file on disk: not a checkpoint
        (_, _, det), = self.saves()
        self.assertEqual(det["pattern"], os.path.join(self.tmp.name, "checkpoint-*", "optimizer.pt"))
        self.assertTrue(det["heads_pattern"])


class UpdateRatioTest(InstalledTest):
    """Each optimizer step records ||update|| / ||weights|| per parameter group, measured on the
    weights before and after it."""

    def ratios(self):
        return [(st, v) for st, n, v in self.api.scalars if n == "update_ratio"]

    def test_one_ratio_per_group_per_step_equal_to_the_update_it_made(self):
        torch.manual_seed(0)
        a, b = nn.Linear(4, 4), nn.Linear(4, 2)
        opt = torch.optim.SGD([{"params": a.parameters()}, {"params": b.parameters(), "lr": 0.5}], lr=0.1)
        x = torch.randn(8, 4)
        for _ in range(2):
            before = [p.detach().clone() for p in list(a.parameters()) + list(b.parameters())]
            loss = b(a(x)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        after = list(a.parameters()) + list(b.parameters())
        want = []
        for grp in ((0, 1), (2, 3)):
            d = torch.stack([(after[i].detach() - before[i]).norm() for i in grp]).norm()
            w = torch.stack([before[i].norm() for i in grp]).norm()
            want.append(float(d / w))
        got = self.ratios()
        self.assertEqual([st for st, _ in got], [1, 1, 2, 2])
        for g, w in zip([v for st, v in got if st == 2], want):
            self.assertAlmostEqual(g, w, places=5)

    def test_a_large_parameter_is_estimated_from_its_sample(self):
        big = nn.Linear(256, 256)  # 65536 weights: a sample of four chunks of 256
        opt = torch.optim.Adam(big.parameters(), lr=1.0)
        loss = big(torch.randn(4, 256)).sum()
        loss.backward()
        w0 = big.weight.detach().clone()
        opt.step()
        exact = float((big.weight.detach() - w0).norm() / w0.norm())
        (_, got), = [r for r in self.ratios()]
        # Adam's first step moves every weight by about lr: the weight's ratio dominates.
        self.assertLess(abs(got - exact) / exact, 0.1)


class NormedNet(nn.Module):
    """A weight-normed conv, then an exp in the module's own forward that overflows fp16 when
    the input is scaled up (as GPT-SoVITS's weight_norm'ed decoder blocks and exp(logs) do)."""

    def __init__(self, wrap):
        super().__init__()
        self.conv = wrap(nn.Conv1d(4, 4, 3, padding=1))

    def forward(self, x):
        return torch.exp(self.conv(x))


class LossTest(InstalledTest):
    """Every loss is checked: .backward(), torch.autograd.backward and torch.autograd.grad."""

    def test_a_loss_given_to_autograd_grad_is_checked(self):
        torch.manual_seed(0)
        w = torch.randn(4, 1, requires_grad=True)
        for step in range(1, 5):
            x = torch.randn(8, 4)
            denom = torch.zeros(()) if step == 3 else torch.ones(())
            loss = (x @ w).pow(2).mean() / denom  # a division by zero in the loss at step 3
            (g,) = torch.autograd.grad(loss, [w])
            with torch.no_grad():
                w -= 0.01 * torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
        bad = self.api.first_bad(phase=B.PHASE_LOSS)
        self.assertIsNotNone(bad, "the loss given to autograd.grad was not checked")
        losses = [c for c in self.api.checks if c.phase == B.PHASE_LOSS]
        self.assertEqual(len(losses), 4)
        self.assertEqual([c.finite for c in losses], [True, True, False, True])
        # No torch.optim optimizer: each autograd.grad call ends an iteration.
        self.assertEqual([c.step for c in losses], [1, 2, 3, 4])
        self.assertEqual(bad.step, 3)


class ClosureStepTest(InstalledTest):
    """optimizer.step(closure): the closure's forward and backward are the step's own, and the
    gradients it made are checked once it ran (before it, they are the last step's)."""

    def test_lbfgs_steps_and_gradient_checks(self):
        torch.manual_seed(0)
        m = nn.Linear(3, 1)
        opt = torch.optim.LBFGS(m.parameters(), max_iter=3)
        for i in range(3):
            x = torch.randn(4, 3)

            def closure():
                opt.zero_grad()
                loss = m(x).pow(2).mean()
                loss.backward()
                return loss

            opt.step(closure)
        self.assertEqual(self.api.steps, [1, 2, 3])
        fwd = sorted({c.step for c in self.api.checks if c.phase == B.PHASE_FORWARD})
        self.assertEqual(fwd, [1, 2, 3])
        # The gradients are checked (a fused norm when finite) after the closure made them:
        # at step 1 there were none before it, so a check before the step would miss it.
        norms = [(st, v) for st, n, v in self.api.scalars if n == "grad_norm"]
        self.assertEqual([st for st, _ in norms], [1, 2, 3])
        self.assertTrue(all(v > 0 for _, v in norms), norms)


class EvaluationPhaseTest(InstalledTest):
    """A model in eval mode under no_grad / inference_mode is evaluation, and so is a loss
    module run without autograd right after it; a no_grad forward in training mode (a GAN's
    generator) and checkpointing's no_grad recompute inside a training forward are training."""

    def phases(self, root):
        return {c.phase for c in self.api.checks if c.path and c.path.split("/")[0] == root}

    def test_eval_mode_without_grad_is_evaluation(self):
        net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
        net.eval()
        with torch.no_grad():
            out = net(torch.randn(3, 4))
        nn.MSELoss()(out, torch.zeros_like(out))
        err = io.StringIO()
        with torch.inference_mode(), contextlib.redirect_stderr(err):
            net(torch.randn(3, 4))
        self.assertEqual(err.getvalue(), "", "a hook failed on inference tensors")
        self.assertEqual(self.phases("Sequential"), {B.PHASE_EVALUATION})
        self.assertEqual(self.phases("MSELoss"), {B.PHASE_EVALUATION})
        batch = [c for c in self.api.checks if c.path == "Sequential" and c.role == B.ROLE_INPUT]
        self.assertEqual(len(batch), 2, "the evaluation batch is checked as its input")
        self.assertEqual(self.api.steps, [], "an evaluation forward begins no training step")

    def test_no_grad_in_training_mode_and_checkpointing_are_training(self):
        from torch.utils.checkpoint import checkpoint

        class Ckpt(nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = nn.Linear(4, 4)

            def forward(self, x):
                return checkpoint(self.inner, x, use_reentrant=True)

        gen = nn.Linear(4, 4)
        with torch.no_grad():
            gen(torch.randn(2, 4))  # train mode: a GAN's generator for the D step
        Ckpt()(torch.randn(2, 4, requires_grad=True)).sum().backward()
        self.assertNotIn(B.PHASE_EVALUATION, self.phases("Linear"))
        self.assertNotIn(B.PHASE_EVALUATION, self.phases("Ckpt"))


class KwargsBlock(nn.Module):
    """Called with keyword arguments only, as Hugging Face decoder layers call their attention:
    its own code (between its submodules) takes the log of a negative number."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 4)

    def forward(self, hidden_states, attention_mask=None):
        h = self.fc(hidden_states)
        return self.out(torch.log(h - h.max() - 1.0) * attention_mask)


class KwargsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = KwargsBlock()

    def forward(self, x):
        return self.block(hidden_states=x, attention_mask=torch.ones_like(x))


class KeywordReplayTest(InstalledTest):
    """A module called with keyword arguments only is replayed with them, also when the value
    was followed back into it from a submodule's inputs."""

    def test_keyword_only_enclosing_module_is_replayed(self):
        torch.manual_seed(0)
        KwargsNet()(torch.randn(3, 4)).sum().backward()
        inv = investigation(self.api)
        moved = [d for _, n, d in inv if n == "origin_in_code"]
        self.assertEqual([d["module"] for d in moved][:1], ["KwargsNet/block"])
        unavailable = [d for _, n, d in inv if n == "replay" and isinstance(d, dict) and d.get("reason")]
        self.assertEqual(unavailable, [], "the replay failed")
        ends = [d for _, n, d in inv if n == "replay" and isinstance(d, dict) and "op" in d]
        self.assertEqual([(d["module"], d["op"]) for d in ends], [("KwargsNet/block", "aten::log")])


class PathsDataset(torch.utils.data.Dataset):
    def __init__(self, bad):
        self.items = [("wavs/clip_%d.wav" % i, "speaker", "text") for i in range(8)]  # as GPT-SoVITS keeps them
        self.bad = bad

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        x = torch.full((3,), float(i))
        if i == self.bad:
            x[1] = float("inf")
        return x


class BadSampleTest(InstalledTest):
    """A bad batch names its bad samples, their dataset items and their files; with the
    script's own collate_fn (which may reorder) the batch's items are listed, unmatched."""

    def notes(self):
        return [d for _, k, n, d in self.api.events if k == B.EVENT_NOTE and n.startswith("Bad samples")]

    def run_loader(self, **kw):
        model = nn.Linear(3, 1)
        for x in torch.utils.data.DataLoader(PathsDataset(bad=5), batch_size=4, **kw):
            model(x).sum().backward()

    def test_default_collate_matches_rows_to_items_and_files(self):
        self.run_loader()
        self.assertEqual(len(self.notes()), 1)
        self.assertIn("1 of 4: sample 1 (1 of 3 elements)", self.notes()[0])
        self.assertIn("sample 1 is item 5, `wavs/clip_5.wav` (from `items`)", self.notes()[0])

    def test_own_collate_lists_the_items_without_matching_rows(self):
        def collate(batch):  # sorts, as GPT-SoVITS's TextAudioSpeakerCollate does by length
            return torch.stack(sorted(batch, key=lambda t: -float(t[0])))
        self.run_loader(collate_fn=collate)
        self.assertEqual(len(self.notes()), 1)
        self.assertIn("items [4, 5, 6, 7]", self.notes()[0])
        self.assertIn("which of them is the bad row is not known", self.notes()[0])


class ZeroDivBackward(torch.autograd.Function):
    """Identity forward; the backward divides the gradient by a zero (the planted fault)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * 0 / torch.zeros_like(g)  # 0/0: NaN from a finite gradient


class Gate(nn.Module):
    def forward(self, x):
        return ZeroDivBackward.apply(x)


class GateNet(nn.Module):
    def __init__(self, residual=False):
        super().__init__()
        self.residual = residual
        self.a = nn.Linear(4, 4)
        self.gate = Gate()
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        h = self.a(x)
        g = self.gate(h)
        return self.head(h + g if self.residual else g)


class BackwardOriginTest(InstalledTest):
    """A gradient first non-finite at a module's output is followed to the backward that made it
    (NT_EVENT_BACKWARD_ORIGIN), by reading the autograd graph, and no node is kept after."""

    def run_net(self, net):
        x = torch.randn(3, 4)
        loss = net(x).sum()
        loss.backward()
        return [d for _, k, n, d in self.api.events if k == B.EVENT_BACKWARD_ORIGIN]

    def test_the_consumer_whose_own_node_made_it_is_named_with_its_node(self):
        found = self.run_net(GateNet())
        bad = self.api.first_bad(phase=B.PHASE_BACKWARD)
        self.assertEqual(bad.path, "GateNet/a")  # where it is first seen: the receiver
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0]["module"], "GateNet/gate")
        self.assertEqual(found[0]["module_type"], "Gate")
        self.assertEqual(found[0]["node"], "ZeroDivBackwardBackward")
        self.assertEqual(found[0]["seen_at"], "GateNet/a")
        self.assertEqual(found[0]["consumers"], ["GateNet/gate"])

    def test_two_consumers_name_the_module_enclosing_both_and_no_node(self):
        found = self.run_net(GateNet(residual=True))
        self.assertEqual(len(found), 1)
        # `a`'s output feeds `gate` and GateNet's own add: which of them made it is not
        # known from the graph alone, so the finding is the module enclosing both.
        self.assertEqual(found[0]["module"], "GateNet")
        self.assertIsNone(found[0]["node"])
        self.assertEqual(sorted(found[0]["consumers"]), ["GateNet/gate", "GateNet/head"])

    def test_a_finite_backward_announces_nothing_and_keeps_no_node(self):
        from nantrace_torch import _backward_origin as BO
        net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1))
        self.assertEqual(self.run_net(net), [])
        self.assertEqual(BO._forwards, {}, "nodes held after the backward returned")
        with torch.no_grad():
            net(torch.randn(2, 4))
        self.assertEqual([e for fw in BO._forwards.values() for e in fw.entries], [], "nodes recorded under no_grad")

    def test_a_value_made_in_code_around_the_consumer_is_the_enclosing_modules(self):
        class Between(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(4, 4, bias=False)
                self.head = nn.Linear(4, 1)

            def forward(self, x):
                h = self.a(x)
                return self.head(torch.sqrt(h * h))  # finite forward; sqrt'(0) * 0 is NaN

        x = torch.randn(3, 4)
        x[1] = 0.0  # a zero row of h
        Between()(x).sum().backward()
        found = [d for _, k, n, d in self.api.events if k == B.EVENT_BACKWARD_ORIGIN]
        self.assertEqual(len(found), 1)
        # head consumed sqrt(h * h), not h: the nodes in between are Between's own code.
        self.assertEqual(found[0]["module"], "Between")
        self.assertEqual(found[0]["consumers"], ["Between/head"])
        self.assertIsNone(found[0]["node"])

    def test_common_module(self):
        from nantrace_torch._backward_origin import common_module
        self.assertEqual(common_module([b"Net/enc.0.conv", b"Net/enc.1"]), b"Net/enc")
        self.assertEqual(common_module([b"Net/enc", b"Net/enc.0"]), b"Net/enc")
        self.assertEqual(common_module([b"Net/enc.10", b"Net/enc.1"]), b"Net/enc")
        self.assertEqual(common_module([b"Net/a", b"Disc/a"]), b"")
        self.assertEqual(common_module([b"Net/a", b""]), b"")
        self.assertEqual(common_module([b"Net"]), b"Net")


class ReplayCopyTest(InstalledTest):
    """The replay runs on a copy: weight_norm / spectral_norm modules copy too (their computed
    weight is a non-leaf tensor that deepcopy refuses), and no user hook runs in it."""

    def _run(self, wrap, hooks=None):
        torch.manual_seed(0)
        net = NormedNet(wrap)
        calls = {"module": 0, "global": 0}
        handles = []
        if hooks:
            handles.append(net.conv.register_forward_hook(lambda *a: calls.__setitem__("module", calls["module"] + 1)))
            handles.append(torch.nn.modules.module.register_module_forward_hook(
                lambda *a: calls.__setitem__("global", calls["global"] + 1)))
        opt = torch.optim.SGD(net.parameters(), lr=0.0)
        try:
            for step in range(1, 4):
                x = torch.randn(2, 4, 8) * (40.0 if step == 2 else 0.1)
                with torch.autocast("cpu", dtype=torch.float16):
                    loss = net(x).float().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            for h in handles:
                h.remove()
        return calls

    def test_normed_modules_are_replayed(self):
        import warnings
        from torch.nn.utils import weight_norm, spectral_norm
        from torch.nn.utils.parametrizations import weight_norm as p_weight_norm, spectral_norm as p_spectral_norm
        for name, wrap in (("weight_norm", weight_norm), ("spectral_norm", spectral_norm),
                           ("parametrizations.weight_norm", p_weight_norm),
                           ("parametrizations.spectral_norm", p_spectral_norm)):
            with self.subTest(name), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # weight_norm's deprecation warning
                self.install(FakeApi(run_dir=tempfile.mkdtemp(dir=self.tmp.name)))
                self._run(wrap)
                # torch cannot pickle parametrized modules: only the repro file may be missing
                # (said in a note), never the replay. _run completing shows the host's own
                # module still works after the replay.
                unavailable = [(n, d) for _, k, n, d in self.api.events if k == B.EVENT_EVIDENCE_UNAVAILABLE]
                self.assertFalse([u for u in unavailable if u[0] != "repro"], unavailable)
                if not name.startswith("parametrizations"):
                    self.assertFalse(unavailable, unavailable)
                replay = [c for c in self.api.checks if c.role == B.ROLE_REPLAY]
                self.assertTrue(replay, "no replay")
                self.assertEqual(replay[-1].op, "aten::exp")
                self.assertFalse(replay[-1].finite)

    def test_replay_runs_no_user_hook(self):
        from torch.nn.utils import weight_norm
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nantrace_torch.uninstall()
            plain = self._run(weight_norm, hooks=True)
            self.install(FakeApi(run_dir=self.tmp.name))
            traced = self._run(weight_norm, hooks=True)
        self.assertTrue([c for c in self.api.checks if c.role == B.ROLE_REPLAY], "no replay: the test tests nothing")
        self.assertEqual(traced, plain)


class CudaTextTest(unittest.TestCase):
    """The environment's CUDA line says what is there, never a bare version on a machine without a GPU."""

    def test_each_case(self):
        from nantrace_torch._context import cuda_text
        self.assertEqual(cuda_text(None, None, None), "not available (PyTorch built without CUDA)")
        self.assertEqual(cuda_text("13.2", None, None),
                         "not available (PyTorch built for CUDA 13.2; no NVIDIA driver on this machine)")
        self.assertIn("not used by this run so far", cuda_text("13.2", "570.86", None))
        self.assertEqual(cuda_text("13.2", "570.86", "NVIDIA H200"), "CUDA 13.2 on NVIDIA H200 (NVIDIA driver 570.86)")

    def test_this_machine(self):
        from nantrace_torch import _context
        line = _context.cuda_text(torch.version.cuda, _context._driver_version(), None)
        if not os.path.exists("/proc/driver/nvidia/version"):
            self.assertTrue(line.startswith("not available"), line)


if __name__ == "__main__":
    unittest.main()
