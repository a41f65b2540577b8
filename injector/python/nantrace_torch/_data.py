"""Where a batch came from: the dataset indices of the batch the training loop took last, and
the source (a file) of each item where the dataset keeps a per-item list of them.

DataLoader iterators draw the index list of each batch from the (batch) sampler in the main
process (`_next_index`), also with workers, where the lists are drawn ahead for prefetching
and the batches come back in the same order (`in_order=True`, the default). So each index
list is queued when drawn and taken off when its batch is returned. Reading is lazy: only a
bad batch asks which indices it had and what their sources are.
"""
import collections
import weakref

from . import _binding as B
from . import _runtime as R

_MAX_QUEUED = 1024

_pending = weakref.WeakKeyDictionary()  # iterator -> deque of index lists drawn, not yet returned
_passes = weakref.WeakKeyDictionary()   # dataset -> passes begun over it (an epoch each)
_last_epoch = [None]                    # (id(dataset), pass) announced by the last training step
_sources_of = weakref.WeakKeyDictionary()  # dataset -> (attribute name, list) or None


def install(patch):
    from torch.utils.data import dataloader as dl
    base = dl._BaseDataLoaderIter
    patch(base, "_next_index", _wrap_next_index(base._next_index))
    patch(base, "__next__", _wrap_next(base.__next__))


def _wrap_next_index(orig):
    def _next_index(self):
        idx = orig(self)  # StopIteration passes through
        try:
            q = _pending.get(self)
            if q is None:
                q = _pending[self] = collections.deque(maxlen=_MAX_QUEUED)
            q.append(idx)
        except Exception:  # noqa: BLE001 - bookkeeping only
            pass
        return idx
    return _next_index


def _wrap_next(orig):
    def __next__(self):
        data = orig(self)
        try:
            q = _pending.get(self)
            idx = q.popleft() if q else None
            ordered = getattr(self, "_in_order", True)
            recent = getattr(R.tls, "recent_batches", None)
            if recent is None:
                recent = R.tls.recent_batches = collections.deque(maxlen=4)
            # Kept by the storage of its tensors: a loop may draw ahead (accelerate prefetches
            # one batch), so the bad tensor is matched to the batch it came from, not to the last.
            ds = self._dataset
            if self._num_yielded == 1:  # the first batch of a pass (also a persistent iterator's reset)
                _passes[ds] = _passes.get(ds, 0) + 1
            recent.append((_storages(data), idx if ordered else None, weakref.ref(ds),
                           _default_collate(self), self._num_yielded, _passes.get(ds, 0), _length(self)))
        except Exception:  # noqa: BLE001
            pass
        return data
    return __next__


def _length(it):
    try:
        return len(it)
    except Exception:  # noqa: BLE001 - an IterableDataset without __len__
        return None


def on_step_begin(step):
    """A training step began: when the batch it trains on is the first seen of a new pass over
    its DataLoader, that pass is an epoch (NT_EVENT_EPOCH). Evaluation loaders run without
    gradients and are not training steps."""
    import torch
    recent = getattr(R.tls, "recent_batches", None)
    if not recent or not torch.is_grad_enabled():
        return
    _, _, ds_ref, _, nth, npass, length = recent[-1]
    ds = ds_ref()
    if ds is None or npass < 1:
        return
    key = (id(ds), npass)
    if _last_epoch[0] == key:
        return
    _last_epoch[0] = key
    detail = {"epoch": npass, "batch": nth}
    if isinstance(length, int):
        detail["batches"] = length
    R.api.event(B.EVENT_EPOCH, type(ds).__name__, R.dumps(detail))


def _storages(data, depth=0):
    """{storage address: weak reference to the batch tensor} of a batch's tensors. The weak
    reference tells a live batch tensor from a later tensor that got the freed address."""
    import torch
    out = {}
    if isinstance(data, torch.Tensor):
        try:
            out[data.untyped_storage().data_ptr()] = weakref.ref(data)
        except Exception:  # noqa: BLE001 - a tensor without storage
            pass
    elif depth < 3 and isinstance(data, (list, tuple)):
        for v in data:
            out.update(_storages(v, depth + 1))
    elif depth < 3 and isinstance(data, dict):
        for v in data.values():
            out.update(_storages(v, depth + 1))
    return out


def _holds(storages, tensor):
    """Whether `tensor` shares its storage with a batch tensor that is still alive."""
    try:
        ptr = tensor.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001
        return False
    ref = storages.get(ptr)
    held = ref() if ref is not None else None
    return held is not None and held.untyped_storage().data_ptr() == ptr


def _default_collate(it):
    from torch.utils.data import _utils
    fn = getattr(it, "_collate_fn", None)
    return fn in (_utils.collate.default_collate, _utils.collate.default_convert)


def _recent_batch_of(tensor):
    """The most recent DataLoader batch (its record in R.tls.recent_batches) that `tensor` is
    (a view of) a tensor of, by storage; None."""
    for b in reversed(getattr(R.tls, "recent_batches", None) or ()):
        if _holds(b[0], tensor):
            return b
    return None


