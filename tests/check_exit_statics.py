"""Statics that outlive exit: the runtime writes the final report from an atexit handler,
which can run after the destructors of function-local statics. So no function-local (or
namespace-scope) static object with a destructor may live in the code that handler reaches
(src/core, src/output, src/runtime): a table is heap-allocated and never destroyed
(`static const auto* t = new std::set<...>{...}`). This replaced an exit warm-up that ran a
fake analysis to construct the statics early. Exit status 1 with one line per offender."""
import re
import sys

from source_lines import files_read, source_lines  # noqa: E402

# A static of a standard type with a destructor, by value (not a pointer, not constexpr).
BAD = re.compile(r"^\s*(?:inline\s+)?static\s+(?:const\s+)?std::(regex|set|map|unordered_map|unordered_set|"
                 r"vector|string|deque|list|function|shared_ptr|unique_ptr|mutex)\b(?:<[^;]*?>)?\s+\w+\s*[({=;]")
problems = []
for _, rel, no, line in source_lines(("core", "output", "runtime"), (".h", ".cpp")):
    if BAD.match(line):
        problems.append("%s:%d: %s  (allocate it with new and never destroy it)" % (rel, no, line.strip()))
files = files_read()
if files < 20:
    print("FAIL: only %d files found: the walk is broken" % files)
    sys.exit(1)
if problems:
    print("FAIL: statics destroyed before the exit handler may use them:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("ok: no destructible static in %d files of src/core, src/output, src/runtime" % files)
