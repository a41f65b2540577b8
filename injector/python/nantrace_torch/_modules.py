"""Global module hooks: module scopes, forward-output checks, gradients at module outputs,
batches entering the root model, evidence and replay on the first non-finite forward output."""
import json
import sys
from collections import OrderedDict
from weakref import ref as _weakref

import torch
from torch.nn.modules import module as nn_module

from . import _backward_origin
from . import _binding as B
from . import _capture
from . import _data
from . import _guard
from . import _investigation
from . import _paths
from . import _root_hooks
from . import _runtime as R
from . import _step_replay
from ._paths import root_info
from ._tensors import eligible, iter_tensors, bname

_handles = []
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)
# The autograd node backward is running in this thread, or None outside backward.
_current_node = getattr(torch._C, "_current_autograd_node", lambda: None)
_grad_enabled = torch.is_grad_enabled
_always_called = True  # the post hook also runs when a forward raises (set at install)
_capture_armed = _capture.armed


class Frame:
    """One module forward in flight. With the extension, its C twin (_nantrace_fast.Frame, the
    same attributes) replaces this class at install, so that its common-case hooks and these
    share one stack."""
    __slots__ = ("module", "path", "mtype", "pushed", "opmode", "root", "info", "seen", "args", "kwargs", "nodes",
                 "phase")

    def __init__(self, module, path, mtype, root, info, seen, args, kwargs=None, nodes=None, phase=B.PHASE_FORWARD):
        self.module, self.path, self.mtype = module, path, mtype
        self.root, self.info = root, info
        # The inputs of this forward, kept (by reference, only while it runs) in case a value
        # born in its own code has to be traced back to it (_follow_back).
        self.args, self.kwargs = args, kwargs
        self.pushed = False
        self.opmode = None  # the op-level mode entered for this forward
        # Tensors already checked in this root forward: id -> (weakref, version). Shared by
        # every frame under one root; a container handing on its child's output unchanged
        # (nn.Sequential, a model returning its submodules' feature maps) is not checked
        # again, nor does its gradient get a second hook.
        self.seen = seen
        # (GradCheck, autograd node) of every output whose gradient is checked in this root
        # forward: read only if a backward value has to be followed to where it was made.
        self.nodes = nodes
        self.phase = phase  # PHASE_FORWARD, or PHASE_EVALUATION for the whole of an evaluation forward


def _unwind_to(st, module):
    """Pop frames above `module`'s frame (left by forwards that raised). Returns its frame."""
    for i in range(len(st) - 1, -1, -1):
        if st[i].module is module:
            for stale in st[i + 1:]:
                _close(stale)
            frame = st[i]
            del st[i:]
            return frame
    return None


def _close(frame):
    if frame.opmode is not None:
        try:
            frame.opmode.__exit__(None, None, None)
        except Exception:  # noqa: BLE001
            pass
        frame.opmode = None
    if frame.pushed:
        R.api.scope_pop()
        frame.pushed = False


def clear_stack():
    """Called where no forward can be in flight (backward(), optimizer step)."""
    st = R.stack()
    while st:
        _close(st.pop())


def _transparent(module):
    """torch.compile's own modules (the fx.GraphModule an eager or aot_eager backend runs) are
    not the user's: they are looked through, neither named nor checked nor replayed (an fx
    module that raises prints its own traceback)."""
    t = type(module)
    v = _transparent_types.get(t)
    if v is None:
        if len(_transparent_types) > 4096:
            _transparent_types.clear()
        v = _transparent_types[t] = _GraphModule is not None and issubclass(t, _GraphModule)
    return v


try:
    from torch.fx import GraphModule as _GraphModule
except Exception:  # noqa: BLE001
    _GraphModule = None
_transparent_types = {}


