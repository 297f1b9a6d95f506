#include "io/llama2c.h"

#include <algorithm>
#include <cstring>
#include <cstdlib>

#include "arch/tensor_role.h"
#include "base/file.h"
#include "io/checkpoint_readers.h"
#include "io/tokenizer_json.h"

namespace rtnq {
namespace {

constexpr uint32_t kVersionedMagic = 0x616b3432;  // "ak42": llama2.c export.py version 1+ files
constexpr size_t kHeaderBytes = 7 * 4;
constexpr const char* kHeaderFields[] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                                         "n_kv_heads", "vocab_size", "seq_len"};

using u128 = unsigned __int128;  // byte totals: layers * hidden * dim * 4 may pass 2^63

// Lays out the f32 arrays that follow the header, in file order.
class Layout {
 public:
  Layout(const uint8_t* data, const std::string& path, Checkpoint* ck)
      : data_(data), path_(path), ck_(ck) {}

  u128 offset() const { return offset_; }
  void Skip(u128 elems) { offset_ += elems * 4; }

  // Adds `layers` tensors (or one global tensor when layer < 0) of `shape` each, stacked.
  void Add(TensorRole role, int layers, std::vector<int64_t> shape, const char* file_array,
           int64_t rope_heads = 0) {
    int64_t elems = 1;
    for (int64_t d : shape) elems *= d;
    for (int l = 0; l < std::max(layers, 1); ++l) {
      if (data_ != nullptr) {
        TensorView v;
        v.name = CanonicalName(TensorId{role, layers > 0 ? l : -1});
        v.file_name = layers > 0 ? fmt::format("{}[{}]", file_array, l) : file_array;
        v.dtype = DType::kF32;
        v.shape = shape;
        v.file_offset = static_cast<uint64_t>(offset_);
        v.data = data_ + v.file_offset;
        v.nbytes = static_cast<uint64_t>(elems) * 4;
        v.file = path_;
        v.rope_permuted_heads = rope_heads;
        ck_->tensors.push_back(std::move(v));
      }
      offset_ += static_cast<u128>(elems) * 4;
    }
  }

