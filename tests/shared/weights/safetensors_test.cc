#include "shared/weights/safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/common/status_macros.h"

namespace blockserve {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("bs_safetensors_test_", getpid(), "_", info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const {
    return (dir_ / name).string();
  }

  // A file of raw bytes.
  std::string WriteBytes(const std::string& name, const std::string& bytes) {
    const std::string path = Path(name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // A file with `header` (length prefix as given, or its real size) and `data`.
  std::string WriteFile(const std::string& header, const std::string& data,
                        std::optional<uint64_t> length = std::nullopt) {
    const uint64_t n = length.value_or(header.size());
    std::string bytes(reinterpret_cast<const char*>(&n), 8);
    return WriteBytes("model.safetensors", bytes + header + data);
  }

  // Opens a file with `header` and `data_bytes` zero bytes and expects
  // INVALID_ARGUMENT naming the file and containing every substring.
  void ExpectInvalid(const std::string& header, size_t data_bytes,
                     const std::vector<std::string>& substrings) {
    const std::string path = WriteFile(header, std::string(data_bytes, '\0'));
    auto file = SafetensorsFile::Open(path);
    ASSERT_FALSE(file.ok()) << header;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument)
        << file.status();
    EXPECT_THAT(std::string(file.status().message()), HasSubstr(path));
    for (const std::string& s : substrings) {
      EXPECT_THAT(std::string(file.status().message()), HasSubstr(s)) << header;
    }
  }

  std::filesystem::path dir_;
};

std::string Bytes(const void* data, size_t n) {
  return std::string(static_cast<const char*>(data), n);
}

// ---------------------------------------------------------------------------
// Reading files crafted by hand from the format description.

TEST_F(SafetensorsTest, ReadsHandCraftedFile) {
  const float a[] = {1.0f, -2.0f, 3.5f, 0.25f, 8.0f, -0.5f};
  const uint16_t b[] = {0x3f80, 0xc000};  // BF16 1, -2
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[24,28]},)"
      R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  const std::string path =
      WriteFile(header, Bytes(a, sizeof(a)) + Bytes(b, sizeof(b)));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 2u);
  // File order of data offsets, not header order.
  EXPECT_EQ((*file)->tensors()[0].name, "a");
  EXPECT_EQ((*file)->tensors()[1].name, "b");
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");

  const SafetensorsTensor* ta = (*file)->Find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->dtype, DType::kF32);
  EXPECT_THAT(ta->shape, ElementsAre(2, 3));
  EXPECT_EQ(ta->numel(), 6);
  EXPECT_EQ(ta->nbytes, 24u);
  EXPECT_EQ(std::memcmp(ta->data, a, sizeof(a)), 0);
  const SafetensorsTensor* tb = (*file)->Find("b");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->dtype, DType::kBF16);
  EXPECT_EQ(std::memcmp(tb->data, b, sizeof(b)), 0);
  EXPECT_EQ((*file)->Find("c"), nullptr);
}

TEST_F(SafetensorsTest, AsTensorWrapsMappingAndKeepsItAlive) {
  const float a[] = {1.0f, 2.0f, 3.0f, 4.0f};
  const std::string path =
      WriteFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})",
                Bytes(a, sizeof(a)));
  Tensor tensor;
  {
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    tensor = (*file)->AsTensor(*(*file)->Find("w"));
    EXPECT_EQ(tensor.data(), (*file)->Find("w")->data);  // no copy
  }
  // The file object is gone; the tensor still holds the mapping.
  EXPECT_EQ(tensor.dtype(), DType::kF32);
  EXPECT_EQ(tensor.device(), DeviceKind::kCpu);
  EXPECT_THAT(tensor.shape(), ElementsAre(2, 2));
  EXPECT_EQ(tensor.data<float>()[3], 4.0f);
}

TEST_F(SafetensorsTest, AcceptsScalarsEmptyTensorsGapsTrailingBytesAndI32) {
  const std::string header =
      R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"("e":{"dtype":"F16","shape":[0,5],"data_offsets":[4,4]},)"
      R"("i":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})";
  const float s = 7.0f;
  const int32_t i = -3;
  const std::string path = WriteFile(
      header, Bytes(&s, 4) + std::string(4, 'x') + Bytes(&i, 4) + "trailing");
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find("s")->numel(), 1);
  EXPECT_EQ(*static_cast<const float*>((*file)->Find("s")->data), 7.0f);
  EXPECT_EQ((*file)->Find("e")->numel(), 0);
  EXPECT_EQ((*file)->Find("e")->nbytes, 0u);
  EXPECT_EQ((*file)->Find("i")->dtype, DType::kI32);
  EXPECT_EQ(*static_cast<const int32_t*>((*file)->Find("i")->data), -3);
}

