#include "shared/weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "shared/common/status_macros.h"

namespace blockserve {

// The format is little-endian and tensors are used in place.
static_assert(std::endian::native == std::endian::little,
              "safetensors needs a little-endian host");

namespace {

using nlohmann::json;

// Headers beyond this are not real checkpoints (the reference reader uses the
// same bound).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr absl::string_view kMetadataKey = "__metadata__";

// Every dtype of the safetensors format, with the engine's type when it has
// one.
struct DTypeInfo {
  absl::string_view name;
  size_t size;
  std::optional<DType> dtype;
};
constexpr DTypeInfo kDTypes[] = {
    {"F32", 4, DType::kF32},      {"F16", 2, DType::kF16},
    {"BF16", 2, DType::kBF16},    {"I32", 4, DType::kI32},
    {"BOOL", 1, std::nullopt},    {"U8", 1, std::nullopt},
    {"I8", 1, std::nullopt},      {"F8_E4M3", 1, std::nullopt},
    {"F8_E5M2", 1, std::nullopt}, {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt},     {"U32", 4, std::nullopt},
    {"F64", 8, std::nullopt},     {"I64", 8, std::nullopt},
    {"U64", 8, std::nullopt},
};

const DTypeInfo* FindDType(absl::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

// The mapped file, plus aligned copies of tensors a foreign writer left
// unaligned.
struct Mapping {
  void* address = nullptr;
  size_t size = 0;
  std::vector<std::unique_ptr<char[]>> aligned_copies;

  Mapping(void* address, size_t size) : address(address), size(size) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { munmap(address, size); }
};

// Closes a file descriptor when it goes out of scope.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_;
};

absl::Status ErrnoError(int error, absl::string_view what,
                        absl::string_view path) {
  std::string message =
      absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Parses the header JSON, reporting duplicate keys in any object (nlohmann
// keeps the last one silently, which would hide a duplicate tensor name).
absl::StatusOr<json> ParseHeader(const std::string& path,
                                 absl::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  int duplicate_depth = 0;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() &&
               duplicate.empty()) {
      if (!open_objects.back().insert(parsed.get<std::string>()).second) {
        duplicate = parsed.get<std::string>();
        duplicate_depth = depth;
      }
    }
    return true;
  };
  json header = json::parse(text.begin(), text.end(), callback,
                            /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header is not valid JSON"));
  }
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(
        duplicate_depth == 1 ? absl::StrCat(path, ": duplicate tensor name '",
                                            duplicate, "' in header")
                             : absl::StrCat(path, ": duplicate key '",
                                            duplicate, "' in a header entry"));
  }
  if (!header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header is not a JSON object"));
  }
  return header;
}

// A JSON non-negative integer (not a float, not negative).
std::optional<uint64_t> AsCount(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return value.get<uint64_t>();
  }
  return std::nullopt;
}

struct ParsedEntry {
  SafetensorsTensor tensor;
  std::string dtype_name;
  bool supported = true;
  uint64_t begin = 0;
  uint64_t end = 0;
};

absl::StatusOr<ParsedEntry> ParseEntry(const std::string& path,
                                       const std::string& name,
                                       const json& entry, uint64_t data_size) {
  auto error = [&](auto&&... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tensor '", name, "': ", parts...));
  };
  if (!entry.is_object()) return error("entry is not a JSON object");
  ParsedEntry parsed;
  parsed.tensor.name = name;

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return error("missing string 'dtype'");
  }
  const std::string dtype_name = dtype_it->get<std::string>();
  const DTypeInfo* info = FindDType(dtype_name);
  if (info == nullptr) return error("unknown dtype '", dtype_name, "'");
  parsed.dtype_name = dtype_name;
  parsed.supported = info->dtype.has_value();
  if (parsed.supported) parsed.tensor.dtype = *info->dtype;

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return error("missing list 'shape'");
  }
  uint64_t numel = 1;
  for (const json& dim : *shape_it) {
    std::optional<uint64_t> size = AsCount(dim);
    if (!size || *size > static_cast<uint64_t>(INT64_MAX)) {
      return error("shape ", shape_it->dump(),
                   " is not a list of non-negative integers");
    }
    if (__builtin_mul_overflow(numel, *size, &numel)) {
      return error("shape ", shape_it->dump(), " overflows");
    }
    parsed.tensor.shape.push_back(static_cast<int64_t>(*size));
  }

  auto offsets_it = entry.find("data_offsets");
  std::optional<uint64_t> begin, end;
  if (offsets_it != entry.end() && offsets_it->is_array() &&
      offsets_it->size() == 2) {
    begin = AsCount((*offsets_it)[0]);
    end = AsCount((*offsets_it)[1]);
  }
  if (!begin || !end || *begin > *end) {
    return error("data_offsets ",
                 offsets_it == entry.end() ? "missing" : offsets_it->dump(),
                 " is not [begin, end] with 0 <= begin <= end");
  }
  if (*end > data_size) {
    return error("data_offsets [", *begin, ", ", *end,
                 "] run past the data section of ", data_size, " bytes");
  }
  uint64_t expected_bytes;
  if (__builtin_mul_overflow(numel, info->size, &expected_bytes)) {
    return error("shape ", shape_it->dump(), " overflows");
  }
  if (expected_bytes != *end - *begin) {
    return error("data_offsets [", *begin, ", ", *end, "] hold ", *end - *begin,
                 " bytes, but ", dtype_name, " ", shape_it->dump(), " needs ",
                 expected_bytes);
  }
  parsed.begin = *begin;
  parsed.end = *end;
  parsed.tensor.nbytes = static_cast<size_t>(expected_bytes);
  return parsed;
}

