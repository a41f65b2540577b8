"""The source lines the static checks read: every line of the project's C/C++ files under
src/<room>, with its file and line number. Shared by check_layering.py and
check_exit_statics.py."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTENSIONS = (".h", ".cpp", ".cu", ".cuh", ".c", ".in")


def source_lines(rooms, extensions=EXTENSIONS):
    """Yields (room, path relative to the repository, line number, line) for each line; the
    caller counts files with files_read()."""
    global _files
    _files = 0
    for room in rooms:
        for dirpath, _, names in os.walk(os.path.join(REPO, "src", room)):
            for n in sorted(names):
                if not n.endswith(extensions):
                    continue
                _files += 1
                path = os.path.join(dirpath, n)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for no, line in enumerate(f, 1):
                        yield room, os.path.relpath(path, REPO), no, line


_files = 0


def files_read():
    return _files
