"""Ops born in functional code (a loss written with plain torch functions), pinned from the
autograd graph of the non-finite tensor, without re-running anything of the user's.

Autograd keeps, per op, what its backward needs: the node (`grad_fn`), the edges to the
nodes that made its inputs (`next_functions`) and the tensors it saved (`_saved_self`,
`_saved_other`, `_saved_result`, ...). A saved tensor unpacks with its own `grad_fn`, so a
tensor saved by one node tells the value of the node that made it. From the non-finite
tensor the search walks back along non-finite values:

    node N made a non-finite value
      an input of N is non-finite   -> made further back: follow the input's node
                                       (not recorded by autograd: it entered from outside)
      every input of N is finite    -> N made it: its op, its inputs, its output
      an input of N is not known    -> not determined (said so, never guessed)

An input's value is the tensor N saved for it, the value saved by another node that also
consumed it, a leaf's own tensor, or else recomputed from what its node saved, with the aten
op of that node (`LogBackward0` -> `aten::log` on its saved `self`): a torch op on tensors
autograd kept, not the user's code; no hook runs, no RNG is drawn, nothing is modified.
Bounded: at most _MAX_NODES nodes read and _MAX_RECOMPUTE ops recomputed per search, and
module outputs already checked finite are not entered (their values are known)."""
import re

import torch

_MAX_NODES = 4000
_MAX_RECOMPUTE = 48
_MAX_DEPTH = 256
_SIZE_ATTR = re.compile(r"_sym_(sizes|strides|numel|argsize|storage_offset)$|_sizes$|_strides$|_numel$")
# Ops that only carry a value: a non-finite output means a non-finite input. Used when that
# input's value cannot be read back (nothing saved it, it cannot be recomputed).
_CARRY = frozenset(("neg", "clone", "view", "reshape", "_unsafe_view", "t", "transpose", "permute", "expand",
                    "squeeze", "unsqueeze", "select", "slice", "alias", "detach", "contiguous", "_to_copy",
                    "as_strided", "unbind", "split", "chunk", "narrow", "flatten", "unflatten", "index_select",
                    "repeat", "cat", "stack", "abs", "relu"))


class Input:
    __slots__ = ("name", "tensor", "node", "nr")

    def __init__(self, name, tensor, node, nr):
        self.name, self.tensor, self.node, self.nr = name, tensor, node, nr


class Pin:
    """What the search found. status:
      "pinned"       `node` made the value from finite inputs (`inputs`, `output`)
      "untracked"    the value entered `node` as the input `inputs[0]`, a tensor autograd did
                     not record (it needs no gradient: data, targets, statistics of the batch,
                     or code run under no_grad)
      "undetermined" `node` holds the value, and an input's value could not be read back
      "no_graph"     the tensor has no autograd history (computed under no_grad)"""

    __slots__ = ("status", "node", "op", "inputs", "output", "reason")

    def __init__(self, status, node=None, op=None, inputs=(), output=None, reason=""):
        self.status, self.node, self.op = status, node, op
        self.inputs, self.output, self.reason = list(inputs), output, reason

    @property
    def node_name(self):
        return self.node.name() if self.node is not None else None


def finite(t):
    """All of `t` finite; a tensor that cannot be read so counts as finite (nothing to blame)."""
    try:
        return bool(torch.isfinite(t).all())
    except Exception:  # noqa: BLE001 - not a floating tensor we can read: treated as finite
        return True


def _floating(t):
    return isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() > 0


def op_name_of(node):
    """`MseLossBackward0` -> "mse_loss" when aten has that op ("_softmax" for a leading
    underscore); None for custom Functions and nodes without an aten twin."""
    name = node.name()
    m = re.match(r"^([A-Za-z0-9]+?)Backward\d*$", name)
    if not m:
        return None
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", m.group(1)).lower()
    for cand in (snake, "_" + snake):
        if hasattr(torch.ops.aten, cand):
            return cand
    return None


