#include "runtime/run_directory.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace nantrace {

bool open_run_directory(const std::string& root, const std::string& run_dir, RunDirectory* out, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string path;
  if (!run_dir.empty()) {
    path = run_dir;
    out->inherited = true;
  } else {
    fs::create_directories(root, ec);
    if (ec) {
      *error = "cannot create output directory '" + root + "' (NANTRACE_DIR): " + ec.message();
      return false;
    }
    char stamp[32];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    const std::string base = (fs::absolute(root, ec) / (std::string(stamp) + "-" + std::to_string(::getpid()))).string();
    path = base;
    // Refuse to reuse anything that exists (including a planted symlink).
    for (int i = 1; ::mkdir(path.c_str(), 0755) != 0; ++i) {
      if (errno != EEXIST || i > 100) {
        *error = "cannot create run directory '" + path + "': " + std::strerror(errno);
        return false;
      }
      path = base + "-" + std::to_string(i);
    }
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = "run directory '" + path + "' is not a directory";
    return false;
  }
  if (::access(path.c_str(), W_OK) != 0) {
    *error = "run directory '" + path + "' is not writable: " + std::strerror(errno);
    return false;
  }
  out->path = path;
  return true;
}

}  // namespace nantrace