def _pre_hook(module, args, kwargs):
    """Every module's forward pre-hook (guarded by its caller, _pre_hook_args). The hot path:
    a submodule of a running forward costs a frame and, when module outputs are checked this
    step, a scope; a root forward does the rest (phase, step, batch)."""
    tls = R.tls
    if getattr(tls, "suspended", False) or not (R._started or R.ensure_started()):
        return None
    transparent = _transparent_types.get(type(module))
    if transparent is None:
        transparent = _transparent(module)
    if transparent:
        return None
    st = getattr(tls, "stack", None)
    if st is None:
        st = tls.stack = []
    if st and not _always_called and any(f.module is module for f in st):
        # Older torch runs no post hook for a forward that raised: a module entered again is
        # what is left of one. (With always_call the post hook unwinds, and a module that
        # calls itself is recursion, not a leftover.)
        _unwind_to(st, module)
    if st:
        parent = st[-1]
        e = parent.info.paths.get(id(module)) or parent.info.path_of(module, parent.root)
        if e is None:
            name = type(module).__name__
            e = (bname(parent.path.decode() + "/" + name), bname(name))
        frame = Frame(module, e[0], e[1], parent.root, parent.info, parent.seen, args, None, parent.nodes, parent.phase)
    elif _current_node() is not None:
        # A forward run by backward: activation checkpointing recomputing a block. It is the
        # same forward again, named where it sits in its model, and neither a batch nor a step.
        frame = _recompute_frame(module, args)
        if frame is None:
            return None
    elif not st:
        info = root_info(module, lambda: _owner_of(module))
        grad = torch.is_grad_enabled()
        # Evaluation: a model in eval mode run without autograd (a validation loop, HF
        # Trainer.evaluate, Lightning's validation step), and a module without parameters (a
        # loss, a metric: never put in eval mode) right after one, on values that need no
        # gradient. A no_grad forward of a model in training mode (a GAN's generator under
        # no_grad, reentrant checkpointing) is training.
        evaluation = (not grad and not module.training) or (
            not info.has_params and R.phase() == B.PHASE_EVALUATION and (not grad or not _needs_grad(args)))
        phase = B.PHASE_EVALUATION if evaluation else B.PHASE_FORWARD
        if evaluation and info.has_params:
            _evaluation[0] += 1  # the n-th evaluation forward of the model since training last ran
            _evaluation[1] = args
        elif grad and not evaluation and not _step_replay.running():  # a step replay is the same step
            _evaluation[0] = 0
            R.activity()
        R.set_phase(phase)
        path, mtype = info.paths[id(module)]
        kwargs = _caller_kwargs()
        frame = Frame(module, path, mtype, module, info, {}, args, kwargs,
                      _backward_origin.begin_forward(module) if grad and not evaluation else None, phase)
        if info.has_params and not _step_replay.running():  # a step replay's batch was checked at the step
            _check_batch(module, path, mtype, args, kwargs, phase)
        if not R.module_checks and phase == B.PHASE_FORWARD:
            _step_replay.capture(module, args, kwargs)  # re-run at once if this step's loss turns non-finite
        elif not R.module_checks and phase == B.PHASE_EVALUATION:
            _evaluation_checked(module)  # evaluation is checked whatever the sampling
    st.append(frame)
    if R.module_checks:
        R.api.scope_push(B.SCOPE_MODULE, frame.path, frame.mtype)
        frame.pushed = True
    if _investigation.culprit is not None:
        opm = _investigation.op_mode_for(frame.path)
        if opm is not None:
            opm.__enter__()
            frame.opmode = opm
    return None


def _recompute_frame(module, args):
    """The frame of a forward that backward runs (checkpointing's recomputation), named as in
    the model seen holding it ("LlamaForCausalLM/model.layers.1"), else as a root of its own."""
    for root, info in list(_paths._roots.items()):
        if root is not module:
            e = info.paths.get(id(module))
            if e is not None:
                return Frame(module, e[0], e[1], root, info, {}, args, None, None, B.PHASE_FORWARD)
    info = root_info(module)
    e = info.paths.get(id(module))
    if e is None:
        return None
    return Frame(module, e[0], e[1], module, info, {}, args, None, None, B.PHASE_FORWARD)


def _owner_of(module):
    """(class name, attribute path) of the module whose own code called `module` without being
    called itself: the `self` of the first frame outside torch and nantrace that holds it (a
    LightningModule's training_step running self.discriminator(x)). Asked once per root."""
    import os
    f = sys._getframe(1)
    torch_dir = os.path.dirname(torch.__file__)
    here = os.path.dirname(__file__)
    for _ in range(16):
        if f is None:
            return None
        fn = f.f_code.co_filename
        if not (fn.startswith(torch_dir) or fn.startswith(here) or fn.startswith("<")):
            owner = f.f_locals.get("self")
            if isinstance(owner, torch.nn.Module) and owner is not module:
                for name, m in owner.named_modules():
                    if m is module and name:
                        return type(_paths.unwrap(owner)).__name__, name
            return None
        f = f.f_back
    return None


