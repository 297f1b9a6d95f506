// UTF-8 helpers and GPT-2's byte <-> unicode-symbol table shared by the tokenizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rtnq::tokenizer_internal {

// Length of the well-formed UTF-8 sequence at s[pos] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 if the bytes there are not one.
size_t ValidUtf8SequenceLength(std::string_view s, size_t pos);

// Decodes a well-formed sequence at s[pos] (caller checked it with ValidUtf8SequenceLength).
uint32_t DecodeUtf8(std::string_view s, size_t pos, size_t len);

void AppendUtf8(uint32_t codepoint, std::string* out);

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in byte order. Returns the UTF-8 of the symbol for byte b.
const std::string& ByteToSymbol(uint8_t b);
// Inverse of ByteToSymbol for one codepoint; -1 if the codepoint is not a byte symbol.
int SymbolToByte(uint32_t codepoint);

// Maps every byte of `bytes` to its symbol (the text form byte-level vocabularies store).
std::string BytesToSymbols(std::string_view bytes);
// Maps a symbol string back to bytes; characters that are not byte symbols (or malformed
// UTF-8) are copied unchanged.
std::string SymbolsToBytes(std::string_view symbols);

// "<0x0A>" -> 10; -1 if `piece` is not of that exact form (two hex digits, any case).
int ParseBytePiece(std::string_view piece);

}  // namespace rtnq::tokenizer_internal
