#include "io/tokenizer_json.h"

#include "base/file.h"

namespace rtnq {

// Placeholder until the tokenizer.json reader lands.
Result<TokenizerSpec> ParseTokenizerJson(std::string_view json, const std::string& path) {
  return Err("{}: tokenizer.json reading is not implemented yet", path);
}

Result<TokenizerSpec> ReadTokenizerJson(const std::string& path) {
  RTNQ_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseTokenizerJson(text, path);
}

}  // namespace rtnq
