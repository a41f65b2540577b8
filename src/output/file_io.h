// Files that readers never see half-written: reports written whole, and traces written in
// pieces (the finished trace, the merged trace). One implementation for every writer.
#pragma once

#include <string>
#include <string_view>

namespace nantrace {

// Writes content to path.tmp (created with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode 0644 less
// the umask), fsyncs it, then rename()s it over path: readers never see a half-written file,
// and a symlink planted at path.tmp (or at path) is never followed. A stale regular path.tmp
// left by a crashed writer is removed first; a symlink there is refused. false + *error
// (one line naming the file and the reason) on failure; nothing is left behind.
bool write_file_atomic(const std::string& path, const std::string& content, std::string* error);

// The same guarantees for a file written in pieces (too large to hold twice in memory):
// open() creates path.tmp, write() appends, commit() fsyncs and renames it over path.
// Destroyed or abandon()ed before commit, it removes path.tmp. Errors as above.
class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile() { abandon(); }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  bool open(const std::string& path, std::string* error);
  bool write(std::string_view data, std::string* error);
  // Appends the bytes of an open descriptor from `from` (default: its start) to its end.
  bool write_from_fd(int fd, std::string* error, long long from = 0);
  bool commit(std::string* error);
  void abandon();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

}  // namespace nantrace
