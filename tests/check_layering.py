"""The rooms and their doors (docs/architecture.md), enforced: a file may include only what
its room may see.

- src/core knows nothing of CUDA, Python, the runtime or the writers: it includes only
  core/ headers, the C ABI header (nantrace/nantrace.h) and third-party/system headers.
- src/output may include core/ and output/, never runtime/ or cuda/.
- src/cuda may include core/ and cuda/, never runtime/ or output/ (the runtime drives it
  through cuda::Host).
Exit status 1 with one line per offending include."""
import re
import sys

from source_lines import REPO, files_read, source_lines  # noqa: E402

OURS = ("core/", "output/", "runtime/", "cuda/", "preload/", "nantrace/")
ALLOWED = {
    "core": ("core/", "nantrace/"),
    "output": ("core/", "output/", "nantrace/"),
    "cuda": ("core/", "cuda/", "nantrace/"),
}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')

problems = []
for room, rel, no, line in source_lines(ALLOWED):
    m = INCLUDE.match(line)
    if not m:
        continue
    inc = m.group(1)
    allowed = ALLOWED[room]
    if inc.startswith(OURS) and not inc.startswith(allowed):
        problems.append("%s:%d includes %s: src/%s may include only %s" % (rel, no, inc, room, ", ".join(allowed)))
    if room == "core" and re.match(r"(cuda|cupti|nvrtc|Python|pybind11|torch)", inc):
        problems.append("%s:%d includes %s: core knows nothing of CUDA or Python" % (rel, no, inc))
files = files_read()
if files < 20:
    print("FAIL: only %d files found under src/: the walk is broken" % files)
    sys.exit(1)
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("ok: %d files of src/core, src/output and src/cuda include only what their room may see" % files)
