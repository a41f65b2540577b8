// The run directory: one per run, shared by every process of the run (ranks started by
// mp.spawn / torchrun inherit it through NANTRACE_RUN_DIR).
#pragma once

#include <string>

namespace nantrace {

struct RunDirectory {
  std::string path;
  bool inherited = false;  // created by a parent process of the same run
};

// Creates <root>/<YYYYmmdd-HHMMSS>-<pid> (mode 0755; parents created), or adopts run_dir when
// given. false + one-line *error when it cannot be created or written.
bool open_run_directory(const std::string& root, const std::string& run_dir, RunDirectory* out, std::string* error);

}  // namespace nantrace
