#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <random>

#include "base/half.h"
#include "io/hf_test_util.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "testing/paths.h"

namespace rtnq {
namespace {

using ::rtnq::testing::ReadAll;
using ::rtnq::testing::ScratchDir;
using ::rtnq::testing::WriteAll;

// Random tensor contents in the given dtype (values from a seeded normal distribution).
std::string RandomBytes(DType dtype, int64_t elems, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::string out;
  for (int64_t i = 0; i < elems; ++i) {
    const float f = dist(rng);
    if (dtype == DType::kF32) {
      out.append(reinterpret_cast<const char*>(&f), 4);
    } else {
      const uint16_t h = dtype == DType::kF16 ? F32ToF16(f) : F32ToBf16(f);
      out.append(reinterpret_cast<const char*>(&h), 2);
    }
  }
  return out;
}

int64_t Elems(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// 8-byte little-endian length + header text + data.
std::string RawFile(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

Result<SafetensorsHeader> ParseBytes(const std::string& bytes) {
  return ParseSafetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                          "mem.safetensors");
}

std::string ParseError(const std::string& bytes) {
  auto r = ParseBytes(bytes);
  EXPECT_FALSE(r.ok()) << "parsed a malformed file";
  return r.ok() ? "" : r.status().message();
}

class RoundTrip : public ::testing::TestWithParam<DType> {};

TEST_P(RoundTrip, WriterOutputReadsBackByteForByte) {
  const DType dtype = GetParam();
  ScratchDir dir;
  const std::vector<TensorSpec> specs = {{"model.embed_tokens.weight", dtype, {11, 6}},
                                         {"scalar", dtype, {}},
                                         {"empty", dtype, {4, 0}},
                                         {"model.norm.weight", dtype, {6}},
                                         {"lm_head.weight", dtype, {11, 6}}};
  std::vector<std::string> data;
  std::string stream;
  for (size_t i = 0; i < specs.size(); ++i) {
    data.push_back(RandomBytes(dtype, Elems(specs[i].shape), static_cast<uint32_t>(i)));
    stream += data.back();
  }
  SafetensorsWriteOptions options;
  options.metadata = {{"note", "round trip"}};
  auto w = SafetensorsWriter::Begin(dir / "model.safetensors", specs, options);
  ASSERT_TRUE(w.ok()) << w.status().message();
  // Odd-sized pieces that straddle tensor boundaries.
  for (size_t pos = 0; pos < stream.size(); pos += 7) {
    ASSERT_TRUE((*w)->WriteTensorData(stream.data() + pos, std::min<size_t>(7, stream.size() - pos)).ok());
  }
  EXPECT_FALSE(PathExists(dir / "model.safetensors")) << "visible before Commit()";
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->files(), std::vector<std::string>{dir / "model.safetensors"});

  const std::string bytes = ReadAll(dir / "model.safetensors");
  EXPECT_EQ(bytes.size(), (*w)->file_bytes());
  auto f = OpenSafetensors(dir / "model.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->header.data_offset % 8, 0u);
  EXPECT_EQ(f->header.metadata.at("format"), "pt");
  EXPECT_EQ(f->header.metadata.at("note"), "round trip");
  // The header is HF's compact JSON padded with spaces.
  const std::string header = bytes.substr(8, f->header.header_bytes);
  EXPECT_EQ(header.find_last_not_of(' ') + 1, header.find_last_of('}') + 1);
  ASSERT_EQ(f->header.tensors.size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const SafetensorsTensor* t = nullptr;
    for (const auto& x : f->header.tensors) {
      if (x.name == specs[i].name) t = &x;
    }
    ASSERT_NE(t, nullptr) << specs[i].name;
    EXPECT_EQ(t->dtype, dtype);
    EXPECT_EQ(t->shape, specs[i].shape);
    ASSERT_EQ(t->nbytes, data[i].size());
    EXPECT_EQ(std::memcmp(f->TensorData(*t), data[i].data(), data[i].size()), 0) << t->name;
  }
  // The in-memory serializer produces the same bytes.
  auto serialized = SerializeSafetensors(specs, data, options.metadata);
  ASSERT_TRUE(serialized.ok());
  EXPECT_EQ(*serialized, bytes);
}

INSTANTIATE_TEST_SUITE_P(DTypes, RoundTrip,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(SafetensorsWriter, ShardsLikeTransformersAndWritesTheIndex) {
  ScratchDir dir;
  std::vector<TensorSpec> specs;
  std::vector<std::string> data;
  std::string stream;
  for (int i = 0; i < 5; ++i) {
    specs.push_back({fmt::format("t{}", i), DType::kBF16, {10, 20}});  // 400 bytes each
    data.push_back(RandomBytes(DType::kBF16, 200, 100 + i));
    stream += data.back();
  }
  SafetensorsWriteOptions options;
  options.max_shard_bytes = 1000;  // two tensors per shard
  auto w = SafetensorsWriter::Begin(dir / "model.safetensors", specs, options);
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_TRUE((*w)->WriteTensorData(stream.data(), stream.size()).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  const std::vector<std::string> expected_files = {
      dir / "model-00001-of-00003.safetensors", dir / "model-00002-of-00003.safetensors",
      dir / "model-00003-of-00003.safetensors", dir / "model.safetensors.index.json"};
  EXPECT_EQ((*w)->files(), expected_files);
  EXPECT_FALSE(PathExists(dir / "model.safetensors"));

  const auto index = nlohmann::json::parse(ReadAll(dir / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 2000);
  EXPECT_EQ(index["weight_map"]["t0"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["t3"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["t4"], "model-00003-of-00003.safetensors");
  for (int s = 0; s < 3; ++s) {
    auto f = OpenSafetensors(expected_files[s]);
    ASSERT_TRUE(f.ok()) << f.status().message();
    for (const auto& t : f->header.tensors) {
      const int i = t.name[1] - '0';
      EXPECT_EQ(i / 2, s) << t.name;
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->TensorData(t)), t.nbytes), data[i]);
    }
  }
}

TEST(SafetensorsWriter, IncompleteDataFailsAndLeavesNoFile) {
  ScratchDir dir;
  {
    auto w = SafetensorsWriter::Begin(dir / "model.safetensors", {{"a", DType::kF32, {4}}}, {});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->WriteTensorData("12345678", 8).ok());
    const Status s = (*w)->Commit();
    ASSERT_FALSE(s.ok());
    EXPECT_CONTAINS(s.message(), "8 of 16");
    EXPECT_CONTAINS(s.message(), "tensor a");
    EXPECT_FALSE((*w)->WriteTensorData(std::string(9, 'x').data(), 9).ok()) << "past the end";
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "temporary files left behind";
}

TEST(SafetensorsWriter, RejectsBadSpecsAndExistingFiles) {
  ScratchDir dir;
  EXPECT_FALSE(SafetensorsWriter::Begin(dir / "m.safetensors", {{"q", DType::kQ8_0, {32}}}, {}).ok());
  EXPECT_FALSE(SafetensorsWriter::Begin(dir / "m.safetensors",
                                        {{"a", DType::kF32, {1}}, {"a", DType::kF32, {1}}}, {})
                   .ok());
  EXPECT_FALSE(SafetensorsWriter::Begin(dir / "m.safetensors", {{"a", DType::kF32, {-1}}}, {}).ok());
  WriteAll(dir / "m.safetensors", "old");
  auto w = SafetensorsWriter::Begin(dir / "m.safetensors", {{"a", DType::kF32, {1}}}, {});
  ASSERT_FALSE(w.ok());
  EXPECT_CONTAINS(w.status().message(), "already exists");
  SafetensorsWriteOptions overwrite;
  overwrite.overwrite = true;
  auto w2 = SafetensorsWriter::Begin(dir / "m.safetensors", {{"a", DType::kF32, {1}}}, overwrite);
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->WriteTensorData("abcd", 4).ok());
  ASSERT_TRUE((*w2)->Commit().ok());
  EXPECT_TRUE(OpenSafetensors(dir / "m.safetensors").ok());
}

TEST(SafetensorsReader, ReadsTensorsInDataOrderWithAbsoluteOffsets) {
  const std::string header =
      R"({"b":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("a":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]},"__metadata__":null})";
  auto h = ParseBytes(RawFile(header, "AAAABBBB"));
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_EQ(h->tensors.size(), 2u);
  EXPECT_EQ(h->tensors[0].name, "b");
  EXPECT_EQ(h->tensors[0].offset, 8 + header.size());
  EXPECT_EQ(h->tensors[1].name, "a");
  EXPECT_EQ(h->tensors[1].dtype, DType::kF32);
  EXPECT_EQ(h->tensors[1].shape, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(h->tensors[1].offset, 8 + header.size() + 4);
}

TEST(SafetensorsReader, MalformedFilesGiveOneLineErrorsNamingTheProblem) {
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    std::string bytes;
    std::vector<std::string> expected;  // substrings of the message
  };
  const std::vector<Case> cases = {
      {"\x10\0\0", {"mem.safetensors", "truncated"}},
      {RawFile("{}").substr(0, 8) + "{", {"header length 2", "past the end"}},
      {std::string("\x00\x00\x00\x40\x00\x00\x00\x00", 8) + "{}", {"exceeds"}},
      {RawFile("[1,2]"), {"must be a JSON object"}},
      {RawFile("{\"w\":"), {"invalid JSON"}},
      {RawFile("{" + ok_entry + "," + ok_entry + "}", std::string(8, 'x')), {"duplicate key \"w\""}},
      {RawFile(R"({"w":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"unknown dtype Q9 for tensor w"}},
      {RawFile(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"unsupported dtype F64 for tensor w"}},
      {RawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8]}})", std::string(8, 'x')),
       {"tensor w", "data_offsets must be [begin, end]"}},
      {RawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", std::string(8, 'x')),
       {"tensor w", "data_offsets must be [begin, end]"}},
      {RawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", std::string(8, 'x')),
       {"tensor w", "data_offsets"}},
      {RawFile(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", std::string(8, 'x')),
       {"tensor w", "[8, 0] end precedes begin"}},
      {RawFile(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, 'x')),
       {"tensor w", "[0, 16] end is past the data section of 8 bytes"}},
      {RawFile(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"tensor w", "hold 8 bytes, but F32 [3] needs 12"}},
      {RawFile(R"({"w":{"dtype":"BF16","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
               std::string(8, 'x')),
       {"tensor w", "overflows"}},
      {RawFile(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"tensor w", "not a non-negative integer"}},
      {RawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               std::string(12, 'x')),
       {"tensors a [0, 8) and b [4, 12) overlap"}},
      // Found by fuzzing: an empty tensor sorted between two overlapping ones.
      {RawFile(R"({"e":{"dtype":"F16","shape":[0,4],"data_offsets":[0,0]},)"
               R"("W":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},)"
               R"("s":{"dtype":"F32","shape":[],"data_offsets":[4,8]}})",
               std::string(8, 'x')),
       {"tensors W [0, 6) and s [4, 8) overlap"}},
      {RawFile(R"({"w":{"dtype":"F32","shape":[2]}})"), {"tensor w", "missing \"data_offsets\""}},
      {RawFile(R"({"w":[1]})"), {"tensor w", "must be an object"}},
      {RawFile(R"({"__metadata__":{"format":1}})"), {"__metadata__ key format", "must be a string"}},
  };
  for (const auto& c : cases) {
    const std::string message = ParseError(c.bytes);
    EXPECT_CONTAINS(message, "mem.safetensors") << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const auto& e : c.expected) EXPECT_CONTAINS(message, e) << "case: " << c.bytes;
  }
}

