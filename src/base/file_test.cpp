#include "base/file.h"

#include <gtest/gtest.h>

#include <fstream>

namespace rtnq {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(AtomicDirectory, AppearsOnlyOnCommitAndReplacesWhenAsked) {
  const std::string path = ::testing::TempDir() + "/rtnq_atomic_dir";
  ASSERT_TRUE(RemoveTree(path).ok());
  {
    auto d = AtomicDirectory::Create(path, false);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(WriteFileAtomic((*d)->temp_path() + "/a.txt", "one", false).ok());
    EXPECT_FALSE(PathExists(path));
  }  // abandoned: nothing left behind
  EXPECT_FALSE(PathExists(path));
  auto d = AtomicDirectory::Create(path, false);
  ASSERT_TRUE(d.ok());
  const std::string tmp = (*d)->temp_path();
  ASSERT_TRUE(WriteFileAtomic(tmp + "/a.txt", "one", false).ok());
  ASSERT_TRUE((*d)->Commit().ok());
  EXPECT_FALSE(PathExists(tmp));
  EXPECT_EQ(Slurp(path + "/a.txt"), "one");
  EXPECT_FALSE(AtomicDirectory::Create(path, false).ok());
  auto again = AtomicDirectory::Create(path, true);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(WriteFileAtomic((*again)->temp_path() + "/b.txt", "two", false).ok());
  ASSERT_TRUE((*again)->Commit().ok());
  EXPECT_FALSE(PathExists(path + "/a.txt"));
  EXPECT_EQ(Slurp(path + "/b.txt"), "two");
  EXPECT_TRUE(RemoveTree(path).ok());
}

TEST(AtomicFileWriter, NeverOverwritesUnasked) {
  const std::string path = ::testing::TempDir() + "/rtnq_atomic_file.txt";
  RemoveTree(path);
  ASSERT_TRUE(WriteFileAtomic(path, "x", false).ok());
  auto again = WriteFileAtomic(path, "y", false);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("--force"), std::string::npos);
  EXPECT_EQ(Slurp(path), "x");
  ASSERT_TRUE(WriteFileAtomic(path, "y", true).ok());
  EXPECT_EQ(Slurp(path), "y");
  RemoveTree(path);
}

}  // namespace
}  // namespace rtnq
