// Atomic whole-file writes: temp file + rename, never following symlinks.
#include "output/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace nantrace {

namespace {

bool fail(std::string* error, const std::string& what, int err) {
  if (error) *error = what + ": " + std::strerror(err);
  return false;
}

int open_exclusive(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
}

bool write_all(int fd, const char* data, size_t size, int* err) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      return false;
    }
    data += n;
    size -= size_t(n);
  }
  return true;
}

}  // namespace

bool write_file_atomic(const std::string& path, const std::string& content, std::string* error) {
  const std::string tmp = path + ".tmp";
  int fd = open_exclusive(tmp);
  if (fd < 0 && errno == EEXIST) {
    struct stat st;
    if (::lstat(tmp.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (error) *error = "refusing to write " + path + ": " + tmp + " is a symbolic link";
      return false;
    }
    // A regular file left by a writer that died before its rename: ours to replace.
    if (::unlink(tmp.c_str()) != 0) return fail(error, "cannot remove stale " + tmp, errno);
    fd = open_exclusive(tmp);
  }
  if (fd < 0) return fail(error, "cannot create " + tmp, errno);

  int err = 0;
  bool ok = write_all(fd, content.data(), content.size(), &err);
  if (ok && ::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
    err = errno;
    ok = false;
  }
  if (::close(fd) != 0 && ok) {
    err = errno;
    ok = false;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return fail(error, "cannot write " + tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return fail(error, "cannot rename " + tmp + " to " + path, err);
  }
  return true;
}

}  // namespace nantrace