def _needs_grad(args):
    return any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)


def _caller_kwargs():
    """The keyword arguments of the root's forward call. Global pre-hooks are not given them, so
    read them from Module._call_impl's frame (two levels up: guard wrapper, _pre_hook_args)."""
    try:
        f = sys._getframe(3)
        for _ in range(3):
            if f is None:
                return None
            kw = f.f_locals.get("kwargs") if f.f_code.co_name in ("inner", "_call_impl") else None
            if isinstance(kw, dict):
                return kw
            f = f.f_back
    except Exception:  # noqa: BLE001
        pass
    return None


def _check_batch(module, path, mtype, args, kwargs, phase):
    api = R.api
    # A training batch is the input phase's output; an evaluation batch is the evaluation
    # forward's input (never the training fault).
    ph, role = (B.PHASE_INPUT, B.ROLE_OUTPUT) if phase == B.PHASE_FORWARD else (phase, B.ROLE_INPUT)
    names = _arg_names(module)
    bad = None
    had_origin = ph == B.PHASE_INPUT and bool(api.origin_found())
    named = [(names[i] if i < len(names) else "args[%d]" % i, a) for i, a in enumerate(args)]
    for prefix, obj in named + [(str(k), v) for k, v in (kwargs or {}).items()]:
        for name, t in iter_tensors(obj, prefix):
            if api.check(ph, role, path, mtype, None, bname(name), t) == B.NT_NONFINITE:
                if bad is None:
                    bad = (name, t)
                _data.bad_samples(name, t)
    if bad is not None and ph == B.PHASE_INPUT:
        R.switch_full_checks("non-finite input batch")
        name, t = bad
        if not had_origin and t.grad_fn is not None and api.origin_found():
            # Not data: the script's own code computed it from values autograd tracked (the
            # output of another model, a reparameterisation between two): its op is read from
            # the graph, as for a loss.
            _investigation.pin_in_graph(t, path, mtype, B.PHASE_INPUT)


_arg_names_of = {}  # type -> names of forward's positional parameters


def _arg_names(module):
    """The names of the root's forward's positional parameters ("x", "y"), so that a batch's
    tensors are named as the script names them, not args[1]. () for *args or an odd forward."""
    t = type(_paths.unwrap(module))
    names = _arg_names_of.get(t)
    if names is None:
        names = ()
        try:
            import inspect
            ps = list(inspect.signature(t.forward).parameters.values())[1:]  # without self
            kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            names = tuple(p.name for p in ps if p.kind in kinds)
        except Exception:  # noqa: BLE001 - TypeError, ValueError; a TorchScript module's forward: AttributeError
            pass
        if len(_arg_names_of) > 4096:
            _arg_names_of.clear()
        _arg_names_of[t] = names
    return names




def _post_hook(module, args, kwargs, output):
    """Every module's forward hook (guarded by its caller, _post_hook_any): the output checks."""
    tls = R.tls
    if getattr(tls, "suspended", False):
        return None
    st = getattr(tls, "stack", None)
    if not st:
        return None
    frame = st[-1]
    if frame.module is module:
        st.pop()
    else:
        frame = _unwind_to(st, module)
        if frame is None:
            return None
    if frame.opmode is not None:
        frame.opmode.__exit__(None, None, None)
        frame.opmode = None
    if frame.module is frame.root and not frame.pushed:
        _sampled_out_root_output(frame, output)
    if _sampling_lifted[0] is module and frame.module is frame.root:
        _sampling_lifted[0] = None
        R.lift_sampling(False)
    try:
        if frame.pushed:
            _check_outputs(frame, module, args, kwargs, output)
        if frame.phase == B.PHASE_FORWARD and _capture_armed() and _investigation.wants_snapshot(frame.path):
            _investigation.on_module_output(module, args, kwargs, output, frame.path, frame.mtype)
    finally:
        if frame.pushed:
            R.api.scope_pop()
            frame.pushed = False
    return None


_sampling_lifted = [None]  # the evaluation root whose forward lifted the sampling


def _evaluation_checked(module):
    """An evaluation forward on a sampled-out step: every module of it is checked (evaluation
    runs seldom; its finding is its own), sampling resumes when the root returns."""
    if _sampling_lifted[0] is None and R.lift_sampling(True):
        _sampling_lifted[0] = module


