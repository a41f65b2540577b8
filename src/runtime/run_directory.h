// The run directory: one per run, shared by every process of the run (ranks started by
// mp.spawn / torchrun inherit it through NANTRACE_RUN_DIR). Its path is fixed when nantrace
// starts, but it is created only when the first record is written: a launcher process that
// never trains, or an interpreter that only imports torch, leaves nothing behind.
#pragma once

#include <string>

namespace nantrace {

struct RunDirectory {
  std::string path;
  bool inherited = false;  // chosen by a parent process of the same run
  bool created = false;    // exists and is writable
  bool made_here = false;  // this process's mkdir made it: the first process of the run to write
};

// <root>/<YYYYmmdd-HHMMSS>-<pid> as an absolute path, or run_dir when given. owner_pid: the
// process that fixed the run directory for its children (NANTRACE_RUN_DIR_OWNER, "" when
// unset). A run_dir given without an owner (the user's own NANTRACE_RUN_DIR) belongs to this
// process, which then exports itself as the owner: only a child of the run is `inherited`.
RunDirectory plan_run_directory(const std::string& root, const std::string& run_dir,
                                const std::string& owner_pid = "");
// Creates it (and its parents), refusing a symlink or a non-directory in its place.
// false + one-line *error naming the path and the reason.
bool create_run_directory(RunDirectory* dir, std::string* error);

}  // namespace nantrace
