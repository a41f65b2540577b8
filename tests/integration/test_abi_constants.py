"""The Python frontend's ABI constants (injector/python/nantrace_torch/_binding.py) are the C
header's (include/nantrace/nantrace.h): every enumerator and NT_* result code of the header
has a constant of the same value in _binding.py, under the name the binding uses (the
header's name without its NT_ prefix, e.g. NT_EVENT_FIX_CHECK -> EVENT_FIX_CHECK; the
nantrace_check results keep theirs: NT_FINITE). A new kind in the header without its Python
twin, or a renumbered one, fails here."""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "injector", "python"))
from nantrace_torch import _binding as B  # noqa: E402  (imports no torch)

with open(os.path.join(REPO, "include", "nantrace", "nantrace.h"), encoding="utf-8") as f:
    header = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
header = re.sub(r"//[^\n]*", "", header)

constants = {}
for body in re.findall(r"typedef\s+enum\s+\w+\s*\{(.*?)\}", header, flags=re.S):
    for name, value in re.findall(r"\b(NT_[A-Z0-9_]+)\s*=\s*(-?\d+)", body):
        constants[name] = int(value)
for name, value in re.findall(r"#define\s+(NT_[A-Z0-9_]+)\s+\(?(-?\d+)\)?", header):
    constants[name] = int(value)
if len(constants) < 20:
    print("FAIL: only %d constants parsed from nantrace.h: the parser is broken" % len(constants))
    sys.exit(1)

problems = []
for name, value in sorted(constants.items()):
    py = name if name in ("NT_FINITE", "NT_NONFINITE", "NT_PENDING", "NT_SKIPPED", "NT_ERROR") else name[3:]
    if not hasattr(B, py):
        problems.append("%s = %d has no %s in _binding.py" % (name, value, py))
    elif getattr(B, py) != value:
        problems.append("%s = %d but _binding.%s = %r" % (name, value, py, getattr(B, py)))
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("ok: %d constants of nantrace.h match _binding.py" % len(constants))