def _sampled_out_root_output(frame, output):
    """A root forward returned on a step whose module checks are sampled out: its outputs are
    kept for the step replay, and the gradients backward brings to them are checked, as on a
    checked step, so that a value born in the loss computation's backward is read in the live
    graph (_backward_origin) where it is born."""
    _step_replay.on_root_output(frame.module, output)
    if frame.nodes is None or not _grad_enabled() or _step_replay.running():
        return
    for name, t in iter_tensors(output, "output"):
        if t.requires_grad and t.grad_fn is not None:
            frame.nodes.root_outputs.add(id(t.grad_fn))
            _check_gradient_at(frame, t, bname(name), frame.args, frame.kwargs, _weakref(t))


def _check_outputs(frame, module, args, kwargs, output):
    api = R.api
    path, mtype = frame.path, frame.mtype
    grad_on = _grad_enabled()
    seen = frame.seen
    t_out = type(output)
    if t_out in _PLAIN_TENSORS:  # the common case: no container walk (the library skips what it cannot check)
        outputs = ((_OUTPUT, output),)
    elif t_out is tuple and len(output) <= 8 and all(type(v) in _PLAIN_TENSORS or v is None for v in output):
        # (hidden, weights) and the like, as HF layers return them: named without formatting
        outputs = [(_TUPLE_NAMES[i], v) for i, v in enumerate(output) if v is not None]
    else:
        outputs = iter_tensors(output, "output")
    at_root = frame.module is frame.root and frame.nodes is not None
    for name, t in outputs:
        if at_root and t.grad_fn is not None:
            frame.nodes.root_outputs.add(id(t.grad_fn))  # what the loss computation consumes
        try:
            ver = t._version
        except RuntimeError:  # an inference-mode tensor keeps no version: never modified in place
            ver = -1
        prev = seen.get(id(t))
        if prev is not None and prev[1] == ver and prev[0]() is t:
            continue  # checked at a submodule's output and not modified since
        wr = _weakref(t)
        seen[id(t)] = (wr, ver)
        bn = name if type(name) is bytes else bname(name)
        r = api.check(frame.phase, B.ROLE_OUTPUT, path, mtype, None, bn, t)
        if r == B.NT_NONFINITE:
            _on_nonfinite_output(frame, module, args, kwargs)
        if r == B.NT_SKIPPED:
            continue
        if grad_on and t.requires_grad:
            _check_gradient_at(frame, t, bn, args, kwargs, wr)


def _check_gradient_at(frame, t, bn, args, kwargs, wr):
    """The gradient that backward brings to output `t` of `frame`'s module is checked, and the
    output remembered for the backward-origin search."""
    h = _grad_check(frame.path, frame.mtype, bn)
    h.finite = False
    node = _hook_gradient(t, h)
    if node is not None and frame.nodes is not None:  # None: enable_grad inside a no_grad root
        frame.nodes.add(h, node, args, kwargs, wr)


def _on_nonfinite_output(frame, module, args, kwargs):
    """A module output held NaN/Inf (also called by the extension's post hook)."""
    if frame.phase == B.PHASE_FORWARD:
        _investigation.on_nonfinite_output(frame, module, args, kwargs)
    elif frame.phase == B.PHASE_EVALUATION and not _evaluation[2]:
        _evaluation[2] = True
        _note_evaluation_batch()


def _note_evaluation_batch():
    """Which evaluation batch held the first non-finite evaluation value: its number among the
    evaluation forwards since training last ran and, for a DataLoader's, its place and items."""
    n, args = _evaluation[0], _evaluation[1]
    text = "the first non-finite evaluation value came in evaluation batch %d after training step %d" % (
        n, R.counter.step) if n else "the first non-finite evaluation value came after training step %d" % R.counter.step
    for _, t in iter_tensors(args, "x"):
        where = _data.describe_batch(t)
        if where:
            text += " (%s)" % where
            break
    R.api.event(B.EVENT_NOTE, "Evaluation batch", text + ".")


_evaluation = [0, None, False]  # forwards since training last ran, the last one's inputs, noted
_OUTPUT = b"output"
_TUPLE_NAMES = [bname("output[%d]" % i) for i in range(8)]
_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
_grad_checks = {}  # (path, output name) -> GradCheck, reused every step


