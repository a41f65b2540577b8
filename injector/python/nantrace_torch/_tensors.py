"""Which tensors are checked, and how nested outputs are walked and named."""
import torch

from . import _binding as B

DTYPE_CODES = {
    torch.float16: B.DTYPE_F16,
    torch.bfloat16: B.DTYPE_BF16,
    torch.float32: B.DTYPE_F32,
    torch.float64: B.DTYPE_F64,
}
# Exact types only: tensor subclasses (FakeTensor, DTensor, functional wrappers) may have no
# real storage behind data_ptr().
_PLAIN = PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
_STRIDED = torch.strided
_MAX_DEPTH = 6


def eligible(t):
    # is_cpu / is_cuda are plain flags; t.device would build a torch.device object per call,
    # and this runs for every checked tensor.
    return (type(t) in _PLAIN and t.dtype in DTYPE_CODES and t.layout is _STRIDED
            and (t.is_cpu or t.is_cuda) and t.numel() > 0)


_name_cache = {}


def bname(s):
    """Cached UTF-8 encoding of a (small, recurring) name."""
    b = _name_cache.get(s)
    if b is None:
        if len(_name_cache) > 20000:
            _name_cache.clear()
        b = _name_cache[s] = s.encode("utf-8", "replace")
    return b


def iter_tensors(obj, prefix, depth=0):
    """Yield (name, tensor) for every eligible tensor in a nested output.

    Names: output[0], output['mel'], output[1][0], output.attr for dataclass-like objects."""
    if isinstance(obj, torch.Tensor):
        if eligible(obj):
            yield prefix, obj
        return
    if depth >= _MAX_DEPTH or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return
    if isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            if isinstance(v, torch.Tensor) or isinstance(v, (tuple, list, dict)) or hasattr(v, "__dataclass_fields__"):
                yield from iter_tensors(v, "%s[%d]" % (prefix, i), depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from iter_tensors(v, "%s[%r]" % (prefix, k), depth + 1)
    elif hasattr(obj, "__dataclass_fields__"):
        for k in obj.__dataclass_fields__:
            yield from iter_tensors(getattr(obj, k, None), "%s.%s" % (prefix, k), depth + 1)


def map_tensors(obj, fn, depth=0):
    """Copy of a nested structure with fn applied to every tensor (others kept as they are)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if depth >= _MAX_DEPTH:
        return obj
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(map_tensors(v, fn, depth + 1) for v in obj)
    if isinstance(obj, tuple):  # namedtuple
        return type(obj)(*(map_tensors(v, fn, depth + 1) for v in obj))
    if isinstance(obj, list):
        return [map_tensors(v, fn, depth + 1) for v in obj]
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn, depth + 1) for k, v in obj.items()}
    return obj


def foreach_norms(tensors, acc):
    """The L2 norm of each tensor, accumulated in dtype `acc`, from one fused call (torch's
    _foreach_norm; older torch without its dtype argument: converted after)."""
    try:
        return torch._foreach_norm(tensors, 2, dtype=acc)
    except TypeError:
        return [n.to(acc) for n in torch._foreach_norm(tensors)]


def detached_clone(t):
    return t.detach().clone()


class Readback:
    """A small device tensor's value brought to the host without synchronizing: a non-blocking
    copy into pinned memory, then a CUDA event; ready() polls the event, value() is the host
    tensor once it is ready. CPU tensors are ready at once. One mechanism for every value the
    hooks read back from the GPU (loss scale, gradient norm, a capture's verdict)."""

    __slots__ = ("host", "event")

    def __init__(self, t):
        t = t.detach()
        if t.is_cuda:
            self.host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            self.host.copy_(t, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.host, self.event = t, None

    def ready(self):
        return self.event is None or self.event.query()

    def value(self):
        return self.host


class Pending:
    """What a read-back value is for (meta), and the Readback bringing it."""

    __slots__ = ("meta", "back")

    def __init__(self, meta, back):
        self.meta, self.back = meta, back

    def ready(self):
        return self.back.ready()


class ReadbackQueue:
    """Values on their way back from the GPU, oldest first: the one queue behind every value
    the hooks read back (gradient norms, loss scales, a capture's verdicts). Entries are
    anything with ready() (Pending, a capture Snapshot). Read in order once ready, never
    waited for: pop_ready() stops at the first entry whose copy has not landed, so a later
    answer is never taken before an earlier one. Bounded: push onto a full queue is refused
    and the caller goes without that value."""

    __slots__ = ("_items", "limit")

    def __init__(self, limit):
        self._items, self.limit = [], limit

    def __len__(self):
        return len(self._items)

    def full(self):
        return len(self._items) >= self.limit

    def push(self, entry):
        if self.full():
            return False
        self._items.append(entry)
        return True

    def pop_ready(self):
        """The next entry whose answer has landed, or None."""
        if self._items and self._items[0].ready():
            return self._items.pop(0)
        return None

    def clear(self):
        self._items.clear()
