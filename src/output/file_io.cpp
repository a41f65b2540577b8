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

bool AtomicFile::open(const std::string& path, std::string* error) {
  abandon();
  path_ = path;
  tmp_ = path + ".tmp";
  int fd = open_exclusive(tmp_);
  if (fd < 0 && errno == EEXIST) {
    struct stat st;
    if (::lstat(tmp_.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (error) *error = "refusing to write " + path + ": " + tmp_ + " is a symbolic link";
      return false;
    }
    // A regular file left by a writer that died before its rename: ours to replace.
    if (::unlink(tmp_.c_str()) != 0) return fail(error, "cannot remove stale " + tmp_, errno);
    fd = open_exclusive(tmp_);
  }
  if (fd < 0) return fail(error, "cannot create " + tmp_, errno);
  fd_ = fd;
  return true;
}

bool AtomicFile::write(std::string_view data, std::string* error) {
  if (fd_ < 0) {
    if (error) *error = "cannot write " + (tmp_.empty() ? std::string("a file") : tmp_) + ": not open";
    return false;
  }
  int err = 0;
  if (!write_all(fd_, data.data(), data.size(), &err)) return fail(error, "cannot write " + tmp_, err);
  return true;
}

bool AtomicFile::write_from_fd(int src, std::string* error, long long from) {
  char buf[1 << 16];
  off_t at = off_t(from);
  for (;;) {
    const ssize_t n = ::pread(src, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(error, "cannot read the source of " + tmp_, errno);
    if (n == 0) return true;
    if (!write(std::string_view(buf, size_t(n)), error)) return false;
    at += n;
  }
}

bool AtomicFile::commit(std::string* error) {
  if (fd_ < 0) {
    if (error) *error = "cannot commit " + path_ + ": not open";
    return false;
  }
  int err = 0;
  bool ok = true;
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) {
    err = errno;
    ok = false;
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && ok) {
    err = errno;
    ok = false;
  }
  if (!ok) {
    ::unlink(tmp_.c_str());
    return fail(error, "cannot write " + tmp_, err);
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    err = errno;
    ::unlink(tmp_.c_str());
    return fail(error, "cannot rename " + tmp_ + " to " + path_, err);
  }
  return true;
}

void AtomicFile::abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
}

bool write_file_atomic(const std::string& path, const std::string& content, std::string* error) {
  AtomicFile f;
  return f.open(path, error) && f.write(content, error) && f.commit(error);
}

}  // namespace nantrace
