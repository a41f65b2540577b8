"""ctypes binding of the nantrace C ABI (include/nantrace/nantrace.h, ABI version 1).

The library is already mapped into the process by LD_PRELOAD; CDLL on the same path returns
the same handle. Every function gets argtypes/restype so ctypes never guesses. The structs for
a check are preallocated per thread and reused, so a check costs no allocation beyond ctypes'
own call overhead. Strings passed in are bytes objects the caller keeps alive (cached).
"""
import ctypes
import threading

ABI_VERSION = 1

# nt_phase
PHASE_UNKNOWN, PHASE_INPUT, PHASE_FORWARD, PHASE_LOSS, PHASE_BACKWARD = 0, 1, 2, 3, 4
PHASE_UNSCALE, PHASE_OPTIMIZER_GRAD, PHASE_OPTIMIZER_PARAM, PHASE_EVALUATION = 5, 6, 7, 8
# nt_role
ROLE_OUTPUT, ROLE_INPUT, ROLE_PARAM, ROLE_REPLAY = 0, 1, 2, 3
# nt_device
DEVICE_CPU, DEVICE_CUDA = 0, 1
# nt_scope_kind
SCOPE_MODULE, SCOPE_OP, SCOPE_REGION = 1, 2, 3
# nt_event_kind (schemas beside the enum in nantrace.h; tests/integration/test_abi_constants.py
# checks every constant here against the header)
EVENT_NOTE, EVENT_OPTIMIZER_STEP, EVENT_SCALER_UPDATE, EVENT_CHECKPOINT = 0, 1, 2, 3
EVENT_CONFIG, EVENT_WARNING, EVENT_CHECK_MODE = 4, 5, 6
EVENT_ORIGIN_IN_CODE, EVENT_REPLAY_BEGIN, EVENT_REPLAY_END, EVENT_FIX_CHECK = 7, 8, 9, 10
EVENT_EVIDENCE_UNAVAILABLE, EVENT_CAPTURE, EVENT_REPRO_SAVED, EVENT_BACKWARD_ORIGIN = 11, 12, 13, 14
EVENT_EPOCH = 15
# nantrace_check results
NT_FINITE, NT_NONFINITE, NT_PENDING, NT_SKIPPED, NT_ERROR = 0, 1, 2, 3, -1
# nt_dtype
DTYPE_F16, DTYPE_BF16, DTYPE_F32, DTYPE_F64 = 1, 2, 3, 4

MAX_NDIM = 16
HEADROOM_BINS = 40


class NtSite(ctypes.Structure):
    _fields_ = [
        ("phase", ctypes.c_int32),
        ("role", ctypes.c_int32),
        ("module_path", ctypes.c_char_p),
        ("module_type", ctypes.c_char_p),
        ("op", ctypes.c_char_p),
        ("tensor_name", ctypes.c_char_p),
    ]


class NtTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("sizes", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("device_type", ctypes.c_int32),
        ("device_index", ctypes.c_int32),
        ("stream", ctypes.c_size_t),  # uintptr_t
    ]


class NtStats(ctypes.Structure):
    _fields_ = [
        ("numel", ctypes.c_uint64),
        ("nan_count", ctypes.c_uint64),
        ("posinf_count", ctypes.c_uint64),
        ("neginf_count", ctypes.c_uint64),
        ("zero_count", ctypes.c_uint64),
        ("subnormal_count", ctypes.c_uint64),
        ("max_abs_finite", ctypes.c_double),
        ("first_bad_index", ctypes.c_int64),
        ("headroom_hist", ctypes.c_uint64 * HEADROOM_BINS),
    ]


class AbiMismatch(RuntimeError):
    pass


