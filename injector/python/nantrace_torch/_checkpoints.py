"""What each torch.save wrote: how many of its floating tensors hold NaN/Inf, the numbered
pattern its file belongs to (`G_*.pth`) and whether it is now the newest of that pattern, which
a script that resumes from "the latest checkpoint" would load.

Counted after the host's own save returned, from fused norms (a NaN or Inf anywhere makes a
tensor's norm non-finite; a non-finite norm is confirmed per tensor, since squares of finite
values above 1e19 overflow fp32). Device tensors are counted on their device and read once:
torch.save has just copied every one of them to the host, so that read adds no wait of its own.
The walk is bounded (tensors, depth), and module state is read through named_parameters /
named_buffers, never state_dict(), whose hooks belong to the user.
"""
import fnmatch
import os
import re

import torch

from . import _runtime as R

_MAX_TENSORS = 100000
_MAX_DEPTH = 6
_MAX_NAMES = 3
_loaded_patterns = set()  # patterns of files torch.load read in this run (the script resumes from them)


def facts(obj, path, resumes_from=()):
    """The NT_EVENT_CHECKPOINT detail for `obj` saved at `path` (nantrace.h)."""
    tensors, names = [], []
    _collect(obj, "", 0, tensors, names)
    out = {"tensors": len(tensors)}
    bad = _nonfinite(tensors)
    out["nonfinite_tensors"] = len(bad)
    if bad:
        out["nonfinite_names"] = [names[i] for i in bad[:_MAX_NAMES]]
    pattern = pattern_of(path)
    if pattern:
        out["pattern"] = pattern
        out["heads_pattern"] = heads(path, pattern)
        base = os.path.basename(pattern)
        out["resumed_from_pattern"] = pattern in _loaded_patterns or any(
            fnmatch.fnmatch(base, p) or base == p for p in resumes_from)
    return out


def note_load(f):
    """torch.load read `f`: a later save of the same pattern is what the script resumes from."""
    path = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", None)
    if isinstance(path, str):
        p = pattern_of(os.path.abspath(path))
        if p and len(_loaded_patterns) < 64:
            _loaded_patterns.add(p)


def _collect(obj, prefix, depth, tensors, names):
    if len(tensors) >= _MAX_TENSORS:
        return
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and obj.numel() > 0:
            tensors.append(obj.detach())
            names.append(prefix or "tensor")
        return
    if depth >= _MAX_DEPTH:
        return
    if isinstance(obj, torch.nn.Module):
        for n, t in obj.named_parameters():
            _collect(t, _join(prefix, n), depth + 1, tensors, names)
        for n, t in obj.named_buffers():
            _collect(t, _join(prefix, n), depth + 1, tensors, names)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _collect(v, _join(prefix, k), depth + 1, tensors, names)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _collect(v, _join(prefix, i), depth + 1, tensors, names)


def _join(prefix, key):
    key = str(key)
    return prefix + "." + key if prefix else key


_foreach_norm = getattr(torch, "_foreach_norm", None)


def _nonfinite(tensors):
    """Indices of the tensors holding NaN or Inf."""
    if not tensors:
        return []
    by_device = {}
    for i, t in enumerate(tensors):
        by_device.setdefault(t.device, []).append(i)
    bad = []
    with R.hooks_suspended(), torch.no_grad():
        for idx in by_device.values():
            group = [tensors[i] for i in idx]
            if _foreach_norm is not None:
                try:
                    flags = torch.stack([n.float() for n in _foreach_norm(group)]).isfinite().logical_not()
                    suspects = [idx[j] for j in flags.nonzero().flatten().tolist()]
                except RuntimeError:  # an odd mix of layouts: check each
                    suspects = idx
            else:
                suspects = idx
            bad += [i for i in suspects if not bool(torch.isfinite(tensors[i]).all())]
    return sorted(bad)


_NUMBER = re.compile(r"\d+")


def pattern_of(path):
    """`logs/G_2333.pth` -> `logs/G_*.pth`; `out/checkpoint-500/optimizer.pt` ->
    `out/checkpoint-*/optimizer.pt` (the file's own name holds no number); None when
    neither holds one."""
    d, base = os.path.split(path)
    stem, ext = os.path.splitext(base)
    m = list(_NUMBER.finditer(stem))
    if m:
        last = m[-1]
        return os.path.join(d, stem[:last.start()] + "*" + stem[last.end():] + ext)
    parent, dname = os.path.split(d)
    m = list(_NUMBER.finditer(dname))
    if m:
        last = m[-1]
        return os.path.join(parent, dname[:last.start()] + "*" + dname[last.end():], base)
    return None


def _number(name):
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else -1


def heads(path, pattern):
    """Whether `path` is now the newest file of `pattern` as "latest checkpoint" helpers pick it
    (GPT-SoVITS's latest_checkpoint_path: the largest number in the name)."""
    try:
        d, base = os.path.split(pattern)
        if "*" in base:
            names = [n for n in os.listdir(d or ".") if fnmatch.fnmatch(n, base)]
            mine = os.path.basename(path)
        else:  # the number is in the directory's name
            parent, dpat = os.path.split(d)
            names = [n for n in os.listdir(parent or ".")
                     if fnmatch.fnmatch(n, dpat) and os.path.exists(os.path.join(parent or ".", n, base))]
            mine = os.path.basename(os.path.dirname(path))
        if len(names) > 10000:
            return False
        return bool(names) and max(names, key=_number) == mine
    except OSError:
        return False