def from_recent_batch(tensor):
    """Whether `tensor` is (a view of) a tensor of a recent DataLoader batch: the same storage."""
    return _recent_batch_of(tensor) is not None


def describe_batch(tensor):
    """"batch 3 of its DataLoader's pass, dataset `Ds`, items [..]" for a tensor of a recent
    DataLoader batch (the same storage), or None."""
    b = _recent_batch_of(tensor)
    if b is None:
        return None
    _, idx, ds_ref, _, nth = b[:5]
    ds = ds_ref()
    text = "batch %d of its DataLoader's pass, dataset `%s`" % (nth, type(ds).__name__ if ds is not None else "?")
    if isinstance(idx, (list, tuple)) and idx and all(isinstance(i, int) for i in idx):
        text += ", items [%s]" % (", ".join(str(i) for i in idx[:32]) + (", ..." if len(idx) > 32 else ""))
    return text


def describe_rows(rows, tensor):
    """A sentence on where the bad rows of `tensor` came from, or None: the dataset indices
    (and sources) of those rows when the tensor is one of a recent DataLoader batch's (the
    same storage: not a copy made since) and the default collate kept the sampler's order; the
    batch's indices, with a word on why rows cannot be matched to them, for another collate."""
    last = _recent_batch_of(tensor)
    if not last or last[1] is None:
        return None
    _, idx, ds_ref, default, nth = last[:5]
    ds = ds_ref()
    indices = list(idx) if isinstance(idx, (list, tuple)) else [idx]
    if not indices or not all(isinstance(i, int) for i in indices):
        return None
    name = type(ds).__name__ if ds is not None else "dataset"
    src = _sources(ds)
    head = "The batch was batch %d of its DataLoader's pass, dataset `%s`" % (nth, name)
    if default and len(indices) > max(rows, default=-1):
        parts = []
        for r in rows[:16]:
            item = indices[r]
            where = _source_text(src, item)
            parts.append("sample %d is item %d%s" % (r, item, where))
        return head + ": " + "; ".join(parts) + "."
    listed = ", ".join(str(i) for i in indices[:32]) + (", ..." if len(indices) > 32 else "")
    line = head + ", items [%s]" % listed
    if src is not None:
        line += " (%s)" % ", ".join("%d: %s" % (i, _source(src, i)) for i in indices[:8])
    return line + ("; its collate_fn is the script's own (it may reorder samples, as GPT-SoVITS's sorts by "
                   "length), so which of them is the bad row is not known." if not default else ".")


def _sources(ds):
    """The dataset's per-item list of sources: a list attribute as long as the dataset whose
    items are paths or tuples holding one (GPT-SoVITS's audiopaths_sid_text)."""
    if ds is None:
        return None
    try:
        if ds in _sources_of:
            return _sources_of[ds]
    except TypeError:
        return None
    found = None
    try:
        n = len(ds)
        for attr, v in vars(ds).items():
            if isinstance(v, (list, tuple)) and len(v) == n and n > 0 and _path_of(v[0]) is not None:
                found = (attr, v)
                break
    except Exception:  # noqa: BLE001
        found = None
    try:
        _sources_of[ds] = found
    except TypeError:
        pass
    return found


def _path_of(item):
    if isinstance(item, str) and ("/" in item or "." in item):
        return item
    if isinstance(item, (list, tuple)):
        for x in item:
            if isinstance(x, str) and ("/" in x or "." in x):
                return x
    return None


def _source(src, i):
    attr, v = src
    try:
        return "`%s`" % _path_of(v[i])
    except Exception:  # noqa: BLE001
        return "?"


def _source_text(src, i):
    if src is None:
        return ""
    return ", %s (from `%s`)" % (_source(src, i), src[0])


def bad_samples(name, t):
    """Which samples of a bad batch tensor hold NaN/Inf, and how many elements each: one note
    (bounded), read once per bad tensor (the batch is already known bad: this is the fault)."""
    import torch
    try:
        key = (name, R.counter.step)
        if t.dim() < 1 or _bad_sample_notes[0] >= 8 or key in _bad_sample_seen:
            return  # bounded; once per tensor and step (LBFGS runs its closure several times)
        _bad_sample_notes[0] += 1
        _bad_sample_seen.add(key)
        with torch.no_grad():
            per = (~torch.isfinite(t)).reshape(t.shape[0], -1).sum(1)
        idx = per.nonzero().flatten().tolist()
        if not idx:
            return
        each = ", ".join("sample %d (%d of %d elements)" % (i, int(per[i]), t[0].numel()) for i in idx[:16])
        more = " and %d more" % (len(idx) - 16) if len(idx) > 16 else ""
        origin = describe_rows(idx, t)
        R.api.event(B.EVENT_NOTE, "Bad samples in `%s` of the batch at step %d" % (name, R.counter.step),
                    "%d of %d: %s%s.%s" % (len(idx), t.shape[0], each, more, " " + origin if origin else ""))
    except Exception:  # noqa: BLE001 - evidence only
        pass


_bad_sample_notes = [0]
_bad_sample_seen = set()


def reset_for_tests():
    _bad_sample_notes[0] = 0
    _bad_sample_seen.clear()
