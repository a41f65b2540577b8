// File safety of what nantrace writes into a host's output directory (issue 5 item 7).
// nantrace runs inside someone else's process, often as root in a container, writing into a
// directory that other users or a hostile script may have prepared. Each test plants what an
// attacker (or an accident) could leave there and checks that nantrace refuses it and leaves
// the planted thing and whatever it points to untouched.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "output/chrome_trace_writer.h"
#include "output/file_io.h"
#include "runtime/run_directory.h"

namespace nantrace {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

bool is_symlink(const std::string& path) { return S_ISLNK(mode_of(path)); }

// "0644 or tighter": no bit beyond rw-r--r--.
bool mode_at_most_0644(mode_t m) { return (m & 07777 & ~mode_t(0644)) == 0; }

// Sets the umask for the scope of a test and restores it after.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t m) : old_(::umask(m)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

class FileSafetyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nantrace_file_safety_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    out_ = root_ + "/out";     // the output directory nantrace writes into
    other_ = root_ + "/other";  // somewhere a symlink should never lead nantrace to
    ASSERT_EQ(::mkdir(out_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(other_.c_str(), 0755), 0);
    victim_ = other_ + "/precious.txt";
    write_text(victim_, "precious");
    ASSERT_EQ(::chmod(victim_.c_str(), 0600), 0);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(out_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(root_, ec);
  }
  // The victim file is exactly as SetUp left it.
  void expect_victim_untouched() {
    EXPECT_EQ(read_all(victim_), "precious");
    EXPECT_EQ(mode_of(victim_) & 07777, mode_t(0600));
  }

  std::string root_, out_, other_, victim_;
};

// ---------------------------------------------------------------- run directory

TEST_F(FileSafetyTest, PlannedRunDirectoryIsAbsoluteAndUnderTheRoot) {
  const std::string cwd = fs::current_path().string();
  ASSERT_EQ(::chdir(out_.c_str()), 0);
  RunDirectory d = plan_run_directory("runs", "");
  ASSERT_EQ(::chdir(cwd.c_str()), 0);
  EXPECT_FALSE(d.inherited);
  EXPECT_FALSE(d.created);
  EXPECT_EQ(d.path.rfind(fs::canonical(out_).string() + "/runs/", 0), 0u) << d.path;
  EXPECT_NE(d.path.find("-" + std::to_string(::getpid())), std::string::npos) << d.path;

  // NANTRACE_RUN_DIR set by a parent of the run (its owner, another process): a child.
  RunDirectory inherited = plan_run_directory("runs", out_ + "/parent_run", "1");
  EXPECT_TRUE(inherited.inherited);
  EXPECT_EQ(inherited.path, out_ + "/parent_run");
  // Set by the user (no owner), or owned by this very process: not a child.
  EXPECT_FALSE(plan_run_directory("runs", out_ + "/chosen").inherited);
  EXPECT_FALSE(plan_run_directory("runs", out_ + "/chosen", std::to_string(::getpid())).inherited);
}

TEST_F(FileSafetyTest, CreatesRunDirectoryAndItsParents) {
  RunDirectory d;
  d.path = out_ + "/a/b/run";
  std::string err;
  ASSERT_TRUE(create_run_directory(&d, &err)) << err;
  EXPECT_TRUE(d.created);
  EXPECT_TRUE(S_ISDIR(mode_of(d.path)));
  // A second process of the same run (an inherited NANTRACE_RUN_DIR) reuses it.
  RunDirectory again;
  again.path = d.path;
  again.inherited = true;
  EXPECT_TRUE(create_run_directory(&again, &err)) << err;
}

TEST_F(FileSafetyTest, SymlinkPlantedAtRunDirectoryIsRefused) {
  const std::string run = out_ + "/run";
  ASSERT_EQ(::symlink(other_.c_str(), run.c_str()), 0);
  RunDirectory d;
  d.path = run;
  std::string err;
  EXPECT_FALSE(create_run_directory(&d, &err));
  EXPECT_FALSE(d.created);
  EXPECT_NE(err.find("'" + run + "'"), std::string::npos) << err;
  EXPECT_NE(err.find("symlink"), std::string::npos) << err;
  EXPECT_TRUE(is_symlink(run));  // left as it was
  EXPECT_EQ(fs::read_symlink(run).string(), other_);
  EXPECT_EQ(std::distance(fs::directory_iterator(other_), fs::directory_iterator()), 1);  // only the victim
  expect_victim_untouched();
}

TEST_F(FileSafetyTest, DanglingSymlinkAtRunDirectoryIsRefusedAndItsTargetNotCreated) {
  const std::string run = out_ + "/run";
  const std::string target = other_ + "/made_by_nantrace";
  ASSERT_EQ(::symlink(target.c_str(), run.c_str()), 0);
  RunDirectory d;
  d.path = run;
  std::string err;
  EXPECT_FALSE(create_run_directory(&d, &err));
  EXPECT_NE(err.find(run), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(fs::symlink_status(target)));
}

TEST_F(FileSafetyTest, FileInPlaceOfRunDirectoryIsRefused) {
  const std::string run = out_ + "/run";
  write_text(run, "not a directory");
  RunDirectory d;
  d.path = run;
  std::string err;
  EXPECT_FALSE(create_run_directory(&d, &err));
  EXPECT_FALSE(d.created);
  EXPECT_NE(err.find("'" + run + "'"), std::string::npos) << err;
  EXPECT_NE(err.find("not a directory"), std::string::npos) << err;
  EXPECT_EQ(read_all(run), "not a directory");
}

TEST_F(FileSafetyTest, FileInPlaceOfOutputRootIsRefusedNamingIt) {
  const std::string root = out_ + "/nantrace_runs";
  write_text(root, "x");
  RunDirectory d;
  d.path = root + "/run";
  std::string err;
  EXPECT_FALSE(create_run_directory(&d, &err));
  EXPECT_NE(err.find(root), std::string::npos) << err;
  EXPECT_EQ(read_all(root), "x");
}

TEST_F(FileSafetyTest, NonWritableParentIsRefusedNamingThePath) {
  if (::geteuid() == 0)
    GTEST_SKIP() << "running as root: permission bits are not enforced for root (CAP_DAC_OVERRIDE), so a "
                    "0555 directory is writable and this case cannot be produced";
  ASSERT_EQ(::chmod(out_.c_str(), 0555), 0);
  RunDirectory d;
  d.path = out_ + "/run";
  std::string err;
  EXPECT_FALSE(create_run_directory(&d, &err));
  EXPECT_NE(err.find(d.path), std::string::npos) << err;
  EXPECT_NE(err.find(std::strerror(EACCES)), std::string::npos) << err;
}

TEST_F(FileSafetyTest, RunDirectoryIsNotWritableByOthersEvenWithUmaskZero) {
  ScopedUmask um(0);
  RunDirectory d;
  d.path = out_ + "/run";
  std::string err;
  ASSERT_TRUE(create_run_directory(&d, &err)) << err;
  EXPECT_EQ(mode_of(d.path) & 0022, mode_t(0)) << std::oct << (mode_of(d.path) & 07777);
}

TEST_F(FileSafetyTest, CreatedOutputRootIsNotWritableByOthersEvenWithUmaskZero) {
  // NANTRACE_DIR and its missing parents are created by nantrace too; a world-writable one
  // would let any local user plant or swap entries in it.
  ScopedUmask um(0);
  RunDirectory d;
  d.path = out_ + "/nantrace_runs/nested/run";
  std::string err;
  ASSERT_TRUE(create_run_directory(&d, &err)) << err;
  for (const std::string& p : {out_ + "/nantrace_runs", out_ + "/nantrace_runs/nested"})
    EXPECT_EQ(mode_of(p) & 0022, mode_t(0)) << p << " mode " << std::oct << (mode_of(p) & 07777);
}

// ---------------------------------------------------------------- trace.json

TEST_F(FileSafetyTest, SymlinkPlantedAtTraceFileIsRefusedAndTargetUntouched) {
  const std::string trace = out_ + "/trace.json";
  ASSERT_EQ(::symlink(victim_.c_str(), trace.c_str()), 0);
  ChromeTraceWriter w;
  std::string err;
  EXPECT_FALSE(w.open(trace, &err));
  EXPECT_FALSE(w.is_open());
  EXPECT_NE(err.find(trace), std::string::npos) << err;
  w.instant("nothing", "nantrace", 1, 1, 0, 'g');  // dropped: the writer never opened
  w.close();
  EXPECT_TRUE(is_symlink(trace));
  expect_victim_untouched();
}

TEST_F(FileSafetyTest, DanglingSymlinkAtTraceFileDoesNotCreateItsTarget) {
  const std::string trace = out_ + "/trace.json";
  const std::string target = other_ + "/created_through_link.json";
  ASSERT_EQ(::symlink(target.c_str(), trace.c_str()), 0);
  ChromeTraceWriter w;
  std::string err;
  EXPECT_FALSE(w.open(trace, &err));
  EXPECT_FALSE(fs::exists(fs::symlink_status(target)));
}

TEST_F(FileSafetyTest, ExistingTraceFileIsNotClobbered) {
  const std::string trace = out_ + "/trace.json";
  write_text(trace, "[\n{\"earlier\":1}\n]\n");
  ChromeTraceWriter w;
  std::string err;
  EXPECT_FALSE(w.open(trace, &err));
  EXPECT_NE(err.find(trace), std::string::npos) << err;
  EXPECT_EQ(read_all(trace), "[\n{\"earlier\":1}\n]\n");
}

TEST_F(FileSafetyTest, TraceFileIsCreated0644OrTighterEvenWithUmaskZero) {
  ScopedUmask um(0);
  const std::string trace = out_ + "/trace.json";
  ChromeTraceWriter w;
  std::string err;
  ASSERT_TRUE(w.open(trace, &err)) << err;
  w.close();
  const mode_t m = mode_of(trace);
  EXPECT_TRUE(S_ISREG(m));
  EXPECT_TRUE(mode_at_most_0644(m)) << std::oct << (m & 07777);
}

// ---------------------------------------------------------------- report.json / report.md

TEST_F(FileSafetyTest, ReportIsCreated0644OrTighterEvenWithUmaskZero) {
  ScopedUmask um(0);
  const std::string report = out_ + "/report.json";
  std::string err;
  ASSERT_TRUE(write_file_atomic(report, "{}\n", &err)) << err;
  EXPECT_EQ(read_all(report), "{}\n");
  const mode_t m = mode_of(report);
  EXPECT_TRUE(S_ISREG(m));
  EXPECT_TRUE(mode_at_most_0644(m)) << std::oct << (m & 07777);
  EXPECT_FALSE(fs::exists(report + ".tmp"));
}

TEST_F(FileSafetyTest, SymlinkPlantedAtReportIsReplacedNotFollowed) {
  // rename() replaces the link itself; the file it pointed to keeps its content.
  const std::string report = out_ + "/report.md";
  ASSERT_EQ(::symlink(victim_.c_str(), report.c_str()), 0);
  std::string err;
  ASSERT_TRUE(write_file_atomic(report, "# report\n", &err)) << err;
  EXPECT_FALSE(is_symlink(report));
  EXPECT_EQ(read_all(report), "# report\n");
  expect_victim_untouched();
}

TEST_F(FileSafetyTest, SymlinkPlantedAtReportTempFileIsRefused) {
  const std::string report = out_ + "/report.json";
  ASSERT_EQ(::symlink(victim_.c_str(), (report + ".tmp").c_str()), 0);
  std::string err;
  EXPECT_FALSE(write_file_atomic(report, "{}\n", &err));
  EXPECT_NE(err.find(report), std::string::npos) << err;
  EXPECT_NE(err.find("symbolic link"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(fs::symlink_status(report)));
  EXPECT_TRUE(is_symlink(report + ".tmp"));
  expect_victim_untouched();
}

}  // namespace
}  // namespace nantrace
