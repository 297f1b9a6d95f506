#include "base/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace rtnq {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

}  // namespace

Result<std::shared_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Err("{}: cannot open: {}", path, ErrnoText());
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Err("{}: cannot stat: {}", path, ErrnoText());
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Err("{}: not a regular file", path);
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return Err("{}: mmap failed: {}", path, ErrnoText());
    }
    file->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::string> ReadFileToString(const std::string& path) {
  RTNQ_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  return std::string(reinterpret_cast<const char*>(file->data()), file->size());
}

Result<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Create(const std::string& path,
                                                                   bool overwrite) {
  if (!overwrite && PathExists(path)) {
    return Err("{}: already exists (use --force to overwrite)", path);
  }
  std::unique_ptr<AtomicFileWriter> w(new AtomicFileWriter());
  w->path_ = path;
  std::random_device rd;
  w->tmp_path_ = fmt::format("{}.tmp-{:08x}", path, rd());
  w->fd_ = ::open(w->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return Err("{}: cannot create: {}", w->tmp_path_, ErrnoText());
  return w;
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status AtomicFileWriter::Write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Err("{}: write failed: {}", tmp_path_, ErrnoText());
    }
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status AtomicFileWriter::Commit() {
  if (::fsync(fd_) != 0) return Err("{}: fsync failed: {}", tmp_path_, ErrnoText());
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Err("{}: close failed: {}", tmp_path_, ErrnoText());
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return Err("{}: rename to {} failed: {}", tmp_path_, path_, ErrnoText());
  }
  committed_ = true;
  int dfd = ::open(DirName(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view contents, bool overwrite) {
  RTNQ_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::Create(path, overwrite));
  RTNQ_RETURN_IF_ERROR(w->Write(contents));
  return w->Commit();
}

Result<std::unique_ptr<AtomicDirectory>> AtomicDirectory::Create(const std::string& path,
                                                                 bool overwrite) {
  if (!overwrite && PathExists(path)) return Err("{}: already exists (use --force to overwrite)", path);
  std::unique_ptr<AtomicDirectory> d(new AtomicDirectory());
  d->path_ = path;
  d->overwrite_ = overwrite;
  std::random_device rd;
  d->tmp_path_ = fmt::format("{}.tmp-{:08x}", path, rd());
  if (::mkdir(d->tmp_path_.c_str(), 0755) != 0) {
    return Err("{}: cannot create directory: {}", d->tmp_path_, ErrnoText());
  }
  return d;
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_ && !tmp_path_.empty()) RemoveTree(tmp_path_);
}

Status AtomicDirectory::Commit() {
  std::string old;
  if (PathExists(path_)) {
    if (!overwrite_) return Err("{}: already exists (use --force to overwrite)", path_);
    std::random_device rd;
    old = fmt::format("{}.old-{:08x}", path_, rd());
    if (::rename(path_.c_str(), old.c_str()) != 0) {
      return Err("{}: cannot move aside: {}", path_, ErrnoText());
    }
  }
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const std::string err = ErrnoText();
    if (!old.empty()) ::rename(old.c_str(), path_.c_str());
    return Err("{}: rename to {} failed: {}", tmp_path_, path_, err);
  }
  committed_ = true;
  if (!old.empty()) RTNQ_RETURN_IF_ERROR(RemoveTree(old));
  return Status::Ok();
}

Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();
  if (S_ISDIR(st.st_mode)) {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return Err("{}: cannot open directory: {}", path, ErrnoText());
    while (dirent* e = ::readdir(dir)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      Status s = RemoveTree(path + "/" + name);
      if (!s.ok()) {
        ::closedir(dir);
        return s;
      }
    }
    ::closedir(dir);
    if (::rmdir(path.c_str()) != 0) return Err("{}: cannot remove: {}", path, ErrnoText());
  } else if (::unlink(path.c_str()) != 0) {
    return Err("{}: cannot remove: {}", path, ErrnoText());
  }
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace rtnq