TEST_F(SafetensorsTest, CopiesUnalignedTensorsToAlignedMemory) {
  // The data section starts 8-aligned (page-aligned mapping + 8 + padded
  // header); the F32 tensor starts 2 bytes into it, so it is unaligned.
  std::string header =
      R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[2,14]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const float x[] = {1.5f, -2.5f, 1e-30f};
  const std::string path = WriteFile(header, ".." + Bytes(x, sizeof(x)));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const SafetensorsTensor* t = (*file)->Find("x");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % alignof(float), 0u);
  EXPECT_EQ(std::memcmp(t->data, x, sizeof(x)), 0);
}

TEST_F(SafetensorsTest, SkipsUnsupportedDtypesOnlyWhenAsked) {
  const std::string header =
      R"({"mask":{"dtype":"BOOL","shape":[2,2],"data_offsets":[0,4]},)"
      R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  const std::string path = WriteFile(header, std::string(8, '\0'));
  auto strict = SafetensorsFile::Open(path);
  ASSERT_FALSE(strict.ok());
  EXPECT_THAT(std::string(strict.status().message()),
              AllOf(HasSubstr("'mask'"), HasSubstr("BOOL")));

  SafetensorsOpenOptions options;
  options.skip_unsupported_dtype = [](absl::string_view name) {
    return name == "mask";
  };
  auto lenient = SafetensorsFile::Open(path, options);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  EXPECT_THAT((*lenient)->skipped(), ElementsAre("mask"));
  EXPECT_EQ((*lenient)->Find("mask"), nullptr);
  ASSERT_EQ((*lenient)->tensors().size(), 1u);

  // A skipped tensor is still validated.
  ExpectInvalid(
      R"({"mask":{"dtype":"BOOL","shape":[2,2],"data_offsets":[0,3]}})", 4,
      {"'mask'", "needs 4"});
}

// ---------------------------------------------------------------------------
// Every reader error.

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  auto file = SafetensorsFile::Open(Path("absent.safetensors"));
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()),
              HasSubstr("absent.safetensors"));
}

TEST_F(SafetensorsTest, DirectoryIsRejected) {
  auto file = SafetensorsFile::Open(dir_.string());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()),
              HasSubstr("not a regular file"));
}

TEST_F(SafetensorsTest, FileShorterThanHeaderLength) {
  for (const std::string& bytes :
       {std::string(), std::string("\x02\0\0\0\0\0\0", 7)}) {
    const std::string path = WriteBytes("short.safetensors", bytes);
    auto file = SafetensorsFile::Open(path);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(file.status().message()),
                AllOf(HasSubstr(path), HasSubstr("shorter than")));
  }
}

TEST_F(SafetensorsTest, HeaderLengthPastEndOfFile) {
  const std::string path = WriteFile("{}", "", /*length=*/3);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()),
              HasSubstr("runs past the end"));
}

TEST_F(SafetensorsTest, AbsurdHeaderLength) {
  const std::string path = WriteFile("{}", "", /*length=*/uint64_t{1} << 40);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()),
              HasSubstr("larger than the limit"));
}

TEST_F(SafetensorsTest, InvalidJson) {
  ExpectInvalid(R"({"a": {"dtype": "F32",)", 0, {"not valid JSON"});
  ExpectInvalid("\xff\xfe{}", 0, {"not valid JSON"});
}

TEST_F(SafetensorsTest, HeaderNotAnObject) {
  ExpectInvalid("[1, 2]", 0, {"not a JSON object"});
}

TEST_F(SafetensorsTest, EntryNotAnObject) {
  ExpectInvalid(R"({"w": [1, 2]})", 0, {"'w'", "not a JSON object"});
}

TEST_F(SafetensorsTest, UnknownDtype) {
  ExpectInvalid(R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1,
                {"'w'", "unknown dtype 'Q4'"});
  ExpectInvalid(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4,
                {"'w'", "dtype"});
  ExpectInvalid(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4,
                {"'w'", "dtype"});
}

TEST_F(SafetensorsTest, UnsupportedDtypesRejectedByName) {
  for (const auto& [dtype, size] :
       std::vector<std::pair<std::string, int>>{{"I64", 8},
                                                {"F64", 8},
                                                {"U8", 1},
                                                {"BOOL", 1},
                                                {"I8", 1},
                                                {"U16", 2},
                                                {"F8_E4M3", 1}}) {
    ExpectInvalid(
        absl::StrCat(R"({"w":{"dtype":")", dtype,
                     R"(","shape":[2],"data_offsets":[0,)", 2 * size, "]}}"),
        2 * size, {"'w'", absl::StrCat("dtype ", dtype), "not supported"});
  }
}

