// Where tests find things: the shared data (RTNQ_DATA, default ../shared/data from the source
// root), the source tree and the build tree (set by CTest; see rtnq_test in CMakeLists.txt).
#pragma once

#include <cstdlib>
#include <string>

namespace rtnq::testing {

inline std::string SourceDir() {
  const char* s = std::getenv("RTNQ_SOURCE_DIR");
  return s ? s : ".";
}

inline std::string BinaryDir() {
  const char* s = std::getenv("RTNQ_BINARY_DIR");
  return s ? s : ".";
}

inline std::string DataDir() {
  if (const char* d = std::getenv("RTNQ_DATA"); d && *d) return d;
  return SourceDir() + "/../shared/data";
}

// The rtnq binary built alongside the tests, for CLI-level tests.
inline std::string RtnqBinary() { return BinaryDir() + "/tools/rtnq/rtnq"; }

}  // namespace rtnq::testing