TEST(SafetensorsReader, TruncatedRealFileNamesTheFileAndTensor) {
  ScratchDir dir;
  auto bytes = SerializeSafetensors({{"x", DType::kF32, {4}}, {"y", DType::kF32, {4}}},
                                    {std::string(16, 'a'), std::string(16, 'b')});
  ASSERT_TRUE(bytes.ok());
  WriteAll(dir / "cut.safetensors", bytes->substr(0, bytes->size() - 5));
  auto f = OpenSafetensors(dir / "cut.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_CONTAINS(f.status().message(), dir / "cut.safetensors");
  EXPECT_CONTAINS(f.status().message(), "tensor y");
  EXPECT_CONTAINS(f.status().message(), "past the data section of 27 bytes");

  auto missing = OpenSafetensors(dir / "nope.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_CONTAINS(missing.status().message(), "nope.safetensors");
}

// A file written by Hugging Face's own library (safetensors.numpy.save_file, safetensors 0.x):
// w = arange(6).reshape(2, 3) - 2.5, b = [0.5, -1]. rtnq's writer, given the same tensors in
// the same order and metadata, must produce the identical bytes.
TEST(SafetensorsReader, ReadsAndReproducesAFileWrittenByHuggingFace) {
  const std::string path =
      rtnq::testing::SourceDir() + "/fuzz/corpus/safetensors_fuzz/hf_numpy_f32.safetensors";
  auto f = OpenSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->header.metadata.at("format"), "np");
  EXPECT_EQ(f->header.metadata.at("note"), "written by safetensors.numpy");
  ASSERT_EQ(f->header.tensors.size(), 2u);
  const auto& b = f->header.tensors[0];
  const auto& w = f->header.tensors[1];
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(w.name, "w");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 3}));
  float values[6];
  std::memcpy(values, f->TensorData(w), sizeof(values));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(values[i], i - 2.5f);
  std::memcpy(values, f->TensorData(b), 8);
  EXPECT_EQ(values[0], 0.5f);
  EXPECT_EQ(values[1], -1.0f);

  auto ours = SerializeSafetensors(
      {{"b", DType::kF32, {2}}, {"w", DType::kF32, {2, 3}}},
      {std::string(reinterpret_cast<const char*>(f->TensorData(b)), b.nbytes),
       std::string(reinterpret_cast<const char*>(f->TensorData(w)), w.nbytes)},
      {{"format", "np"}, {"note", "written by safetensors.numpy"}});
  ASSERT_TRUE(ours.ok());
  EXPECT_EQ(*ours, ReadAll(path));

  // F64 has no DType: a clean error naming the tensor.
  auto f64 = OpenSafetensors(rtnq::testing::SourceDir() +
                             "/fuzz/corpus/safetensors_fuzz/hf_numpy_i64_f64.safetensors");
  ASSERT_FALSE(f64.ok());
  EXPECT_CONTAINS(f64.status().message(), "unsupported dtype F64 for tensor d");
}

}  // namespace
}  // namespace rtnq