absl::Status ParseMetadata(const std::string& path, const json& value,
                           std::map<std::string, std::string>& metadata) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": __metadata__ is not a JSON object"));
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": __metadata__ value of '", key, "' is not a string"));
    }
    metadata[key] = item.get<std::string>();
  }
  return absl::OkStatus();
}

}  // namespace

int64_t SafetensorsTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::~SafetensorsFile() = default;

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path, const SafetensorsOpenOptions& options) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open", path);
  FdCloser closer(fd);
  struct stat info;
  if (fstat(fd, &info) != 0) return ErrnoError(errno, "stat", path);
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": file of ", file_size,
                     " bytes is shorter than the 8-byte header length"));
  }
  void* address = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (address == MAP_FAILED) return ErrnoError(errno, "map", path);
  auto mapping = std::make_shared<Mapping>(address, file_size);
  const char* bytes = static_cast<const char*>(address);

  uint64_t header_size;
  std::memcpy(&header_size, bytes, sizeof(header_size));
  if (header_size > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": header length ", header_size, " is larger than the limit of ",
        kMaxHeaderBytes, " bytes"));
  }
  if (header_size > file_size - 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header length ", header_size,
                     " runs past the end of the ", file_size, "-byte file"));
  }
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file_size - data_start;

  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  std::vector<ParsedEntry> entries;
  try {
    ASSIGN_OR_RETURN(
        json header,
        ParseHeader(path, absl::string_view(bytes + 8, header_size)));
    for (const auto& [name, value] : header.items()) {
      if (name == kMetadataKey) {
        RETURN_IF_ERROR(ParseMetadata(path, value, file->metadata_));
        continue;
      }
      ASSIGN_OR_RETURN(ParsedEntry entry,
                       ParseEntry(path, name, value, data_size));
      if (!entry.supported && !(options.skip_unsupported_dtype &&
                                options.skip_unsupported_dtype(name))) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": tensor '", name, "' has dtype ", entry.dtype_name,
            ", which is not supported (F32, F16, BF16, I32)"));
      }
      entries.push_back(std::move(entry));
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": malformed header: ", e.what()));
  }

  std::sort(entries.begin(), entries.end(),
            [](const ParsedEntry& a, const ParsedEntry& b) {
              return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
            });
  const ParsedEntry* previous = nullptr;  // last entry holding bytes
  for (const ParsedEntry& entry : entries) {
    if (entry.begin == entry.end) continue;
    if (previous != nullptr && entry.begin < previous->end) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensors '", previous->tensor.name, "' [", previous->begin,
          ", ", previous->end, ") and '", entry.tensor.name, "' [", entry.begin,
          ", ", entry.end, ") overlap"));
    }
    previous = &entry;
  }

  for (ParsedEntry& entry : entries) {
    if (!entry.supported) {
      file->skipped_.push_back(entry.tensor.name);
      continue;
    }
    SafetensorsTensor& tensor = entry.tensor;
    const char* data = bytes + data_start + entry.begin;
    if (reinterpret_cast<uintptr_t>(data) % DTypeSize(tensor.dtype) != 0) {
      // new[] memory is aligned for every element type.
      auto copy = std::make_unique<char[]>(tensor.nbytes);
      std::memcpy(copy.get(), data, tensor.nbytes);
      data = copy.get();
      mapping->aligned_copies.push_back(std::move(copy));
    }
    tensor.data = data;
    file->index_.emplace(tensor.name, file->tensors_.size());
    file->tensors_.push_back(std::move(tensor));
  }
  file->mapping_ = std::move(mapping);
  return file;
}

