// F16 / BF16 conversions against IEEE 754 bit patterns worked out by hand,
// an independent ldexp-based decoder, and (where the compiler has it) the
// compiler's own _Float16 conversions.
#include "shared/tensor/dtype.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace blockserve {
namespace {

uint32_t Bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

float FromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

// Decodes an F16 pattern from its definition (sign, 5-bit exponent with bias
// 15, 10-bit fraction), independently of the code under test.
double ReferenceF16Value(uint16_t h) {
  const int sign = h >> 15;
  const int exponent = (h >> 10) & 0x1f;
  const int fraction = h & 0x3ff;
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(fraction, -24);
  } else if (exponent == 31) {
    magnitude = fraction == 0 ? std::numeric_limits<double>::infinity()
                              : std::numeric_limits<double>::quiet_NaN();
  } else {
    magnitude = std::ldexp(1024 + fraction, exponent - 25);
  }
  return sign ? -magnitude : magnitude;
}

// Nearest F16 to `x` (ties to even) by search over the decoded values.
uint16_t ReferenceF32ToF16(float x) {
  if (std::isnan(x)) return 0x7e00;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(x));
  // 65520 = 65504 + half an ulp: from there on, rounding gives infinity.
  if (a >= 65520.0) return sign | 0x7c00;
  uint16_t best = 0;
  for (uint16_t step = 0x4000; step > 0;
       step >>= 1) {  // largest pattern with value <= a
    if (best + step <= 0x7bff && ReferenceF16Value(best + step) <= a) {
      best += step;
    }
  }
  const double below = ReferenceF16Value(best);
  if (below == a || best == 0x7bff) return sign | best;
  const double above = ReferenceF16Value(best + 1);
  const double to_below = a - below, to_above = above - a;
  if (to_above < to_below || (to_above == to_below && (best & 1))) ++best;
  return sign | best;
}

// Nearest BF16 (ties to even) from the exact float neighbours.
uint16_t ReferenceF32ToBf16(float x) {
  if (std::isnan(x)) return 0x7fc0;
  const uint32_t bits = Bits(x);
  const uint16_t truncated = bits >> 16;
  const double below = FromBits(static_cast<uint32_t>(truncated) << 16);
  double above = FromBits(static_cast<uint32_t>(truncated + 1) << 16);
  // Past the largest finite value the next step up is infinity, which IEEE
  // rounding reaches as if it were 2^128 (unbounded exponent).
  if (std::isinf(above)) above = std::copysign(std::ldexp(1.0, 128), above);
  const double value = x;
  const double to_below = std::fabs(value - below),
               to_above = std::fabs(above - value);
  if (to_below < to_above || (to_below == to_above && !(truncated & 1))) {
    return truncated;
  }
  return truncated + 1;
}

TEST(DTypeTest, NamesAndSizes) {
  EXPECT_EQ(DTypeName(DType::kF32), "F32");
  EXPECT_EQ(DTypeName(DType::kF16), "F16");
  EXPECT_EQ(DTypeName(DType::kBF16), "BF16");
  EXPECT_EQ(DTypeName(DType::kI32), "I32");
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI32), 4u);
}

TEST(DTypeTest, F16KnownPatternsDecode) {
  struct Case {
    uint16_t bits;
    float value;
  };
  const Case cases[] = {
      {0x0000, 0.0f},
      {0x3c00, 1.0f},
      {0xc000, -2.0f},
      {0x3555, 0.333251953125f},
      {0x7bff, 65504.0f},                 // largest finite
      {0x0400, 6.103515625e-05f},         // smallest normal, 2^-14
      {0x0001, 5.9604644775390625e-08f},  // smallest subnormal, 2^-24
      {0x03ff, 6.097555160522461e-05f},   // largest subnormal, 1023 * 2^-24
      {0x8001, -5.9604644775390625e-08f},
      {0x7c00, std::numeric_limits<float>::infinity()},
      {0xfc00, -std::numeric_limits<float>::infinity()},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(F16ToF32(c.bits), c.value) << std::hex << c.bits;
  }
  EXPECT_EQ(Bits(F16ToF32(0x8000)), 0x80000000u);  // -0
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7c01)));  // signalling NaN stays NaN
  EXPECT_TRUE(std::isnan(F16ToF32(0xfe00)));
}

TEST(DTypeTest, F16DecodeMatchesDefinitionForEveryPattern) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const double expected = ReferenceF16Value(static_cast<uint16_t>(h));
    const float actual = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(actual)) << std::hex << h;
    } else {
      EXPECT_EQ(static_cast<double>(actual), expected) << std::hex << h;
      EXPECT_EQ(std::signbit(actual), (h & 0x8000) != 0) << std::hex << h;
    }
  }
}

TEST(DTypeTest, F16EncodeRoundsToNearestEven) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToF16(0.0f), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  // Halfway between 1 and 1 + 2^-10: to even (1); 1 + 3 * 2^-11: up to 1 +
  // 2^-9.
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)),
            0x3c01);
  // Overflow: 65519 rounds down to 65504, 65520 (the halfway point) to
  // infinity.
  EXPECT_EQ(F32ToF16(65519.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);
  EXPECT_EQ(F32ToF16(-1e9f), 0xfc00);
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::infinity()), 0x7c00);
  // Subnormals: 2^-25 is halfway between 0 and 2^-24 (to even: 0); just above
  // it rounds up; 3 * 2^-25 is halfway between 1 and 2 ulps (to even: 2).
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25) * 1.0001f), 0x0001);
  EXPECT_EQ(F32ToF16(3 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(F32ToF16(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(F32ToF16(1e-10f), 0x0000);
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::denorm_min()), 0x0000);
  // 1023.5 ulps: halfway between the largest subnormal and the smallest normal
  // -> 0x0400.
  EXPECT_EQ(F32ToF16(1023.5f * std::ldexp(1.0f, -24)), 0x0400);
  const uint16_t nan = F32ToF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  // A NaN whose payload lives only in low bits must not become infinity.
  EXPECT_NE(F32ToF16(FromBits(0x7f800001)) & 0x03ff, 0);
}

TEST(DTypeTest, F16RoundTripsEveryPattern) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float value = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(value)))) << std::hex << h;
    } else {
      EXPECT_EQ(F32ToF16(value), h) << std::hex << h;
    }
  }
}

