// Files: read-only memory maps for checkpoints, whole-file reads for small text, and atomic
// writes (temporary file in the same directory, fsync, rename) so that a failed or interrupted
// run never leaves a partial output behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace rtnq {

class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

Result<std::string> ReadFileToString(const std::string& path);

// Writes to `path` atomically. Fails if `path` exists and !overwrite.
class AtomicFileWriter {
 public:
  static Result<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path, bool overwrite);
  ~AtomicFileWriter();  // removes the temporary file unless Commit() succeeded
  Status Write(const void* data, size_t n);
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  uint64_t bytes_written() const { return written_; }
  Status Commit();  // flush, fsync, rename over `path`, fsync the directory

 private:
  AtomicFileWriter() = default;
  std::string path_, tmp_path_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

// A directory that appears whole or not at all: files are written into a temporary sibling
// directory, and Commit() renames it into place (replacing an existing one only when asked).
// Destroyed without Commit(), it removes the temporary directory.
class AtomicDirectory {
 public:
  static Result<std::unique_ptr<AtomicDirectory>> Create(const std::string& path, bool overwrite);
  ~AtomicDirectory();
  // Where to write the files now; they move to path() on Commit().
  const std::string& temp_path() const { return tmp_path_; }
  const std::string& path() const { return path_; }
  Status Commit();

 private:
  AtomicDirectory() = default;
  std::string path_, tmp_path_;
  bool overwrite_ = false, committed_ = false;
};

Status RemoveTree(const std::string& path);

Status WriteFileAtomic(const std::string& path, std::string_view contents, bool overwrite);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

}  // namespace rtnq