class Search:
    def __init__(self, known):
        # (id(node), output_nr) -> tensor: the value that node made, where something kept it.
        self.known = dict(known)
        self.finite_nodes = set()  # ids of nodes whose value was checked finite (module outputs)
        self.saved_cache = {}
        self.value_cache = {}
        self.recomputes = 0
        self.nodes_read = 0

    # ---- what a node saved ----------------------------------------------------------
    def saved(self, node):
        """{name: value} of what `node` saved (tensors and scalars), sizes and strides left out."""
        k = id(node)
        s = self.saved_cache.get(k)
        if s is not None:
            return s
        s = {}
        self.nodes_read += 1
        for attr in dir(node):
            if not attr.startswith("_saved_") or _SIZE_ATTR.search(attr):
                continue
            try:
                v = getattr(node, attr)
            except Exception:  # noqa: BLE001 - freed after a backward, or not readable
                continue
            if isinstance(v, int) and not isinstance(v, bool) and v >= 1 << 63:
                v -= 1 << 64  # a negative int64 (a dim of -1) comes back as its unsigned bits
            s[attr[len("_saved_"):]] = v
            for t in (v if isinstance(v, (tuple, list)) else (v,)):
                if isinstance(t, torch.Tensor) and t.grad_fn is not None:
                    self.known.setdefault((id(t.grad_fn), t.output_nr), t)
        self.saved_cache[k] = s
        return s

    def scan(self, root, budget):
        """Read what every node reachable from `root` saved (so that each node's value is known
        wherever any consumer kept it), not entering module outputs checked finite."""
        stack, seen = [root], {id(root)}
        while stack and len(seen) < budget:
            n = stack.pop()
            if id(n) in self.finite_nodes:
                continue
            self.saved(n)
            for nxt, _ in n.next_functions:
                if nxt is not None and id(nxt) not in seen:
                    seen.add(id(nxt))
                    stack.append(nxt)

    # ---- the value a node made ---------------------------------------------------------
    def value(self, node, nr, depth=0):
        if node is None:
            return None
        k = (id(node), nr)
        if k in self.known:
            return self.known[k]
        if k in self.value_cache:
            return self.value_cache[k]
        self.value_cache[k] = None  # a cycle or a failure below reads "not known"
        v = None
        if hasattr(node, "variable"):  # AccumulateGrad: a leaf (a parameter or an input)
            v = node.variable
        elif depth < 8 and self.recomputes < _MAX_RECOMPUTE:
            v = self.recompute(node, nr, depth)
        self.value_cache[k] = v
        return v

    def recompute(self, node, nr, depth):
        """The node's forward value from what it saved (and its inputs' values), with its aten op."""
        op = op_name_of(node)
        if op is None:
            return None
        packet = getattr(torch.ops.aten, op)
        saved = self.saved(node)
        edges = node.next_functions
        meta = _output_meta(node, nr)
        for ov in packet.overloads():
            fn = getattr(packet, ov)
            args = self._arguments(fn._schema, saved, edges, depth)
            if args is None:
                continue
            if op == "_to_copy" and "dtype" not in args[1] and meta is not None:
                args[1]["dtype"] = meta[0]  # a cast: autograd keeps its target dtype only as the output's
            self.recomputes += 1
            try:
                with torch.no_grad(), _no_autocast():
                    out = fn(*args[0], **args[1])
            except Exception:  # noqa: BLE001 - a schema we could not fill right
                continue
            if isinstance(out, (tuple, list)):
                out = out[nr] if nr < len(out) else None
            if not isinstance(out, torch.Tensor):
                continue
            if meta is not None and (out.dtype != meta[0] or tuple(out.shape) != meta[1]):
                continue  # not the value the forward made: never used as one
            return out
        return None

    def edge_names(self, node):
        """The schema names of the node's input edges ("self", "other"), or input[k]."""
        edges = node.next_functions
        op = op_name_of(node)
        if op is not None:
            packet = getattr(torch.ops.aten, op)
            for ov in packet.overloads():
                names = [a.name for a in getattr(packet, ov)._schema.arguments if _is_tensor_type(a.type)]
                if len(names) == len(edges):
                    return names
        return ["input[%d]" % k for k in range(len(edges))]

    def _arguments(self, schema, saved, edges, depth):
        """(args, kwargs) for the overload `schema` from the node's saved values and the values
        of its input edges (the k-th tensor argument is the k-th edge: only trusted when their
        numbers match; a lone tensor-list argument, as cat's and stack's, takes every edge), or
        None."""
        tensor_args = [a for a in schema.arguments if _is_tensor_type(a.type)]
        list_args = [a for a in schema.arguments if str(a.type) in _TENSOR_LISTS]
        use_edges = len(tensor_args) == len(edges) and not list_args
        list_edges = not tensor_args and len(list_args) == 1
        args, kwargs, k = [], {}, 0
        for a in schema.arguments:
            is_t = _is_tensor_type(a.type)
            v, have = None, False
            if a.name in saved and saved[a.name] is not None:
                v, have = saved[a.name], True
            elif is_t and use_edges and edges[k][0] is not None:
                v = self.value(edges[k][0], edges[k][1], depth + 1)
                have = v is not None
            elif list_edges and a is list_args[0] and all(e[0] is not None for e in edges):
                v = [self.value(e[0], e[1], depth + 1) for e in edges]
                have = all(x is not None for x in v)
            if is_t:
                k += 1
            if not have:
                if a.has_default_value():
                    if a.kwarg_only:
                        continue
                    v = a.default_value
                else:
                    return None
            if a.kwarg_only:
                kwargs[a.name] = v
            else:
                args.append(v)
        return args, kwargs

    # ---- the inputs of a node ---------------------------------------------------------
    def inputs(self, node):
        """The inputs of `node` in the order of its edges, named as its schema names them, each
        with its value where it can be had (tensor None where it cannot); then what it saved
        that no edge stands for."""
        saved = self.saved(node)
        names = self.edge_names(node)
        out, used = [], set()
        for k, (nxt, nr) in enumerate(node.next_functions):
            name = names[k]
            v = saved.get(name)
            if isinstance(v, torch.Tensor):
                used.add(name)
            else:
                v = self._saved_value_of(saved, nxt, nr, used) if nxt is not None else None
                if v is None and nxt is not None:
                    v = self.value(nxt, nr)
            out.append(Input(name, v if isinstance(v, torch.Tensor) else None, nxt, nr))
        for name, v in saved.items():
            if name in used or name.startswith("result") or not _floating(v):
                continue
            out.append(Input(name, v, None, 0))  # saved, no edge: a tensor that needs no gradient
        return out

    @staticmethod
    def _saved_value_of(saved, nxt, nr, used):
        for name, v in saved.items():
            if name not in used and isinstance(v, torch.Tensor) and not name.startswith("result") and (
                    (v.grad_fn is nxt and v.output_nr == nr) or getattr(nxt, "variable", None) is v):
                used.add(name)
                return v
        return None


