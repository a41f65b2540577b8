"""nantrace torch hooks. Installed by the bootstrap (sitecustomize) right after `import torch`.

install() wires the hooks; recording itself starts lazily at the first training activity.
Nothing here may raise into the host program: see _guard.
"""
import os
import sys

_installed = False
op_level_mode = None


def _cuda_stream_of(device):
    import torch
    return torch.cuda.current_stream(device).cuda_stream


def install(api=None):
    """Install every hook. api: the C binding (default: the runtime library the LD_PRELOAD shim
    named in NANTRACE_RUNTIME_LIB; NANTRACE_LIB when that is the runtime itself)."""
    global _installed
    if _installed:
        return True
    from . import _runtime as R
    from . import _data, _investigation, _modules, _training, _context, _guard
    from ._tensors import DTYPE_CODES
    if api is None:
        lib = os.environ.get("NANTRACE_RUNTIME_LIB") or os.environ.get("NANTRACE_LIB")
        if not lib:
            return False
        from ._binding import Binding
        from ._tensors import PLAIN_TYPES, eligible
        import torch
        api = Binding(lib, DTYPE_CODES, _cuda_stream_of, eligible)
        api.use_fast(PLAIN_TYPES, torch.strided)
    R.api = api
    _plan_run(api)
    R.on_started.append(_enter_op_level)
    _context.install()
    R.on_step_begin.append(_investigation.on_step_begin)
    R.on_step_begin.append(_data.on_step_begin)
    _modules.install()
    _training.install()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_guard.disable_all)
    _installed = True
    return True


def _plan_run(api):
    """Start at `import torch`. The library fixes the run directory now but creates it only
    when training starts, so a process that never trains still writes nothing. Exporting the
    path makes the ranks this process starts (mp.spawn, torchrun, which copy os.environ) join
    the same run directory; stopping from Python's atexit writes the report while the
    interpreter is still whole."""
    from . import _runtime as R
    try:
        if not api.start("torch"):
            return
        R.mark_planned()
        run_dir = api.run_dir()
        if run_dir:
            os.environ.setdefault("NANTRACE_RUN_DIR", run_dir)
        import atexit
        atexit.register(api.stop)
    except Exception:  # noqa: BLE001
        pass


def _enter_op_level():
    from . import _runtime as R
    if R.check_level == 2:
        from ._opcheck import OpCheckMode
        global op_level_mode
        op_level_mode = OpCheckMode()
        op_level_mode.__enter__()  # stays on for the whole run (main thread)


def suspend():
    """Remove every hook and patch but keep the run going; resume() puts them back. For the
    paired overhead benchmark (tools/bench_overhead.py), whose plain steps run in the same
    process as its nantrace steps. Call between training steps only."""
    from . import _modules, _training
    if _installed:
        _modules.uninstall()
        _training.uninstall()


def resume():
    from . import _modules, _training
    if _installed and not _modules._handles:
        _modules.install()
        _training.install()


def uninstall():
    """For tests: remove every hook and patch."""
    global _installed
    from . import _modules, _training
    _modules.uninstall()
    _training.uninstall()
    _installed = False


def bootstrap():
    """Called by sitecustomize once torch is imported. Never raises."""
    try:
        install()
    except Exception as e:  # noqa: BLE001
        try:
            sys.stderr.write("nantrace: torch hooks not installed (%s: %s)\n"
                             % (type(e).__name__, str(e).replace("\n", " ")[:300]))
        except Exception:  # noqa: BLE001
            pass