// Floats that stress rounding: every pattern near F16's range boundaries and
// midpoints, plus random bit patterns.
std::vector<float> StressFloats() {
  std::vector<float> values;
  for (uint32_t h = 0; h < 0x7c00; h += 7) {
    const float v = F16ToF32(static_cast<uint16_t>(h));
    const float next = F16ToF32(static_cast<uint16_t>(h + 1));
    const float mid = (v + next) / 2;  // exact in float
    for (float x :
         {v, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      values.push_back(x);
      values.push_back(-x);
    }
  }
  std::mt19937 rng(1234);
  for (int i = 0; i < 200000; ++i) {
    values.push_back(FromBits(static_cast<uint32_t>(rng())));
  }
  return values;
}

TEST(DTypeTest, F16EncodeMatchesNearestEvenSearch) {
  for (float x : StressFloats()) {
    if (std::isnan(x)) continue;
    ASSERT_EQ(F32ToF16(x), ReferenceF32ToF16(x))
        << x << " bits " << std::hex << Bits(x);
  }
}

#if defined(__FLT16_MANT_DIG__)
TEST(DTypeTest, F16MatchesCompilerFloat16) {
  for (float x : StressFloats()) {
    if (std::isnan(x)) continue;
    const _Float16 h = static_cast<_Float16>(x);
    uint16_t expected;
    std::memcpy(&expected, &h, 2);
    ASSERT_EQ(F32ToF16(x), expected) << x;
    ASSERT_EQ(F16ToF32(expected), static_cast<float>(h));
  }
}
#endif

TEST(DTypeTest, Bf16KnownPatterns) {
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToF32(0xc000), -2.0f);
  EXPECT_EQ(Bf16ToF32(0x7f7f), 3.3895313892515355e38f);  // largest finite
  EXPECT_EQ(Bf16ToF32(0x0080), std::ldexp(1.0f, -126));  // smallest normal
  EXPECT_EQ(Bf16ToF32(0x0001), std::ldexp(1.0f, -133));  // smallest subnormal
  EXPECT_EQ(Bf16ToF32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(Bf16ToF32(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(Bf16ToF32(0x7fc0)));
  EXPECT_TRUE(std::isnan(Bf16ToF32(0x7f81)));

  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBf16(-0.0f), 0x8000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to even (1); 1 + 3 * 2^-8
  // rounds up.
  EXPECT_EQ(F32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(F32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(F32ToBf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)),
            0x3f81);
  // The largest float rounds up to infinity.
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  // Subnormals keep their top bits, rounded.
  EXPECT_EQ(F32ToBf16(FromBits(0x00010000)), 0x0001);
  EXPECT_EQ(F32ToBf16(FromBits(0x00008000)), 0x0000);  // tie to even
  EXPECT_EQ(F32ToBf16(FromBits(0x00018000)), 0x0002);  // tie to even (up)
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::denorm_min()), 0x0000);
  // NaNs stay NaN, even when only low payload bits are set.
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xffffffffu, 0x7fbfffffu}) {
    const uint16_t b = F32ToBf16(FromBits(nan));
    EXPECT_TRUE(std::isnan(Bf16ToF32(b))) << std::hex << nan;
    EXPECT_EQ(b & 0x8000, (nan >> 16) & 0x8000);
  }
}

TEST(DTypeTest, Bf16RoundTripsEveryPatternAndMatchesNearestEven) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float value = Bf16ToF32(static_cast<uint16_t>(b));
    EXPECT_EQ(Bits(value), b << 16);
    if (!std::isnan(value)) {
      EXPECT_EQ(F32ToBf16(value), b) << std::hex << b;
    }
  }
  std::mt19937 rng(99);
  for (int i = 0; i < 500000; ++i) {
    const float x = FromBits(static_cast<uint32_t>(rng()));
    if (std::isnan(x)) continue;
    ASSERT_EQ(F32ToBf16(x), ReferenceF32ToBf16(x)) << std::hex << Bits(x);
  }
}

TEST(DTypeTest, ArrayConversions) {
  const std::vector<float> values = {0.0f,  1.0f,     -2.5f,
                                     1e-6f, 70000.0f, 3.14159f};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::vector<char> encoded(values.size() * DTypeSize(dtype));
    ConvertFromF32(dtype, values.data(), encoded.data(), values.size());
    std::vector<float> decoded(values.size());
    ConvertToF32(dtype, encoded.data(), decoded.data(), values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      float expected = values[i];
      if (dtype == DType::kF16) expected = F16ToF32(F32ToF16(values[i]));
      if (dtype == DType::kBF16) expected = Bf16ToF32(F32ToBf16(values[i]));
      EXPECT_EQ(decoded[i], expected) << DTypeName(dtype) << " " << i;
    }
  }
  // 70000 overflows F16.
  uint16_t h;
  ConvertFromF32(DType::kF16, &values[4], &h, 1);
  EXPECT_EQ(h, 0x7c00);
}

}  // namespace
}  // namespace blockserve
