#include "tokenizer/unicode_bytes.h"

#include <array>

namespace rtnq::tokenizer_internal {
namespace {

struct ByteTables {
  std::array<std::string, 256> symbol;  // byte -> UTF-8 of its symbol
  std::array<int16_t, 512> byte_of;     // codepoint (< 512) -> byte, or -1
};

const ByteTables& Tables() {
  static const ByteTables tables = [] {
    ByteTables t;
    t.byte_of.fill(-1);
    uint32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next_extra++;
      AppendUtf8(cp, &t.symbol[b]);
      t.byte_of[cp] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

}  // namespace

size_t ValidUtf8SequenceLength(std::string_view s, size_t pos) {
  const size_t n = s.size() - pos;
  const auto at = [&](size_t i) { return static_cast<uint8_t>(s[pos + i]); };
  const uint8_t b0 = at(0);
  if (b0 < 0x80) return 1;
  const auto cont = [&](size_t i) { return i < n && (at(i) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (b0 == 0xE0 && at(1) < 0xA0) return 0;   // overlong
    if (b0 == 0xED && at(1) >= 0xA0) return 0;  // UTF-16 surrogates
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (b0 == 0xF0 && at(1) < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && at(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

uint32_t DecodeUtf8(std::string_view s, size_t pos, size_t len) {
  const auto at = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(s[pos + i])); };
  switch (len) {
    case 1: return at(0);
    case 2: return ((at(0) & 0x1F) << 6) | (at(1) & 0x3F);
    case 3: return ((at(0) & 0x0F) << 12) | ((at(1) & 0x3F) << 6) | (at(2) & 0x3F);
    default:
      return ((at(0) & 0x07) << 18) | ((at(1) & 0x3F) << 12) | ((at(2) & 0x3F) << 6) | (at(3) & 0x3F);
  }
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

const std::string& ByteToSymbol(uint8_t b) { return Tables().symbol[b]; }

int SymbolToByte(uint32_t cp) { return cp < 512 ? Tables().byte_of[cp] : -1; }

std::string BytesToSymbols(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += ByteToSymbol(static_cast<uint8_t>(c));
  return out;
}

std::string SymbolsToBytes(std::string_view symbols) {
  std::string out;
  out.reserve(symbols.size());
  size_t pos = 0;
  while (pos < symbols.size()) {
    const size_t len = ValidUtf8SequenceLength(symbols, pos);
    if (len == 0) {
      out.push_back(symbols[pos++]);
      continue;
    }
    const int b = SymbolToByte(DecodeUtf8(symbols, pos, len));
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(symbols.substr(pos, len));
    }
    pos += len;
  }
  return out;
}

int ParseBytePiece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace rtnq::tokenizer_internal
