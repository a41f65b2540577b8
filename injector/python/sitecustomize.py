"""nantrace bootstrap, imported at interpreter start-up because the LD_PRELOAD constructor put
this folder on PYTHONPATH.

It does two small things and nothing else:
1. arms a one-shot import hook so that when `torch` is imported, the nantrace torch hooks are
   installed (a process that never imports torch sees nothing: no output, no file);
2. runs the user's own sitecustomize, if one exists further down sys.path.
`python -S` and `python -I` skip sitecustomize entirely, so nantrace is not active there.
"""


def _nantrace_arm():
    import os
    import sys

    if not os.environ.get("NANTRACE_LIB"):
        return

    class _TorchImportHook:
        """sys.meta_path finder: wraps the loader of the top-level `torch` module so the hooks
        install right after torch finished importing. Removes itself after the first match."""

        def find_spec(self, fullname, path=None, target=None):
            if fullname != "torch":
                return None
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass
            spec = None
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                try:
                    spec = find(fullname, path, target)
                except Exception:  # noqa: BLE001 - another finder's problem, not ours
                    spec = None
                if spec is not None:
                    break
            loader = getattr(spec, "loader", None) if spec is not None else None
            exec_module = getattr(loader, "exec_module", None)
            if exec_module is None:
                return spec

            def exec_module_then_hook(module):
                exec_module(module)
                try:
                    import nantrace_torch
                    nantrace_torch.bootstrap()
                except Exception as e:  # noqa: BLE001 - never break `import torch`
                    try:
                        sys.stderr.write("nantrace: bootstrap failed (%s)\n" % e)
                    except Exception:  # noqa: BLE001
                        pass

            try:
                loader.exec_module = exec_module_then_hook
            except Exception:  # noqa: BLE001 - a loader we cannot patch: stay inert
                pass
            return spec

    if "torch" not in sys.modules:
        sys.meta_path.insert(0, _TorchImportHook())


def _nantrace_chain():
    """Import the user's own sitecustomize (the next one on sys.path) without copying it."""
    import os
    import sys

    here = os.path.dirname(os.path.realpath(__file__))
    me = sys.modules.get(__name__)
    saved = list(sys.path)

    def is_here(p):
        try:
            return os.path.realpath(p or os.getcwd()) == here
        except Exception:  # noqa: BLE001
            return False

    sys.path[:] = [p for p in sys.path if not is_here(p)]
    sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401 - the user's; its own errors surface as site.py reports them
    except ImportError as e:
        if e.name != "sitecustomize":
            raise
        if me is not None:
            sys.modules["sitecustomize"] = me
    finally:
        sys.path[:] = saved


try:
    _nantrace_arm()
except Exception:  # noqa: BLE001 - the bootstrap never raises
    pass
_nantrace_chain()