class GradCheck:
    """Checks the gradient arriving at one module output in backward: a tensor hook. One object
    per (module path, output name), made once and registered again at every forward: building a
    closure per output per step cost more than the check itself (see _hook_gradient)."""

    __slots__ = ("path", "mtype", "name", "finite")

    def __init__(self, path, mtype, name):
        self.path, self.mtype, self.name = path, mtype, name
        self.finite = False  # the gradient of its latest registration was checked finite

    def __call__(self, grad):
        if _guard.off("backward"):
            return None
        try:
            if grad is not None and not getattr(R.tls, "suspended", False):
                r = R.api.check(B.PHASE_BACKWARD, B.ROLE_OUTPUT, self.path, self.mtype, None, self.name, grad)
                if r == B.NT_FINITE:
                    self.finite = True
                elif r == B.NT_NONFINITE:
                    _backward_origin.on_nonfinite_grad(self)
        except Exception as e:  # noqa: BLE001 - never into the host's backward
            _guard.disable("backward", e)
        return None


_HOOK_KEY = -1  # our key in a tensor's hook dict: torch's own handles count up from 0


def _hook_gradient(t, h):
    """Have `h` check the gradient that arrives at output `t` in backward; returns t's node.

    What `Tensor.register_hook` does, without the RemovableHandle it builds and we never use
    (that handle was most of a module's backward cost): a hook dict on the tensor, registered
    with its node. A tensor that already has hooks (the script's own) and a leaf get the public
    call, so nothing of the script's is replaced."""
    node = t.grad_fn
    if node is not None and t._backward_hooks is None:
        try:
            # An OrderedDict, as torch makes it: a hook the script registers on this tensor later
            # takes a weak reference to the dict (a plain dict refuses one).
            t._backward_hooks = OrderedDict(((_HOOK_KEY, h),))
            node._register_hook_dict(t)
            return node
        except Exception:  # noqa: BLE001 - another torch: the public call below
            t._backward_hooks = None
    t.register_hook(h)
    return node


def _grad_check(path, mtype, out_name):
    key = (path, out_name)
    h = _grad_checks.get(key)
    if h is None or h.mtype != mtype:
        if len(_grad_checks) > 20000:
            _grad_checks.clear()
        h = _grad_checks[key] = GradCheck(path, mtype, bname("grad_" + out_name.decode("utf-8", "replace")))
    return h


def install():
    # torch warns about global hooks on every torch.compile(module) call; the hooks are ours, not
    # the user's, so that warning (and only it) is silenced to keep the host's stderr unchanged.
    import warnings
    warnings.filterwarnings("ignore", message=r"Using `torch\.compile\(module\)` when there are global hooks")
    _not_compiled_as_frames(_pre_hook_args, _post_hook_any, _post_hook_nokw)
    # Global forward pre-hooks receive (module, args) only; the forward hook gets kwargs too.
    _handles.append(nn_module.register_module_forward_pre_hook(_pre_hook_args))
    # always_call: the hook also runs when forward raises, so the module stack stays balanced.
    # On that path torch calls it as hook(module, args, None) whatever with_kwargs says.
    global _always_called
    try:
        _handles.append(nn_module.register_module_forward_hook(
            _post_hook_any, with_kwargs=True, always_call=True))
        _always_called = True
    except TypeError:  # older torch: no always_call / with_kwargs on global hooks
        _handles.append(nn_module.register_module_forward_hook(_post_hook_nokw))
        _always_called = False
    _use_fast_hooks()
    if _always_called:  # a root's own post hook must also run when its forward raises
        _root_hooks.configure(_pre_hook_args, _post_hook_any, our_hooks(), _transparent)
        _add_once(R.on_module_checks, _root_hooks.on_module_checks)
    _add_once(R.on_step_begin, _step_replay.on_step_begin)


def _add_once(callbacks, cb):
    if cb not in callbacks:
        callbacks.append(cb)


_fast_pre = _fast_post = None  # the extension's common-case hooks (module_hooks.c), when loaded


