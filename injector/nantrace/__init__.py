"""nantrace: find where NaN and Inf first appear in mixed-precision PyTorch training.

This package is the command line (`nantrace run -- python train.py`, `nantrace lib`, ...);
the work is done by libnantrace.so, preloaded into the training process. The version is the
one in the top-level CMakeLists.txt (`project(nantrace VERSION ...)`), written into
_version.py when the package is built or installed.
"""
import os
import re


def _version():
    try:
        from ._version import __version__ as v  # installed, or configured by CMake
        return v
    except ImportError:
        pass
    # The source tree: read it where it is defined.
    here = os.path.dirname(os.path.realpath(__file__))
    try:
        with open(os.path.join(here, "..", "..", "CMakeLists.txt"), encoding="utf-8") as f:
            m = re.search(r"project\(nantrace VERSION ([0-9][0-9.]*)", f.read())
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


__version__ = _version()