_c = ctypes
_SIGNATURES = {
    "nantrace_abi_version": ([], _c.c_int),
    "nantrace_start": ([_c.c_char_p], _c.c_int),
    "nantrace_stop": ([], None),
    "nantrace_active": ([], _c.c_int),
    "nantrace_config_int": ([_c.c_char_p], _c.c_int64),
    "nantrace_run_dir": ([], _c.c_char_p),
    "nantrace_run_file_name": ([_c.c_char_p, _c.c_char_p], _c.c_char_p),
    "nantrace_set_rank": ([_c.c_int32, _c.c_int32], None),
    "nantrace_set_meta": ([_c.c_char_p, _c.c_char_p], None),
    "nantrace_set_progress_bar": ([_c.c_int32], None),
    "nantrace_step_begin": ([_c.c_int64], None),
    "nantrace_scope_push": ([_c.c_int32, _c.c_char_p, _c.c_char_p], None),
    "nantrace_scope_pop": ([], None),
    "nantrace_check": ([_c.POINTER(NtSite), _c.POINTER(NtTensor), _c.POINTER(NtStats)], _c.c_int),
    "nantrace_scalar": ([_c.c_char_p, _c.c_double], None),
    "nantrace_scalar_at": ([_c.c_char_p, _c.c_int64, _c.c_double], None),
    "nantrace_event": ([_c.c_int32, _c.c_char_p, _c.c_char_p], None),
    "nantrace_origin_found": ([], _c.c_int),
    "nantrace_scan_many": ([_c.c_void_p, _c.c_int32, _c.POINTER(_c.c_int32)], _c.c_int32),
    "nantrace_norm_many": ([_c.c_void_p, _c.c_int32, _c.POINTER(_c.c_double), _c.POINTER(_c.c_int32)], _c.c_int32),
    "nantrace_finding_json": ([], _c.c_char_p),
    "nantrace_stat": ([_c.c_char_p], _c.c_int64),
}


def _b(s):
    if s is None or isinstance(s, bytes):
        return s
    return str(s).encode("utf-8", "replace")


_names = {}  # series and event names, encoded once: they repeat every step


def _name(s):
    b = _names.get(s)
    if b is None:
        if len(_names) > 4096:
            _names.clear()
        b = _names[s] = _b(s)
    return b


class _Scratch:
    """Per-thread preallocated argument structs for nantrace_check."""

    def __init__(self):
        self.site = NtSite()
        self.tensor = NtTensor()
        self.sizes = (ctypes.c_int64 * MAX_NDIM)()
        self.strides = (ctypes.c_int64 * MAX_NDIM)()
        self.tensor.sizes = ctypes.cast(self.sizes, ctypes.POINTER(ctypes.c_int64))
        self.tensor.strides = ctypes.cast(self.strides, ctypes.POINTER(ctypes.c_int64))
        self.site_ref = ctypes.byref(self.site)
        self.tensor_ref = ctypes.byref(self.tensor)
        self.on_cuda = True  # device fields not yet set: the first CPU check writes them