TEST_F(SafetensorsTest, BadShapes) {
  for (const std::string shape :
       {"5", "[-1]", "[2.5]", "[\"2\"]", "[[2]]", "null"}) {
    ExpectInvalid(absl::StrCat(R"({"w":{"dtype":"F32","shape":)", shape,
                               R"(,"data_offsets":[0,8]}})"),
                  8, {"'w'", "shape"});
  }
  ExpectInvalid(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8,
                {"'w'", "shape"});
  ExpectInvalid(
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})",
      8, {"'w'", "overflows"});
}

TEST_F(SafetensorsTest, BadDataOffsets) {
  for (const std::string offsets :
       {"[0]", "[0,4,8]", "[8,4]", "[-4,4]", "[0.0,4]", "\"0,4\""}) {
    ExpectInvalid(
        absl::StrCat(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":)",
                     offsets, "}}"),
        8, {"'w'", "data_offsets"});
  }
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[1]}})", 8,
                {"'w'", "data_offsets missing"});
}

TEST_F(SafetensorsTest, DataOffsetsPastDataSection) {
  ExpectInvalid(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 8,
                {"'w'", "[4, 12]", "past the data section of 8 bytes"});
}

TEST_F(SafetensorsTest, ByteSizeMismatch) {
  ExpectInvalid(R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}})",
                8, {"'w'", "hold 8 bytes", "needs 12"});
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  ExpectInvalid(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                12, {"'a'", "'b'", "overlap"});
}

TEST_F(SafetensorsTest, DuplicateNames) {
  ExpectInvalid(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                8, {"duplicate tensor name 'a'"});
  ExpectInvalid(
      R"({"a":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}})",
      4, {"duplicate key 'shape'"});
}

TEST_F(SafetensorsTest, BadMetadata) {
  ExpectInvalid(R"({"__metadata__":["x"]})", 0,
                {"__metadata__", "not a JSON object"});
  ExpectInvalid(R"({"__metadata__":{"format":"pt","n":3}})", 0,
                {"__metadata__", "'n'", "not a string"});
}

// ---------------------------------------------------------------------------
// Writer.

TEST_F(SafetensorsTest, RoundTripsEveryDtype) {
  const std::vector<float> f32 = {1.0f, -0.0f, 3.25f, 1e-40f, -7.5f, 65504.0f};
  const std::vector<uint16_t> f16 = {0x3c00, 0x8001, 0x7c00, 0x7bff};
  const std::vector<uint16_t> bf16 = {0x3f80, 0xff80, 0x0001};
  const std::vector<int32_t> i32 = {-1, 0, 2147483647};
  const std::vector<SafetensorsWriteEntry> entries = {
      {"z.f32", DType::kF32, {2, 3}, f32.data()},
      {"a.f16", DType::kF16, {4}, f16.data()},
      {"m.bf16", DType::kBF16, {3, 1}, bf16.data()},
      {"b.i32", DType::kI32, {3}, i32.data()},
      {"scalar", DType::kF32, {}, f32.data()},
      {"empty", DType::kBF16, {0, 7}, nullptr},
  };
  const std::string path = Path("round.safetensors");
  ASSERT_TRUE(
      WriteSafetensors(path, entries, {{"format", "pt"}, {"note", "x"}}).ok());
  EXPECT_FALSE(
      std::filesystem::exists(path + ".tmp." + std::to_string(getpid())));

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().size(), 2u);
  EXPECT_EQ((*file)->metadata().at("note"), "x");
  ASSERT_EQ((*file)->tensors().size(), entries.size());
  for (const SafetensorsWriteEntry& entry : entries) {
    const SafetensorsTensor* t = (*file)->Find(entry.name);
    ASSERT_NE(t, nullptr) << entry.name;
    EXPECT_EQ(t->dtype, entry.dtype);
    EXPECT_EQ(t->shape, entry.shape);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % DTypeSize(t->dtype), 0u)
        << entry.name;
    if (t->nbytes > 0) {
      EXPECT_EQ(std::memcmp(t->data, entry.data, t->nbytes), 0) << entry.name;
    }
  }
  // Layout: 4-byte types first, then 2-byte ones, each by name.
  std::vector<std::string> order;
  for (const SafetensorsTensor& t : (*file)->tensors()) order.push_back(t.name);
  EXPECT_THAT(order, ElementsAre("b.i32", "scalar", "z.f32", "a.f16", "empty",
                                 "m.bf16"));
  std::vector<size_t> file_order = SafetensorsFileOrder(entries);
  EXPECT_THAT(file_order, ElementsAre(3, 4, 0, 1, 5, 2));

  // The header is padded with spaces to a multiple of 8 bytes.
  std::ifstream in(path, std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  EXPECT_EQ(header_size % 8, 0u);
  std::string header(header_size, '\0');
  in.read(header.data(), header_size);
  EXPECT_EQ(header.front(), '{');
  const size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(header.size() - last - 1, 8u);
}

