"""Statics that outlive exit: the runtime writes the final report from an atexit handler,
which can run after the destructors of function-local statics. So no function-local (or
namespace-scope) static object with a destructor may live in the code that handler reaches
(src/core, src/output, src/runtime): a table is heap-allocated and never destroyed
(`static const auto* t = new std::set<...>{...}`). This replaced an exit warm-up that ran a
fake analysis to construct the statics early. Exit status 1 with one line per offender."""
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A static of a standard type with a destructor, by value (not a pointer, not constexpr).
BAD = re.compile(r"^\s*(?:inline\s+)?static\s+(?:const\s+)?std::(regex|set|map|unordered_map|unordered_set|"
                 r"vector|string|deque|list|function|shared_ptr|unique_ptr|mutex)\b(?:<[^;]*?>)?\s+\w+\s*[({=;]")
problems, files = [], 0
for room in ("core", "output", "runtime"):
    for dirpath, _, names in os.walk(os.path.join(REPO, "src", room)):
        for n in sorted(names):
            if not n.endswith((".h", ".cpp")):
                continue
            files += 1
            path = os.path.join(dirpath, n)
            with open(path, encoding="utf-8", errors="replace") as f:
                for no, line in enumerate(f, 1):
                    if BAD.match(line):
                        problems.append("%s:%d: %s  (allocate it with new and never destroy it)"
                                        % (os.path.relpath(path, REPO), no, line.strip()))
if files < 20:
    print("FAIL: only %d files found: the walk is broken" % files)
    sys.exit(1)
if problems:
    print("FAIL: statics destroyed before the exit handler may use them:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("ok: no destructible static in %d files of src/core, src/output, src/runtime" % files)