def _output_meta(node, nr):
    """(dtype, shape) of the value the node made, as autograd recorded it, or None."""
    try:
        m = node._input_metadata[nr]
        return m.dtype, tuple(m.shape)
    except Exception:  # noqa: BLE001 - older torch
        return None


_TENSOR_LISTS = ("List[Tensor]", "Tensor[]")


def _is_tensor_type(ty):
    s = str(ty)
    return s in ("Tensor", "Optional[Tensor]") or s.startswith("Tensor(")


class _no_autocast:
    """Recompute in the dtypes autograd saved: autocast already cast them."""

    def __enter__(self):
        self.ctx = []
        for dev in ("cpu", "cuda"):
            try:
                c = torch.autocast(dev, enabled=False)
                c.__enter__()
                self.ctx.append(c)
            except Exception:  # noqa: BLE001 - no such backend here
                pass
        return self

    def __exit__(self, *exc):
        for c in reversed(self.ctx):
            c.__exit__(None, None, None)
        return False


def find(tensor, known=(), finite_nodes=()):
    """Where the non-finite `tensor` was made: a Pin. `known`: ((node, output_nr), tensor) of
    values kept elsewhere (module outputs); `finite_nodes`: nodes whose value was checked finite
    (module outputs), not entered."""
    node = getattr(tensor, "grad_fn", None)
    if node is None:
        return Pin("no_graph", reason="it was computed without autograd (under no_grad, or from tensors that need "
                                      "no gradient), so no op history was kept")
    s = Search({(id(n), nr): t for (n, nr), t in known})
    s.finite_nodes = {id(n) for n in finite_nodes}
    s.known[(id(node), tensor.output_nr)] = tensor
    with torch.no_grad():
        s.scan(node, _MAX_NODES)
        cur = node
        for _ in range(_MAX_DEPTH):
            ins = s.inputs(cur)
            bad = [i for i in ins if i.tensor is not None and not finite(i.tensor)]
            if bad:
                tracked = [i for i in bad if i.node is not None and not hasattr(i.node, "variable")]
                if tracked:
                    cur = tracked[0].node
                    continue
                first = bad[0]
                if first.node is not None:  # AccumulateGrad: a leaf that requires grad
                    why = ("its input `%s` is a leaf tensor (a parameter) that was already non-finite: an earlier "
                           "update or a loaded checkpoint wrote it" % first.name)
                else:
                    why = ("its input `%s` was already non-finite and autograd kept no record of where it was made "
                           "(a tensor that needs no gradient: data, targets, statistics of the batch, or code run "
                           "under no_grad)" % first.name)
                return Pin("untracked", cur, _op_label(cur), ins, s.value(cur, 0), reason=why)
            unknown = [i for i in ins if i.tensor is None]
            if not unknown:
                return Pin("pinned", cur, _op_label(cur), ins, s.value(cur, 0))
            if len(unknown) == 1 and unknown[0].node is not None and op_name_of(cur) in _CARRY:
                cur = unknown[0].node  # only carries its input: that input was non-finite
                continue
            return Pin("undetermined", cur, _op_label(cur), ins, s.value(cur, 0),
                       reason="autograd kept no value of its input `%s`%s, so whether `%s` made the value or "
                              "received it is not known" % (
                                  unknown[0].name,
                                  " (made by `%s`)" % unknown[0].node.name() if unknown[0].node is not None else "",
                                  cur.name()))
    return Pin("undetermined", cur, _op_label(cur), reason="the graph is deeper than the search reads")


def _op_label(node):
    op = op_name_of(node)
    return ("aten::" + op) if op else None