TEST_F(SafetensorsTest, OverwritesAtomically) {
  const float one = 1.0f, two = 2.0f;
  const std::string path = Path("w.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"x", DType::kF32, {1}, &one}}).ok());
  auto first = SafetensorsFile::Open(path);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(WriteSafetensors(path, {{"x", DType::kF32, {1}, &two}}).ok());
  // The old mapping still sees the old file; a new open sees the new one.
  EXPECT_EQ(*static_cast<const float*>((*first)->Find("x")->data), 1.0f);
  auto second = SafetensorsFile::Open(path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*static_cast<const float*>((*second)->Find("x")->data), 2.0f);
}

TEST_F(SafetensorsTest, WriterRejectsBadEntries) {
  const float x = 0;
  const std::string path = Path("bad.safetensors");
  auto write = [&](std::vector<SafetensorsWriteEntry> entries) {
    return WriteSafetensors(path, entries);
  };
  EXPECT_THAT(std::string(write({{"a", DType::kF32, {1}, &x},
                                 {"a", DType::kF32, {1}, &x}})
                              .message()),
              HasSubstr("duplicate tensor name 'a'"));
  EXPECT_THAT(
      std::string(write({{"__metadata__", DType::kF32, {1}, &x}}).message()),
      HasSubstr("invalid tensor name"));
  EXPECT_THAT(std::string(write({{"", DType::kF32, {1}, &x}}).message()),
              HasSubstr("invalid tensor name"));
  EXPECT_THAT(std::string(write({{"n", DType::kF32, {-1}, &x}}).message()),
              AllOf(HasSubstr("'n'"), HasSubstr("negative")));
  EXPECT_THAT(std::string(write({{"d", DType::kF32, {1}, nullptr}}).message()),
              AllOf(HasSubstr("'d'"), HasSubstr("no data")));
  EXPECT_FALSE(std::filesystem::exists(path));

  const absl::Status unwritable = WriteSafetensors(
      Path("no/such/dir/x.safetensors"), {{"a", DType::kF32, {1}, &x}});
  EXPECT_EQ(unwritable.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unwritable.message()), HasSubstr("no/such/dir"));
}

TEST_F(SafetensorsTest, StreamedWriteChecksByteCountsAndCleansUp) {
  const std::vector<SafetensorsWriteEntry> entries = {
      {"a", DType::kF32, {4}, nullptr}, {"b", DType::kBF16, {3}, nullptr}};
  const std::string path = Path("stream.safetensors");
  const float a[] = {1, 2, 3, 4};
  const uint16_t b[] = {0x3f80, 0x4000, 0x4040};

  // Pieces of any size are fine.
  ASSERT_TRUE(WriteSafetensorsStreamed(
                  path, entries,
                  [&](size_t i, SafetensorsByteSink sink) {
                    const char* p = static_cast<const char*>(
                        i == 0 ? static_cast<const void*>(a) : b);
                    const size_t n = i == 0 ? sizeof(a) : sizeof(b);
                    RETURN_IF_ERROR(sink(p, 1));
                    return sink(p + 1, n - 1);
                  })
                  .ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(static_cast<const float*>((*file)->Find("a")->data)[3], 4.0f);
  EXPECT_EQ(static_cast<const uint16_t*>((*file)->Find("b")->data)[2], 0x4040);
  std::filesystem::remove(path);

  const absl::Status short_write = WriteSafetensorsStreamed(
      path, entries,
      [&](size_t, SafetensorsByteSink sink) { return sink(a, 2); });
  EXPECT_THAT(std::string(short_write.message()),
              AllOf(HasSubstr("'a'"), HasSubstr("given 2 of its 16")));
  const absl::Status long_write = WriteSafetensorsStreamed(
      path, entries,
      [&](size_t, SafetensorsByteSink sink) { return sink(a, 16 + 4); });
  EXPECT_THAT(std::string(long_write.message()), HasSubstr("more than its 16"));
  const absl::Status failed = WriteSafetensorsStreamed(
      path, entries,
      [&](size_t, SafetensorsByteSink) { return absl::AbortedError("stop"); });
  EXPECT_EQ(failed.code(), absl::StatusCode::kAborted);
  // Nothing is left behind: neither the file nor a temporary.
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

}  // namespace
}  // namespace blockserve
