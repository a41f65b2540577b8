#include "runtime/run_directory.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace nantrace {

RunDirectory plan_run_directory(const std::string& root, const std::string& run_dir, const std::string& owner_pid) {
  namespace fs = std::filesystem;
  RunDirectory d;
  if (!run_dir.empty()) {
    d.path = run_dir;
    d.inherited = !owner_pid.empty() && owner_pid != std::to_string(::getpid());
    return d;
  }
  char stamp[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::error_code ec;
  fs::path base = fs::absolute(root, ec);
  if (ec) base = root;
  d.path = (base / (std::string(stamp) + "-" + std::to_string(::getpid()))).lexically_normal().string();
  return d;
}

bool create_run_directory(RunDirectory* dir, std::string* error) {
  namespace fs = std::filesystem;
  const fs::path p(dir->path);
  // mkdir -p with mode 0755 on every level we create (less the umask): never group- or
  // world-writable, whatever the host's umask.
  fs::path partial;
  for (const auto& part : p.parent_path()) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      *error = "cannot create output directory '" + partial.string() + "' (NANTRACE_DIR): " + std::strerror(errno);
      return false;
    }
  }
  if (::mkdir(dir->path.c_str(), 0755) == 0) {
    dir->made_here = true;
  } else if (errno != EEXIST) {
    *error = "cannot create run directory '" + dir->path + "': " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::lstat(dir->path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = "run directory '" + dir->path + "' is not a directory (a file or symlink is in its place)";
    return false;
  }
  if (::access(dir->path.c_str(), W_OK) != 0) {
    *error = "run directory '" + dir->path + "' is not writable: " + std::strerror(errno);
    return false;
  }
  dir->created = true;
  return true;
}

}  // namespace nantrace