def _use_fast_hooks():
    """With the binding's extension, a submodule's pre and post hooks run in C
    (injector/fast/module_hooks.c) and hand anything else back to _pre_hook/_post_hook here,
    the one definition of what they do; frames become the extension's Frame type, which both
    sides read. Needs always_call (the Python hooks unwind forwards that raised)."""
    global _fast_pre, _fast_post, Frame, GradCheck
    fast = getattr(R.api, "fast", None)
    if fast is None or not _always_called or not hasattr(fast, "configure_hooks"):
        return False
    try:
        fast.configure_hooks(R.tls, R, _investigation, _capture.armed, _transparent_types, _grad_checks,
                             _grad_check, _hook_gradient, _on_nonfinite_output, torch.is_grad_enabled,
                             _PLAIN_TENSORS, _OUTPUT, tuple(_TUPLE_NAMES), OrderedDict)
    except Exception:  # noqa: BLE001 - another extension build: the Python hooks do it all
        return False
    Frame = fast.Frame
    _fast_pre, _fast_post = fast.pre, fast.post
    try:
        fast.configure_grad_checks(_guard, R.api.check, _backward_origin.on_nonfinite_grad, _guard.disable)
        if GradCheck is not fast.GradCheck:
            GradCheck = fast.GradCheck
            _grad_checks.clear()  # made by the Python class: made again as the extension's
    except Exception:  # noqa: BLE001 - an extension without it: the Python class stays
        pass
    return True


def _not_compiled_as_frames(*fns):
    """torch.compile would compile a hook called from torch's own (skipped) _call_impl as a frame
    of its own: an empty graph, but one recompiled at every change of grad mode or autocast,
    which TORCH_LOGS=recompiles then reports as the host's. Such frames, and every frame they
    call, run eagerly instead (is_compiling() is False there and the hook does its work);
    inlined into a traced function, the hook still sees is_compiling() and returns at once."""
    try:
        from torch._dynamo.eval_frame import set_code_exec_strategy
        from torch._dynamo.types import FrameAction, FrameExecStrategy
        skip_all = FrameExecStrategy(FrameAction.SKIP, FrameAction.SKIP)
    except Exception:  # noqa: BLE001 - another torch: the frames are compiled, empty
        return
    for fn in fns:
        try:
            set_code_exec_strategy(fn.__code__, skip_all)
        except Exception:  # noqa: BLE001
            return


def our_hooks():
    """nantrace's own global module hooks (what a step replay keeps registered)."""
    return (_pre_hook_args, _post_hook_any, _post_hook_nokw)


def uninstall():
    global _fast_pre, _fast_post
    _root_hooks.reset()
    for callbacks, cb in ((R.on_module_checks, _root_hooks.on_module_checks),
                          (R.on_step_begin, _step_replay.on_step_begin)):
        if cb in callbacks:
            callbacks.remove(cb)
    for h in _handles:
        h.remove()
    _handles.clear()
    _fast_pre = _fast_post = None


# Under torch.compile the global hooks are traced into the user's graph (or compiled as frames
# of their own). Asking is_compiling() first, before any state is read, leaves dynamo nothing to
# guard on: no recompilation and no graph break added (tests/integration/test_compile.py).
def _pre_hook_args(module, args):
    if _is_compiling():
        return None
    if _guard.off("module"):
        return None
    try:
        if _fast_pre is None or not _fast_pre(module, args):
            _pre_hook(module, args, None)
    except Exception as e:  # noqa: BLE001 - never into the host's forward
        _guard.disable("module", e)
    return None


def _post_hook_any(module, args, *rest):
    if _is_compiling():
        return None
    if _guard.off("module"):
        return None
    try:
        if len(rest) == 2:
            if _fast_post is None or not _fast_post(module, args, rest[0], rest[1]):
                _post_hook(module, args, rest[0], rest[1])
        else:  # forward raised: only unwind
            _unwind_after_error(module)
    except Exception as e:  # noqa: BLE001 - never into the host's forward
        _guard.disable("module", e)
    return None


def _unwind_after_error(module):
    st = R.stack()
    frame = _unwind_to(st, module) if st else None
    if frame is not None:
        _close(frame)


def _post_hook_nokw(module, args, output):
    if _is_compiling():
        return None
    if _guard.off("module"):
        return None
    try:
        _post_hook(module, args, None, output)
    except Exception as e:  # noqa: BLE001
        _guard.disable("module", e)
    return None


def reset_for_tests():
    _grad_checks.clear()
    _data.reset_for_tests()
    _evaluation[:] = [0, None, False]
    _step_replay.reset_for_tests()
    _root_hooks.reset_for_tests()
    _backward_origin.reset_for_tests()
    _investigation.reset_for_tests()
