// Runs a command line through the shell and captures stdout, stderr and the exit status.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace rtnq::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline CommandResult RunCommand(const std::string& command) {
  char dir_template[] = "/tmp/rtnq-run-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string out = dir + "/out", err = dir + "/err";
  const int status = std::system((command + " >" + out + " 2>" + err + " </dev/null").c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  rmdir(dir.c_str());
  return r;
}

// A fresh temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/rtnq-test-XXXXXX";
    path_ = mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  // Writes `bytes` (any contiguous byte container) to path()/name and returns that path.
  template <typename Bytes>
  std::string Write(const std::string& name, const Bytes& bytes) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

 private:
  std::string path_;
};

}  // namespace rtnq::testing
