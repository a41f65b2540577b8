#include "output/file_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace nantrace {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nantrace_fileio_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_EQ(std::system(("rm -rf '" + dir_ + "'").c_str()), 0); }
  std::string dir_;
};

TEST_F(FileIoTest, WritesContentWithMode0644AndLeavesNoTemp) {
  const std::string path = dir_ + "/report.md";
  const mode_t old = umask(022);
  std::string err;
  const bool ok = write_file_atomic(path, "hello\nworld\n", &err);
  umask(old);
  ASSERT_TRUE(ok) << err;
  EXPECT_EQ(read_all(path), "hello\nworld\n");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
}

TEST_F(FileIoTest, ReplacesExistingFile) {
  const std::string path = dir_ + "/report.json";
  ASSERT_TRUE(write_file_atomic(path, "old", nullptr));
  ASSERT_TRUE(write_file_atomic(path, "new content", nullptr));
  EXPECT_EQ(read_all(path), "new content");
}

TEST_F(FileIoTest, RefusesToFollowSymlinkAtTempPath) {
  const std::string path = dir_ + "/report.md";
  const std::string victim = dir_ + "/victim";
  { std::ofstream(victim) << "precious"; }
  ASSERT_EQ(symlink(victim.c_str(), (path + ".tmp").c_str()), 0);
  std::string err;
  EXPECT_FALSE(write_file_atomic(path, "attacker-controlled?", &err));
  EXPECT_NE(err.find("symbolic link"), std::string::npos) << err;
  EXPECT_EQ(read_all(victim), "precious");
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "nothing written at the destination";
}

TEST_F(FileIoTest, SymlinkAtDestinationIsReplacedNotFollowed) {
  const std::string path = dir_ + "/report.md";
  const std::string victim = dir_ + "/victim";
  { std::ofstream(victim) << "precious"; }
  ASSERT_EQ(symlink(victim.c_str(), path.c_str()), 0);
  ASSERT_TRUE(write_file_atomic(path, "report", nullptr));
  EXPECT_EQ(read_all(victim), "precious");
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(read_all(path), "report");
}

TEST_F(FileIoTest, StaleRegularTempFromCrashedWriterIsReplaced) {
  const std::string path = dir_ + "/report.md";
  { std::ofstream(path + ".tmp") << "half a rep"; }
  std::string err;
  ASSERT_TRUE(write_file_atomic(path, "whole report", &err)) << err;
  EXPECT_EQ(read_all(path), "whole report");
}

TEST_F(FileIoTest, MissingDirectoryGivesOneLineError) {
  std::string err;
  EXPECT_FALSE(write_file_atomic(dir_ + "/no/such/dir/report.md", "x", &err));
  EXPECT_NE(err.find("no/such/dir/report.md.tmp"), std::string::npos) << err;
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace nantrace
