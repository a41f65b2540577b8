// Small files written whole (report.md, report.json, merged reports).
#pragma once

#include <string>

namespace nantrace {

// Writes content to path.tmp (created with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode 0644 less
// the umask), fsyncs it, then rename()s it over path: readers never see a half-written file,
// and a symlink planted at path.tmp (or at path) is never followed. A stale regular path.tmp
// left by a crashed writer is removed first; a symlink there is refused. false + *error
// (one line naming the file and the reason) on failure; nothing is left behind.
bool write_file_atomic(const std::string& path, const std::string& content, std::string* error);

}  // namespace nantrace
