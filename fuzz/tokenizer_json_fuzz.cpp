// libFuzzer target: bytes -> ParseTokenizerJson -> Tokenizer::Create -> encode/decode. Must never
// crash or hang, whatever the JSON (including pre-tokenizer regexes it carries).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/tokenizer_json.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = rtnq::ParseTokenizerJson(text, "fuzz.json");
  if (!spec.ok()) return 0;
  auto tok = rtnq::Tokenizer::Create(*spec);
  if (!tok.ok()) return 0;
  for (bool parse_special : {false, true}) {
    const auto ids = (*tok)->Encode(text.substr(0, 512), {.add_special = true, .parse_special = parse_special});
    (void)(*tok)->Decode(ids);
  }
  for (int32_t id : {-1, 0, (*tok)->vocab_size() - 1, (*tok)->vocab_size()}) (void)(*tok)->TokenToPiece(id);
  return 0;
}
