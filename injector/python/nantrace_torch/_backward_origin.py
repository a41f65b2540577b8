"""Values born in backward: which module's backward made the first non-finite gradient.

The gradient checks sit on module outputs (GradCheck in _modules). When the first non-finite
gradient of a backward arrives at module A's output, A did not make it: the backward of
whatever consumed A's output did. Which consumer is read from the autograd graph, at that
moment and only then: every checked module output of the forward (and every loss) is
remembered with its autograd node; the consumers are the checked outputs whose gradient was
finite and whose node reaches A's node without passing another checked output. Their
innermost common module made the value (its output's gradient was finite, the gradient
w.r.t. its input is not); when a single consumer's own node feeds A's node directly, that
node (`grad_fn` name, e.g. "MyFuncBackward") is the backward op that made it.

Nothing is added to the graph and no hook of the user's runs: the graph is only read. The
nodes are held for one forward per root and let go when a backward returns, an optimizer
steps, or the root's next forward begins (by then the script has usually dropped the previous
graph itself), so no activation memory is kept beyond what the script keeps.
"""
import torch

from . import _binding as B
from . import _paths
from . import _runtime as R

_MAX_NODES = 50000      # graph nodes read per search
_MAX_SEARCHES = 16      # per run: GradScaler's early overflows each start one
_LOSS_CODE = b""        # the code after the model, up to the loss

_forwards = {}          # id(root) -> Forward: its last forward's checked outputs
_losses = []            # autograd nodes of the losses of the backward in flight
_state = {"reported": False, "searches": 0}


class Forward:
    """One root forward's checked outputs: (GradCheck, node, args, kwargs, output) per output,
    args and kwargs being the module's own inputs and output a weak reference to the output
    (read only at a fault), and the nodes of the root's outputs (what the loss computation
    consumed)."""

    __slots__ = ("entries", "root_outputs")

    def __init__(self):
        self.entries = []
        self.root_outputs = set()

    def add(self, check, node, args, kwargs, output=None):
        self.entries.append((check, node, args, kwargs, output))


def begin_forward(root):
    """A root forward starts: its previous forward's nodes are let go."""
    fw = Forward()
    if len(_forwards) > 64:
        _forwards.clear()
    _forwards[id(root)] = fw
    return fw


def begin_backward(losses):
    """A top-level backward starts from these loss tensors."""
    _state["reported"] = False
    del _losses[:]
    for t in losses:
        node = getattr(t, "grad_fn", None)
        if node is not None:
            _losses.append(node)


def release():
    """No backward can still need the nodes: a backward returned or an optimizer stepped."""
    _forwards.clear()
    del _losses[:]


def checked_outputs():
    """The module outputs checked in the forwards still held: (((node, output_nr), tensor) of
    those still alive, every node). Read at a fault, by the graph search (_graph_origin)."""
    values, nodes = [], []
    for fw in list(_forwards.values()):
        for _, node, _, _, out in fw.entries:
            nodes.append(node)
            t = out() if out is not None else None
            if t is not None and t.grad_fn is node:
                values.append(((node, t.output_nr), t))
    return values, nodes


def on_nonfinite_grad(check):
    """The gradient at `check`'s module output is non-finite. The first time in a backward,
    find the backward that made it and announce it (NT_EVENT_BACKWARD_ORIGIN)."""
    if _state["reported"] or _state["searches"] >= _MAX_SEARCHES:
        return
    _state["reported"] = True
    _state["searches"] += 1
    found = find_maker(list(_forwards.values()), list(_losses), check)
    if found is None:
        return
    module, mtype, node, consumers = found
    detail = {
        "module": module.decode("utf-8", "replace"),
        "module_type": mtype.decode("utf-8", "replace"),
        "node": node,
        "seen_at": check.path.decode("utf-8", "replace"),
        "consumers": [p.decode("utf-8", "replace") or "the loss computation" for p in consumers],
    }
    R.api.event(B.EVENT_BACKWARD_ORIGIN, "backward_origin", R.dumps(detail))


