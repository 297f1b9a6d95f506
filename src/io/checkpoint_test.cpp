#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include "arch/shapes.h"
#include "arch/tensor_role.h"
#include "io/checkpoint_readers.h"

namespace rtnq {
namespace {

// A checkpoint whose tensors are views at chosen offsets of one (fake) file.
Checkpoint FakeCheckpoint(std::vector<uint8_t>& storage) {
  Checkpoint ck;
  ck.path = "fake.bin";
  ck.config = *KnownShape("tiny-llama3");
  uint64_t offset = 0;
  std::vector<std::pair<TensorId, uint64_t>> layout;
  for (const TensorId& id : RequiredTensors(ck.config)) {
    int64_t n = 1;
    for (int64_t d : ExpectedShape(ck.config, id)) n *= d;
    layout.push_back({id, offset});
    offset += static_cast<uint64_t>(n) * 4;
  }
  storage.assign(offset, 0);
  for (const auto& [id, off] : layout) {
    TensorView t;
    t.name = t.file_name = CanonicalName(id);
    t.shape = ExpectedShape(ck.config, id);
    t.nbytes = static_cast<uint64_t>(t.NumElements()) * 4;
    t.file = "fake.bin";
    t.file_offset = off;
    t.data = storage.data() + off;
    ck.tensors.push_back(t);
  }
  return ck;
}

TEST(ValidateCheckpoint, AcceptsAWellFormedCheckpoint) {
  std::vector<uint8_t> storage;
  EXPECT_TRUE(ValidateCheckpoint(FakeCheckpoint(storage)).ok());
}

TEST(ValidateCheckpoint, FindsOverlapsHiddenBehindEmptyOrShortTensors) {
  std::vector<uint8_t> storage;
  Checkpoint ck = FakeCheckpoint(storage);
  // Make tensor 1 start inside tensor 0, and put an empty extra tensor between them.
  ck.tensors[1].file_offset = ck.tensors[0].file_offset + 4;
  TensorView empty;
  empty.name = empty.file_name = "extra.empty";
  empty.file = "fake.bin";
  empty.file_offset = 2;
  ck.tensors.push_back(empty);
  auto st = ValidateCheckpoint(ck);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("overlap"), std::string::npos) << st.message();
}

TEST(ValidateCheckpoint, NamesShapeAndSizeMismatches) {
  std::vector<uint8_t> storage;
  Checkpoint ck = FakeCheckpoint(storage);
  ck.tensors[3].shape = {1, 2};
  auto st = ValidateCheckpoint(ck);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(ck.tensors[3].name), std::string::npos) << st.message();
  ck = FakeCheckpoint(storage);
  ck.tensors[2].nbytes -= 4;
  st = ValidateCheckpoint(ck);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("inconsistent"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace rtnq