class Binding:
    """The real library. Method names match FakeApi in the tests."""

    def __init__(self, path, dtype_codes, cuda_stream_of, eligible=None):
        lib = ctypes.CDLL(path)
        for name, (args, res) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes = args
            fn.restype = res
        version = lib.nantrace_abi_version()
        if version != ABI_VERSION:
            raise AbiMismatch("library ABI %d, hooks expect %d" % (version, ABI_VERSION))
        self._lib = lib
        self._path = path
        self.fast = None                     # the CPython extension's hot path, once use_fast() found it
        self._dtype_codes = dtype_codes      # torch dtype -> nt_dtype
        self._cuda_stream_of = cuda_stream_of  # device -> stream handle (int)
        self._eligible = eligible              # tensor -> checkable here (_tensors.eligible)
        self._tls = threading.local()
        self._check = lib.nantrace_check
        # scope_push(kind, name, mtype) / scope_pop(): the library's functions themselves (no
        # method in between: once per module forward each).
        self.scope_push = lib.nantrace_scope_push
        self.scope_pop = lib.nantrace_scope_pop
        self.step_begin = lib.nantrace_step_begin
        self._scalar = lib.nantrace_scalar
        self._event = lib.nantrace_event
        self.origin_found = lib.nantrace_origin_found
        self.active = lib.nantrace_active
        self.stop = lib.nantrace_stop
        self.last_stats = None

    def use_fast(self, plain_types, strided):
        """Take the hot path through the CPython extension (_nantrace_fast, built beside this
        file) when it loads and finds this library's ABI; otherwise stay on ctypes. Returns
        whether it is used. NANTRACE_FAST_PATH=0 keeps ctypes (tests compare the two)."""
        import os
        import sys
        value = os.environ.get("NANTRACE_FAST_PATH", "1")
        if value not in ("0", "1"):
            sys.stderr.write("nantrace: NANTRACE_FAST_PATH=%r is not 0 or 1; the default (1) is used\n" % value[:40])
        elif value == "0":
            return False
        try:
            from . import _nantrace_fast as fast
            if not fast.init(self._path, dict(self._dtype_codes), tuple(plain_types), strided):
                return False
        except Exception:  # noqa: BLE001 - not built, another Python, an older library
            return False
        self.fast = fast
        self._fast_check = fast.check
        self.scope_push = fast.push
        self.scope_pop = fast.pop
        return True

    def scan_many(self, tensors):
        """(number of tensors holding NaN/Inf, index of the first) for CPU tensors, recorded
        nowhere; None when it cannot say (no extension, a device tensor): check them one by one."""
        if self.fast is None:
            return None
        return self.fast.scan_many(tensors)

    def norm_many(self, tensors):
        """scan_many's answer and the tensors' total sum of squares (NaN unless all are finite):
        an optimizer's gradient check and global norm in one library call; None without the
        extension or for device tensors."""
        if self.fast is None:
            return None
        return self.fast.norm_many(tensors)

    def start(self, frontend):
        return self._lib.nantrace_start(_b(frontend))

    def config_int(self, key):
        return self._lib.nantrace_config_int(_b(key))

    def run_dir(self):
        d = self._lib.nantrace_run_dir()
        return d.decode("utf-8", "replace") if d else None

    def run_file_name(self, stem, ext):
        """This process's name for a file in the run directory ("origin_module.rank1.pt")."""
        n = self._lib.nantrace_run_file_name(_b(stem), _b(ext))
        return n.decode("utf-8", "replace") if n else "%s.%s" % (stem, ext)

    def set_rank(self, rank, world):
        self._lib.nantrace_set_rank(int(rank), int(world))

    def set_progress_bar(self, active):
        self._lib.nantrace_set_progress_bar(1 if active else 0)

    def set_meta(self, key, value):
        self._lib.nantrace_set_meta(_b(key), _b(value))

    def scalar(self, name, value):
        self._scalar(_name(name), float(value))

    def scalar_at(self, name, step, value):
        self._lib.nantrace_scalar_at(_b(name), int(step), float(value))

    def event(self, kind, name, detail_json=None):
        self._event(kind, _name(name), _b(detail_json))

    def stat(self, key):
        """A counter of the library ("checks", "nonfinite_checks"), -1 for an unknown key."""
        return self._lib.nantrace_stat(_b(key))

    def finding_json(self):
        s = self._lib.nantrace_finding_json()
        return s.decode("utf-8", "replace") if s else "{}"

    def check(self, phase, role, path, mtype, op, name, t, want_stats=False):
        """Check one tensor; what is not checkable (see _tensors.eligible) is NT_SKIPPED.
        Strings are bytes or None.

        On the hot path: a few hundred calls per training step, so every attribute access
        counts: the extension reads a plain CPU tensor in C; the rest (device tensors, a caller
        that wants the stats) takes the path below (slice assignment fills sizes/strides in one
        C loop)."""
        if self.fast is not None and not want_stats:
            r = self._fast_check(phase, role, path, mtype, op, name, t)
            if r != -2:
                return r
        if self._eligible is not None and not self._eligible(t):
            return NT_SKIPPED
        try:
            s = self._tls.s
        except AttributeError:
            s = self._tls.s = _Scratch()
        shape = t.shape
        nd = len(shape)
        if nd > MAX_NDIM:
            return NT_SKIPPED
        site = s.site
        site.phase = phase
        site.role = role
        site.module_path = path
        site.module_type = mtype
        site.op = op
        site.tensor_name = name
        ten = s.tensor
        ten.data = t.data_ptr()
        ten.dtype = self._dtype_codes[t.dtype]
        ten.ndim = nd
        if nd:
            s.sizes[:nd] = shape
            s.strides[:nd] = t.stride()
        if t.is_cuda:
            dev = t.device
            ten.device_type = DEVICE_CUDA
            ten.device_index = dev.index or 0
            ten.stream = self._cuda_stream_of(dev)
            s.on_cuda = True
        elif s.on_cuda:  # CPU fields are written only when the previous check was not on CPU
            ten.device_type = DEVICE_CPU
            ten.device_index = 0
            ten.stream = 0
            s.on_cuda = False
        if want_stats:
            st = NtStats()
            r = self._check(s.site_ref, s.tensor_ref, ctypes.byref(st))
            self.last_stats = st
            return r
        return self._check(s.site_ref, s.tensor_ref, None)