def find_maker(forwards, losses, check):
    """(module path, type, grad_fn name or None, consumer paths) of the backward that made the
    gradient at `check`'s output non-finite, or None when it cannot be told (no node, a graph
    too large to read, no consumer).

    A consumer is a checked output whose gradient was finite and whose node reaches the
    target without crossing another checked output. The consumer module made the value when
    it took the target output itself as an input (every node between is its own); otherwise
    the path left it through an input that code around it computed from the target, and the
    maker lies in the innermost module enclosing both."""
    entries = [e for fw in forwards for e in fw.entries]
    targets = {id(n) for c, n, _, _, _ in entries if c is check}
    if not targets:
        return None
    boundary = {id(n) for _, n, _, _, _ in entries}
    makers, consumers, nodes = [], [], []
    budget = _MAX_NODES
    for c, node, args, kwargs, _ in entries:
        if c is check or not c.finite:  # the target, or a gradient not (yet) known finite
            continue
        hit, adjacent, budget = _reaches(node, targets, boundary, budget)
        if budget <= 0:
            return None
        if not hit:
            continue
        own = adjacent or bool(targets & _input_nodes(args, kwargs))
        makers.append(c.path if own else common_module([c.path, check.path]))
        consumers.append(c.path)
        nodes.append(node.name() if adjacent else None)
    root_outputs = set().union(*(fw.root_outputs for fw in forwards)) if forwards else set()
    for node in losses:
        hit, adjacent, budget = _reaches(node, targets, boundary, budget)
        if budget <= 0:
            return None
        if hit:
            # From the model's own output the code in between is the loss computation's;
            # from an inner output it may also be the model's code after that output.
            makers.append(_LOSS_CODE if targets & root_outputs else _root_of(check.path))
            consumers.append(_LOSS_CODE)
            nodes.append(node.name() if adjacent else None)
    if not makers:
        return None
    module = common_module(makers) if all(makers) else (_LOSS_CODE if len(set(makers)) == 1 else b"")
    mtype = _type_of(module, entries)
    node = nodes[0] if len(makers) == 1 and makers[0] in (consumers[0], _LOSS_CODE) else None
    return module, mtype, node, _unique(consumers)


def _input_nodes(args, kwargs):
    out = set()
    for v in tuple(args or ()) + tuple((kwargs or {}).values()):
        n = getattr(v, "grad_fn", None) if isinstance(v, torch.Tensor) else None
        if n is not None:
            out.add(id(n))
    return out


def _unique(items):
    seen, out = set(), []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def _root_of(path):
    return path.partition(b"/")[0]


def _reaches(start, targets, boundary, budget):
    """Depth-first over next_functions from `start`: (reached a target, reached it from
    `start` itself, budget left). Other checked outputs are not crossed: beyond them the
    value is that module's."""
    hit = adjacent = False
    stack, visited = [start], set()
    while stack and budget > 0:
        n = stack.pop()
        budget -= 1
        for nxt, _ in n.next_functions:
            if nxt is None:
                continue
            k = id(nxt)
            if k in targets:
                hit = True
                adjacent = adjacent or n is start
                continue
            if k in boundary or k in visited:
                continue
            visited.add(k)
            stack.append(nxt)
    return hit, adjacent, budget


def common_module(paths):
    """The innermost module enclosing every path ("Net/enc.0", "Net/enc.1" -> "Net/enc");
    b"" when one is the loss computation or they lie under different roots."""
    if not paths or any(not p for p in paths):
        return b""
    split = [_parts(p) for p in paths]
    common = split[0]
    for s in split[1:]:
        n = 0
        while n < len(common) and n < len(s) and common[n] == s[n]:
            n += 1
        common = common[:n]
    if not common:
        return b""
    root, rest = common[0], common[1:]
    return root + (b"/" + b".".join(rest) if rest else b"")


def _parts(path):
    root, _, rest = path.partition(b"/")
    return [root] + (rest.split(b".") if rest else [])


def _type_of(path, entries):
    for c, _, _, _, _ in entries:
        if c.path == path:
            return c.mtype
    for info in list(_paths._roots.values()):  # a container whose output was its child's
        for p, t in info.paths.values():
            if p == path:
                return t
    return b""


def reset_for_tests():
    release()
    _state["reported"] = False
    _state["searches"] = 0
