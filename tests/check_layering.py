"""The rooms and their doors (docs/architecture.md), enforced: a file may include only what
its room may see.

- src/core knows nothing of CUDA, Python, the runtime or the writers: it includes only
  core/ headers, the C ABI header (nantrace/nantrace.h) and third-party/system headers.
- src/output may include core/ and output/, never runtime/ or cuda/.
- src/cuda may include core/ and cuda/, never runtime/ or output/ (the runtime drives it
  through cuda::Host).
Exit status 1 with one line per offending include."""
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = ("core/", "output/", "runtime/", "cuda/", "preload/", "nantrace/")
ALLOWED = {
    "core": ("core/", "nantrace/"),
    "output": ("core/", "output/", "nantrace/"),
    "cuda": ("core/", "cuda/", "nantrace/"),
}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')

problems, files = [], 0
for room, allowed in ALLOWED.items():
    top = os.path.join(REPO, "src", room)
    for dirpath, _, names in os.walk(top):
        for n in sorted(names):
            if not n.endswith((".h", ".cpp", ".cu", ".cuh", ".c", ".in")):
                continue
            files += 1
            path = os.path.join(dirpath, n)
            with open(path, encoding="utf-8", errors="replace") as f:
                for no, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    if inc.startswith(OURS) and not inc.startswith(allowed):
                        problems.append("%s:%d includes %s: src/%s may include only %s"
                                        % (os.path.relpath(path, REPO), no, inc, room, ", ".join(allowed)))
                    if room == "core" and re.match(r"(cuda|cupti|nvrtc|Python|pybind11|torch)", inc):
                        problems.append("%s:%d includes %s: core knows nothing of CUDA or Python"
                                        % (os.path.relpath(path, REPO), no, inc))
if files < 20:
    print("FAIL: only %d files found under src/: the walk is broken" % files)
    sys.exit(1)
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("ok: %d files of src/core, src/output and src/cuda include only what their room may see" % files)
