"""Run context: environment facts, the training config, the distributed rank, the device."""
import json
import os
import re
import platform
import sys

import torch

from . import _binding as B
from . import _runtime as R
from . import _trainers

_rank_known = False
_device_known = False


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def config_path(argv, cwd):
    return _trainers.config_path(argv, cwd)


def config_detail(path, argv=None):
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    return _trainers.facts(cfg, argv if argv is not None else sys.argv)


def _driver_version():
    """The NVIDIA kernel driver's version, read from /proc without touching CUDA; None without one."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8", errors="replace") as f:
            m = re.search(r"Kernel Module\s+([0-9][0-9.]*)", f.read(4096))
        return m.group(1) if m else "unknown"
    except OSError:
        return None


def cuda_text(built_for, driver, device_name):
    """The environment's CUDA line, for people: what PyTorch was built for, whether a driver is
    there, and the GPU once the host has used one (nantrace never initialises CUDA itself)."""
    if not built_for:
        return "not available (PyTorch built without CUDA)"
    if driver is None:
        return "not available (PyTorch built for CUDA %s; no NVIDIA driver on this machine)" % built_for
    if device_name is None:
        return "not used by this run so far (PyTorch built for CUDA %s; NVIDIA driver %s)" % (built_for, driver)
    return "CUDA %s on %s (NVIDIA driver %s)" % (built_for, device_name, driver)


def on_started():
    api = R.api
    api.set_meta("python", sys.version.split()[0])
    api.set_meta("torch", torch.__version__)
    api.set_meta("cuda", cuda_text(torch.version.cuda, _driver_version(), None))
    api.set_meta("cpu", _cpu_name())
    api.set_meta("platform", platform.platform())
    api.set_meta("argv", " ".join([sys.executable] + list(sys.argv)))
    api.set_meta("cwd", os.getcwd())
    path = config_path(sys.argv, os.getcwd())
    if path and os.path.isfile(path):
        try:
            api.event(B.EVENT_CONFIG, os.path.abspath(path), R.dumps(config_detail(path, sys.argv)))
        except (OSError, ValueError) as e:
            api.event(B.EVENT_NOTE, "The training config could not be read", "%s: %s" % (path, str(e)[:200]))
    on_step(0)


_progress_bar = False


def progress_bar_active():
    """Whether a tqdm bar is open (tqdm keeps its live bars in tqdm.std.tqdm._instances)."""
    std = sys.modules.get("tqdm.std")
    cls = getattr(std, "tqdm", None) if std is not None else None
    try:
        return bool(cls is not None and len(getattr(cls, "_instances", ())) > 0)
    except TypeError:
        return False


def on_step(step):
    """At each step boundary: cheap checks for facts that become known later."""
    global _rank_known, _device_known, _progress_bar
    bar = progress_bar_active()
    if bar != _progress_bar:
        _progress_bar = bar
        R.api.set_progress_bar(bar)
    if not _rank_known:
        dist = getattr(torch, "distributed", None)
        if dist is not None and dist.is_available() and dist.is_initialized():
            R.api.set_rank(dist.get_rank(), dist.get_world_size())
            try:
                R.api.set_meta("distributed_backend", str(dist.get_backend()))
            except Exception:  # a backend that cannot say: the trace just omits it
                pass
            _rank_known = True
    if not _device_known:
        # Never initialise CUDA ourselves: only describe it once the host has.
        if torch.cuda.is_initialized():
            d = torch.cuda.current_device()
            p = torch.cuda.get_device_properties(d)
            R.api.set_meta("device", "%s (sm_%d%d)" % (p.name, p.major, p.minor))
            R.api.set_meta("cuda", cuda_text(torch.version.cuda, _driver_version() or "unknown", p.name))
            R.api.set_meta("device_capability", "%d.%d" % (p.major, p.minor))
            # Kineto's deviceProperties, for the finished trace's header (not shown in reports).
            R.api.set_meta("trace.device_properties", R.dumps([{
                "id": d, "name": p.name, "totalGlobalMem": int(p.total_memory),
                "computeMajor": p.major, "computeMinor": p.minor,
                "numSms": int(getattr(p, "multi_processor_count", 0))}]))
            _device_known = True


def install():
    R.on_started.append(on_started)
    R.on_step_begin.append(on_step)


def reset_for_tests():
    global _rank_known, _device_known, _progress_bar
    _rank_known = _device_known = _progress_bar = False
