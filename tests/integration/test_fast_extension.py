"""The extension's functions against plain torch arithmetic (issue 17): the update ratio's
sample copy and ratios, the gradients' one-pass norm and finiteness, the parameters' scan, a
check's tensor reading. In-process, with the runtime library loaded the way the binding loads
it; skipped where the extension was not built."""
import ctypes
import glob
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nt_harness as H  # noqa: E402

a = H.parse_args()
LIBDIR = os.path.dirname(os.path.abspath(a.lib))
sys.path.insert(0, os.path.join(LIBDIR, "python"))
import torch  # noqa: E402

FAST = glob.glob(os.path.join(LIBDIR, "python", "nantrace_torch", "_nantrace_fast*.so"))


@unittest.skipUnless(FAST, "the extension was not built here")
class FastExtensionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from nantrace_torch import _nantrace_fast as fast
        from nantrace_torch._tensors import DTYPE_CODES
        runtime = os.path.join(LIBDIR, "libnantrace_runtime.so")
        cls.lib = ctypes.CDLL(runtime)  # as the binding: the library is loaded before init
        cls.fast = fast
        cls.codes = DTYPE_CODES
        assert fast.init(runtime, dict(DTYPE_CODES), (torch.Tensor, torch.nn.Parameter), torch.strided)

    def test_sample_ratios_match_torch(self):
        torch.manual_seed(0)
        for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
            w = [torch.randn(300, dtype=dtype), torch.randn(5000, dtype=dtype), torch.randn(7, dtype=dtype)]
            views = [w[0], w[1][:256], w[1][2000:2256], w[2]]
            counts = tuple(v.numel() for v in views)
            snap = self.fast.copy_samples(views, counts, self.codes[dtype])
            before = [v.clone() for v in views]
            for t in w:
                t.add_(torch.randn_like(t) * 0.01)
            got = self.fast.sample_ratios(views, counts, self.codes[dtype], snap, (3, 4))
            want = []
            for grp in ((0, 1, 2), (3,)):
                d = sum(float(((views[i].double() - before[i].double()) ** 2).sum()) for i in grp) ** 0.5
                n = sum(float((before[i].double() ** 2).sum()) for i in grp) ** 0.5
                want.append(d / n)
            for g, x in zip(got, want):
                self.assertAlmostEqual(g, x, delta=x * 1e-9, msg=str(dtype))

    def test_sample_ratios_refuse_a_short_snapshot(self):
        v = [torch.randn(10)]
        with self.assertRaises(ValueError):
            self.fast.sample_ratios(v, (10,), self.codes[torch.float32], b"\0" * 8, (1,))

    def test_norm_many_matches_the_exact_norm_and_finds_the_bad_tensor(self):
        torch.manual_seed(1)
        ts = [torch.randn(1000), torch.randn(33, 7).half(), torch.randn(5).bfloat16(), torch.randn(4, 4).double().t()]
        bad, first, ss = self.fast.norm_many(ts)
        want = sum(float((t.double() ** 2).sum()) for t in ts)
        self.assertEqual((bad, first), (0, -1))
        self.assertAlmostEqual(ss, want, delta=want * 1e-12)
        ts[1][3, 2] = float("inf")
        ts[3][1, 1] = float("nan")
        bad, first, ss = self.fast.norm_many(ts)
        self.assertEqual((bad, first), (2, 1))
        self.assertNotEqual(ss, ss)  # NaN

    def test_scan_many_and_what_it_leaves_to_python(self):
        ts = [torch.zeros(3), torch.tensor([1.0, float("nan")])]
        self.assertEqual(self.fast.scan_many(ts), (1, 1))
        self.assertIsNone(self.fast.scan_many([torch.zeros(3), torch.zeros(3, dtype=torch.int64)]))
        self.assertIsNone(self.fast.norm_many([torch.zeros(0)]))  # empty: the Python path says

    def test_check_reads_a_tensor_or_hands_it_back(self):
        x = torch.randn(4, 4)
        # Not recording (nantrace_start was not called): the library answers, never raises.
        r = self.fast.check(2, 0, b"Net/fc", b"Linear", None, b"output", x.t())
        self.assertIn(r, (0, 1, 3))
        self.assertEqual(self.fast.check(2, 0, b"Net/fc", b"Linear", None, b"output", torch.zeros(3, dtype=torch.int8)), -2)
        self.assertEqual(self.fast.check(2, 0, b"Net/fc", b"Linear", None, b"output", object()), -2)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=1)
