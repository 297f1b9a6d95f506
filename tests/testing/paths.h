// Where tests find things: the shared data (RTNQ_DATA, default ../shared/data from the source
// root), the source tree and the build tree (compiled in by rtnq_test in CMakeLists.txt; the
// environment variables RTNQ_SOURCE_DIR / RTNQ_BINARY_DIR override them).
#pragma once

#include <cstdlib>
#include <string>

namespace rtnq::testing {

#ifndef RTNQ_DEFAULT_SOURCE_DIR
#define RTNQ_DEFAULT_SOURCE_DIR "."
#endif
#ifndef RTNQ_DEFAULT_BINARY_DIR
#define RTNQ_DEFAULT_BINARY_DIR "."
#endif

inline std::string SourceDir() {
  const char* s = std::getenv("RTNQ_SOURCE_DIR");
  return s && *s ? s : RTNQ_DEFAULT_SOURCE_DIR;
}

inline std::string BinaryDir() {
  const char* s = std::getenv("RTNQ_BINARY_DIR");
  return s && *s ? s : RTNQ_DEFAULT_BINARY_DIR;
}

inline std::string DataDir() {
  if (const char* d = std::getenv("RTNQ_DATA"); d && *d) return d;
  return SourceDir() + "/../shared/data";
}

// The rtnq binary built alongside the tests, for CLI-level tests.
inline std::string RtnqBinary() { return BinaryDir() + "/tools/rtnq/rtnq"; }

}  // namespace rtnq::testing