 private:
  const uint8_t* data_;  // null: only compute the size
  const std::string& path_;
  Checkpoint* ck_;
  u128 offset_ = kHeaderBytes;
};

// Walks the llama2.c export order (model.py / export.py legacy_export): with data == nullptr only
// the total size is computed.
u128 LayOut(const ModelConfig& c, bool with_classifier, const uint8_t* data,
            const std::string& path, Checkpoint* ck, int64_t seq_len) {
  Layout lay(data, path, ck);
  const int n = static_cast<int>(c.num_layers);
  const int64_t dim = c.hidden_size, hidden = c.intermediate_size;
  const int64_t q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  lay.Add(TensorRole::kEmbed, 0, {c.vocab_size, dim}, "token_embedding_table");
  lay.Add(TensorRole::kAttnNorm, n, {dim}, "rms_att_weight");
  // llama2.c's RoPE rotates adjacent pairs, so q/k rows are in interleaved order.
  lay.Add(TensorRole::kAttnQ, n, {q_dim, dim}, "wq", c.num_heads);
  lay.Add(TensorRole::kAttnK, n, {kv_dim, dim}, "wk", c.num_kv_heads);
  lay.Add(TensorRole::kAttnV, n, {kv_dim, dim}, "wv");
  lay.Add(TensorRole::kAttnO, n, {dim, q_dim}, "wo");
  lay.Add(TensorRole::kMlpNorm, n, {dim}, "rms_ffn_weight");
  lay.Add(TensorRole::kMlpGate, n, {hidden, dim}, "w1");
  lay.Add(TensorRole::kMlpDown, n, {dim, hidden}, "w2");
  lay.Add(TensorRole::kMlpUp, n, {hidden, dim}, "w3");
  lay.Add(TensorRole::kFinalNorm, 0, {dim}, "rms_final_weight");
  // freq_cis_real and freq_cis_imag [seq_len, head_dim / 2]: unused (rtnq computes RoPE).
  lay.Skip(static_cast<u128>(seq_len) * (c.head_dim / 2) * 2);
  if (with_classifier) lay.Add(TensorRole::kLmHead, 0, {c.vocab_size, dim}, "wcls");
  return lay.offset();
}

int32_t LoadI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

std::string U128String(u128 v) {
  if (v <= UINT64_MAX) return std::to_string(static_cast<uint64_t>(v));
  return "more than 2^64";
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "<0x0A>" -> true: SentencePiece byte-fallback pieces.
bool IsBytePiece(const std::string& s) {
  auto hex = [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F'); };
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

}  // namespace

Result<Checkpoint> ParseLlama2c(const uint8_t* data, size_t size, const std::string& path) {
  if (size >= 8 && static_cast<uint32_t>(LoadI32(data)) == kVersionedMagic) {
    return Err("{}: header at offset 0: llama2.c version-{} export not supported (legacy only)",
               path, LoadI32(data + 4));
  }
  if (size < kHeaderBytes) {
    return Err("{}: file is {} bytes, too short for the {}-byte llama2.c header", path, size,
               kHeaderBytes);
  }
  int32_t h[7];
  for (int i = 0; i < 7; ++i) {
    h[i] = LoadI32(data + 4 * i);
    const bool bad = i == 5 ? (h[i] == 0 || h[i] == INT32_MIN) : h[i] <= 0;
    if (bad) {
      return Err("{}: header field {} at offset {}: expected {}, found {}", path, kHeaderFields[i],
                 4 * i, i == 5 ? "a non-zero value" : "a positive value", h[i]);
    }
  }
  Checkpoint ck;
  ck.path = path;
  ck.format = CheckpointFormat::kLlama2c;
  ModelConfig& c = ck.config;
  c.hidden_size = h[0];
  c.intermediate_size = h[1];
  c.num_layers = h[2];
  c.num_heads = h[3];
  c.num_kv_heads = h[4];
  c.vocab_size = std::abs(h[5]);
  c.max_position_embeddings = h[6];
  // A negative vocab_size marks a separate classifier (llama2.c run.c: shared = vocab_size > 0).
  c.tie_word_embeddings = h[5] > 0;
  if (c.hidden_size % c.num_heads != 0) {
    return Err("{}: header: dim {} is not a multiple of n_heads {}", path, h[0], h[3]);
  }
  c.head_dim = c.hidden_size / c.num_heads;
  c.rms_norm_eps = 1e-5;  // llama2.c run.c rmsnorm
  c.rope_theta = 10000.0;
  c.bos_token_ids = {1};  // llama2.c run.c generate(): BOS 1; sampling stops at BOS/EOS 2
  c.eos_token_ids = {2};
  RTNQ_RETURN_IF_ERROR(c.Validate().WithContext(path + ": header"));

  const u128 shared_size = LayOut(c, false, nullptr, path, nullptr, h[6]);
  const u128 separate_size = LayOut(c, true, nullptr, path, nullptr, h[6]);
  const u128 expected = c.tie_word_embeddings ? shared_size : separate_size;
  if (expected != size) {
    return Err("{}: file is {} bytes, but the header (dim {}, hidden_dim {}, n_layers {}, n_heads {}, "
               "n_kv_heads {}, vocab_size {}, seq_len {}) implies {} bytes with {} classifier "
               "({} with {} one)",
               path, size, h[0], h[1], h[2], h[3], h[4], h[5], h[6], U128String(expected),
               c.tie_word_embeddings ? "a shared" : "a separate",
               U128String(c.tie_word_embeddings ? separate_size : shared_size),
               c.tie_word_embeddings ? "a separate" : "a shared");
  }
  LayOut(c, !c.tie_word_embeddings, data, path, &ck, h[6]);
  for (int i = 0; i < 7; ++i) ck.metadata.emplace_back(kHeaderFields[i], std::to_string(h[i]));
  ck.metadata.emplace_back("shared_classifier", c.tie_word_embeddings ? "true" : "false");
  return ck;
}

Result<TokenizerSpec> ParseLlama2cTokenizer(const uint8_t* data, size_t size,
                                            const std::string& path, int64_t vocab_size) {
  if (vocab_size < 3) {
    return Err("{}: vocab_size {} is too small (ids 0, 1, 2 are <unk>, <s>, </s>)", path, vocab_size);
  }
  if (size < 4) return Err("{}: file is {} bytes, too short for max_token_length", path, size);
  const int32_t max_len = LoadI32(data);
  if (max_len <= 0) {
    return Err("{}: max_token_length at offset 0: expected a positive value, found {}", path, max_len);
  }
  // Each record takes at least 8 bytes; bound the count before reserving.
  if (static_cast<uint64_t>(vocab_size) > (size - 4) / 8) {
    return Err("{}: {} token records need at least {} bytes, the file has {}", path, vocab_size,
               4 + 8 * static_cast<uint64_t>(vocab_size), size);
  }
  TokenizerSpec spec;
  spec.kind = TokenizerKind::kSentencePieceBpe;
  spec.tokens.reserve(vocab_size);
  spec.scores.reserve(vocab_size);
  spec.types.reserve(vocab_size);
  size_t pos = 4;
  for (int64_t id = 0; id < vocab_size; ++id) {
    if (size - pos < 8) {
      return Err("{}: token {} at offset {}: record header runs past the end of the file ({} bytes)",
                 path, id, pos, size);
    }
    float score;
    std::memcpy(&score, data + pos, 4);
    const int32_t len = LoadI32(data + pos + 4);
    if (len < 0 || static_cast<uint64_t>(len) > size - pos - 8) {
      return Err("{}: token {} at offset {}: length {} runs past the end of the file ({} bytes)",
                 path, id, pos, len, size);
    }
    std::string text(reinterpret_cast<const char*>(data + pos + 8), len);
    pos += 8 + len;
    TokenType type = TokenType::kNormal;
    // llama2.c's tokenizer.py writes <s>/</s> as "\n<s>\n"/"\n</s>\n"; llama.cpp's converter
    // names ids 0..2 <unk>/<s>/</s> regardless, and so do we.
    if (id == 0) {
      text = "<unk>";
      type = TokenType::kUnknown;
    } else if (id == 1 || id == 2) {
      text = id == 1 ? "<s>" : "</s>";
      type = TokenType::kControl;
    } else if (IsBytePiece(text)) {
      type = TokenType::kByte;
    } else {
      // tokenizer.py replaced SentencePiece's "▁" (U+2581) by " "; undo it.
      std::string spm;
      for (char ch : text) spm += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
      text = std::move(spm);
    }
    spec.tokens.push_back(std::move(text));
    spec.scores.push_back(score);
    spec.types.push_back(type);
  }
  if (pos != size) {
    return Err("{}: {} bytes left after {} token records (the model's vocab_size); the tokenizer "
               "has more tokens than the model", path, size - pos, vocab_size);
  }
  spec.unk_id = 0;
  spec.bos_id = 1;
  spec.eos_id = 2;
  spec.add_bos = true;
  spec.add_space_prefix = true;
  return spec;
}

Result<TokenizerSpec> ReadLlama2cTokenizer(const std::string& path, int64_t vocab_size) {
  RTNQ_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  return ParseLlama2cTokenizer(file->data(), file->size(), path, vocab_size);
}

Result<Checkpoint> OpenLlama2cCheckpoint(const std::string& path, const OpenOptions& options) {
  RTNQ_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  RTNQ_ASSIGN_OR_RETURN(Checkpoint ck, ParseLlama2c(file->data(), file->size(), path));
  ck.files.push_back(std::move(file));
  std::string tokenizer_path = options.tokenizer_path;
  if (tokenizer_path.empty()) {
    // llama2.c convention: tok<vocab_size>.bin next to the model (tok512.bin for stories260K).
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    const std::string candidate = fmt::format("{}tok{}.bin", dir, ck.config.vocab_size);
    if (PathExists(candidate)) tokenizer_path = candidate;
  }
  if (EndsWith(tokenizer_path, ".json")) {
    RTNQ_ASSIGN_OR_RETURN(ck.tokenizer, ReadTokenizerJson(tokenizer_path));
  } else if (!tokenizer_path.empty()) {
    RTNQ_ASSIGN_OR_RETURN(ck.tokenizer, ReadLlama2cTokenizer(tokenizer_path, ck.config.vocab_size));
  }
  if (ck.tokenizer) ck.metadata.emplace_back("tokenizer", tokenizer_path);
  return ck;
}

}  // namespace rtnq