const SafetensorsTensor* SafetensorsFile::Find(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Tensor SafetensorsFile::AsTensor(const SafetensorsTensor& tensor) const {
  return Tensor::Wrap(const_cast<void*>(tensor.data), tensor.dtype,
                      Shape(tensor.shape.begin(), tensor.shape.end()),
                      DeviceKind::kCpu, mapping_);
}

namespace {

// Writes to `path` through a temporary file in the same directory; the
// temporary is removed unless Commit() succeeds.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path)
      : path_(std::move(path)),
        temp_path_(absl::StrCat(path_, ".tmp.", getpid())) {}
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter() {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(temp_path_.c_str());
  }

  absl::Status Open() {
    fd_ = open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
               0644);
    return fd_ < 0 ? ErrnoError(errno, "create", temp_path_) : absl::OkStatus();
  }

  absl::Status Write(const void* data, size_t nbytes) {
    const char* cursor = static_cast<const char*>(data);
    while (nbytes > 0) {
      const ssize_t written =
          write(fd_, cursor, std::min<size_t>(nbytes, 1 << 30));
      if (written < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, "write", temp_path_);
      }
      cursor += written;
      nbytes -= static_cast<size_t>(written);
    }
    return absl::OkStatus();
  }

  absl::Status Commit() {
    const int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) return ErrnoError(errno, "close", temp_path_);
    if (rename(temp_path_.c_str(), path_.c_str()) != 0) {
      return ErrnoError(errno, "rename into place", path_);
    }
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

absl::Status CheckWriteEntries(
    const std::string& path,
    const std::vector<SafetensorsWriteEntry>& tensors) {
  std::set<absl::string_view> names;
  for (const SafetensorsWriteEntry& entry : tensors) {
    if (entry.name.empty() || entry.name == kMetadataKey) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": invalid tensor name '", entry.name, "'"));
    }
    if (!names.insert(entry.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": duplicate tensor name '", entry.name, "'"));
    }
    for (int64_t d : entry.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": tensor '", entry.name, "' has a negative dimension"));
      }
    }
  }
  return absl::OkStatus();
}

size_t EntryBytes(const SafetensorsWriteEntry& entry) {
  size_t n = DTypeSize(entry.dtype);
  for (int64_t d : entry.shape) n *= static_cast<size_t>(d);
  return n;
}

}  // namespace

std::vector<size_t> SafetensorsFileOrder(
    const std::vector<SafetensorsWriteEntry>& tensors) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const size_t size_a = DTypeSize(tensors[a].dtype),
                 size_b = DTypeSize(tensors[b].dtype);
    return size_a != size_b ? size_a > size_b
                            : tensors[a].name < tensors[b].name;
  });
  return order;
}

absl::Status WriteSafetensorsStreamed(
    const std::string& path, const std::vector<SafetensorsWriteEntry>& tensors,
    absl::FunctionRef<absl::Status(size_t index, SafetensorsByteSink sink)>
        produce,
    const std::map<std::string, std::string>& metadata) {
  RETURN_IF_ERROR(CheckWriteEntries(path, tensors));
  const std::vector<size_t> order = SafetensorsFileOrder(tensors);

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  size_t offset = 0;
  for (size_t i : order) {
    const SafetensorsWriteEntry& entry = tensors[i];
    const size_t nbytes = EntryBytes(entry);
    header[entry.name] = {{"dtype", std::string(DTypeName(entry.dtype))},
                          {"shape", entry.shape},
                          {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_size = header_text.size();

  AtomicFileWriter writer(path);
  RETURN_IF_ERROR(writer.Open());
  RETURN_IF_ERROR(writer.Write(&header_size, sizeof(header_size)));
  RETURN_IF_ERROR(writer.Write(header_text.data(), header_text.size()));
  for (size_t i : order) {
    const size_t expected = EntryBytes(tensors[i]);
    size_t received = 0;
    absl::Status status =
        produce(i, [&](const void* data, size_t nbytes) -> absl::Status {
          if (received + nbytes > expected) {
            return absl::InternalError(
                absl::StrCat(path, ": tensor '", tensors[i].name,
                             "' was given more than its ", expected, " bytes"));
          }
          received += nbytes;
          return writer.Write(data, nbytes);
        });
    RETURN_IF_ERROR(status);
    if (received != expected) {
      return absl::InternalError(
          absl::StrCat(path, ": tensor '", tensors[i].name, "' was given ",
                       received, " of its ", expected, " bytes"));
    }
  }
  return writer.Commit();
}

absl::Status WriteSafetensors(
    const std::string& path, const std::vector<SafetensorsWriteEntry>& tensors,
    const std::map<std::string, std::string>& metadata) {
  for (const SafetensorsWriteEntry& entry : tensors) {
    if (entry.data == nullptr && EntryBytes(entry) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", entry.name, "' has no data"));
    }
  }
  return WriteSafetensorsStreamed(
      path, tensors,
      [&](size_t index, SafetensorsByteSink sink) {
        return sink(tensors[index].data, EntryBytes(tensors[index]));
      },
      metadata);
}

}  // namespace blockserve
