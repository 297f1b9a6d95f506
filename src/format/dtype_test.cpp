#include "format/dtype.h"

#include <gtest/gtest.h>

#include "base/half.h"

namespace rtnq {
namespace {

TEST(DType, TableIsIndexedByEnumAndParses) {
  for (size_t i = 0; i < static_cast<size_t>(DType::kCount); ++i) {
    EXPECT_EQ(static_cast<size_t>(kDTypeTable[i].dtype), i);
    EXPECT_EQ(ParseDType(kDTypeTable[i].name), kDTypeTable[i].dtype);
  }
  EXPECT_FALSE(ParseDType("Q5_K").has_value());
  EXPECT_EQ(DTypeBytes(DType::kQ4_0, 64), 36u);
  EXPECT_FALSE(DTypeBytes(DType::kQ4_0, 33).has_value());
}

TEST(DType, DequantizesGgmlBlocks) {
  uint8_t q40[18];
  const uint16_t d = F32ToF16(0.5f);
  std::memcpy(q40, &d, 2);
  for (int j = 0; j < 16; ++j) q40[2 + j] = static_cast<uint8_t>((j & 0xf) | ((15 - j) << 4));
  float out[32];
  DequantizeRow(DType::kQ4_0, q40, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], (j - 8) * 0.5f);
    EXPECT_EQ(out[j + 16], (15 - j - 8) * 0.5f);
  }
}

}  // namespace
}  // namespace rtnq
