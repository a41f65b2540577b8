"""Qualified module and parameter names, from the root model's class: "TinyVits/dec.ups.1".

The root is the outermost module of the current forward call. Wrappers that only hold the real
model (DDP, DataParallel, torch.compile's OptimizedModule, FSDP) are looked through: the root is
named after the wrapped model's class and the wrapper's attribute names are stripped.
"""
import weakref

from ._tensors import bname

_WRAPPER_ATTRS = {
    "DistributedDataParallel": "module",
    "DataParallel": "module",
    "OptimizedModule": "_orig_mod",
    "FullyShardedDataParallel": "_fsdp_wrapped_module",
}
_STRIP_SEGMENTS = ("module", "_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module")


def unwrap(root):
    m = root
    for _ in range(4):
        attr = _WRAPPER_ATTRS.get(type(m).__name__)
        inner = getattr(m, attr, None) if attr else None
        if inner is None:
            return m
        m = inner
    return m


def _clean(name, wrapped):
    if not wrapped or not name:
        return name
    parts = name.split(".")
    while parts and parts[0] in _STRIP_SEGMENTS:
        parts.pop(0)
    parts = [p for p in parts if p not in ("_fsdp_wrapped_module", "_checkpoint_wrapped_module")]
    return ".".join(parts)


class RootInfo:
    """Names of every submodule and parameter under one root, built once and refreshed on a miss."""

    __slots__ = ("label", "paths", "params", "has_params", "misses", "__weakref__")

    def __init__(self, root, owner=None):
        inner = unwrap(root)
        # A root run by a module that is never called itself (a LightningModule's training_step
        # calling self.generator) is named inside that owner: "GAN/generator".
        self.label = "%s/%s" % owner if owner else type(inner).__name__
        self.paths = {}    # id(module) -> (path bytes, type bytes)
        self.params = {}   # id(param) -> (weakref, name bytes, owner path bytes, owner type bytes)
        self.misses = 0
        self.has_params = False
        self.refresh(root)

    def refresh(self, root):
        wrapped = unwrap(root) is not root
        label = self.label
        paths = {}
        params = {}
        sep = "." if "/" in label else "/"
        for name, mod in root.named_modules(remove_duplicate=True):
            clean = _clean(name, wrapped)
            path = label + sep + clean if clean else label
            entry = (bname(path), bname(type(mod).__name__))
            if id(mod) not in paths or not clean:
                paths.setdefault(id(mod), entry)
            for pname, p in mod.named_parameters(recurse=False):
                if id(p) not in params:
                    params[id(p)] = (weakref.ref(p), bname(path + "." + pname), entry[0], entry[1])
        paths[id(root)] = (bname(label), bname(type(unwrap(root)).__name__))
        self.paths = paths
        self.params = params
        self.has_params = bool(params)
        _param_index.update(params)

    def path_of(self, module, root):
        e = self.paths.get(id(module))
        if e is None and self.misses < 16:
            self.misses += 1
            self.refresh(root)
            e = self.paths.get(id(module))
        return e


_roots = weakref.WeakKeyDictionary()   # root module -> RootInfo
_param_index = {}                      # id(param) -> (weakref, name, owner path, owner type)


def root_info(root, find_owner=None):
    """The names under `root`; `find_owner()` is asked once, when the root is first seen, for
    (owner class name, attribute path) of a module that holds it without being called."""
    info = _roots.get(root)
    if info is None:
        owner = None
        if find_owner is not None:
            try:
                owner = find_owner()
            except Exception:  # noqa: BLE001 - a name is a nicety
                owner = None
        info = _roots[root] = RootInfo(root, owner)
    return info


def param_name(p):
    e = _param_index.get(id(p))
    if e is not None and e[0]() is p:
        return e
    return None
