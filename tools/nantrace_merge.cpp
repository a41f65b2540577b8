// nantrace-merge DIR: merges the per-rank reports and traces of a multi-process run directory
// into report.merged.{json,md} and trace.merged.json (see src/output/run_merge.h).
//
// Prints the merged finding and the paths written; each file that could not be merged is
// named on stderr. Exit status: 0 when at least one rank's report was merged, 2 otherwise
// (usage errors included), so scripts can tell "merged, with complaints" from "nothing".
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "core/model.h"
#include "output/report_json.h"
#include "output/run_merge.h"

namespace {

constexpr const char* kUsage = "usage: nantrace-merge RUN_DIR";

int fail(const std::string& line) {
  std::fprintf(stderr, "nantrace-merge: %s\n", line.c_str());
  return 2;
}

// "bad input data at step 3 (input) in Net on rank 1", from the merged report.json.
std::string headline(const std::string& report_json_path) {
  FILE* f = std::fopen(report_json_path.c_str(), "rb");
  if (!f) return "";
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  nantrace::Report r;
  std::string error;
  if (!nantrace::report_from_json_text(text, &r, &error)) return "";
  const nantrace::Finding& fd = r.finding;
  if (!fd.found) return "no NaN or Inf seen on any of " + std::to_string(r.world_size) + " rank(s)";
  std::string line = std::string(nantrace::describe(fd.kind)) + " at step " + std::to_string(fd.origin.step) + " (" +
                     nantrace::to_string(fd.origin.site.phase) + ")";
  if (!fd.origin.site.module_path.empty()) line += " in " + fd.origin.site.module_path;
  if (!fd.op.empty()) line += ", op " + fd.op;
  if (r.rank >= 0) line += " on rank " + std::to_string(r.rank);
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) {
    std::printf("%s\n", kUsage);
    return 0;
  }
  if (argc != 2 || argv[1][0] == '\0') return fail(kUsage);
  const std::string dir = argv[1];
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return fail(dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return fail(dir + ": not a directory");

  const nantrace::MergeResult r = nantrace::merge_run_directory(dir);
  for (const auto& e : r.errors) std::fprintf(stderr, "nantrace-merge: %s\n", e.c_str());
  if (r.ranks_merged == 0 && r.trace_json.empty()) return fail("no rank report could be merged in " + dir);

  // A run killed before it wrote any report still gets the finished form of its trace(s).
  if (r.ranks_merged == 0) std::printf("no report to merge in %s; the traces were merged\n", dir.c_str());
  else std::printf("merged %d rank report(s) of %s\n", r.ranks_merged, dir.c_str());
  const std::string h = r.report_json.empty() ? "" : headline(r.report_json);
  if (!h.empty()) std::printf("finding: %s\n", h.c_str());
  if (!r.report_md.empty()) std::printf("report: %s\n", r.report_md.c_str());
  if (!r.report_json.empty()) std::printf("report (JSON): %s\n", r.report_json.c_str());
  if (!r.trace_json.empty())
    std::printf("trace: %s (open in https://ui.perfetto.dev or chrome://tracing)\n", r.trace_json.c_str());
  return 0;
}
