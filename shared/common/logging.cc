#include "shared/common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace blockserve {
namespace {

LogLevel LevelFromEnvironment() {
  const char* value = std::getenv("BLOCKSERVE_LOG_LEVEL");
  if (value == nullptr) return LogLevel::kInfo;
  absl::string_view v(value);
  if (v == "DEBUG" || v == "debug") return LogLevel::kDebug;
  if (v == "WARNING" || v == "warning") return LogLevel::kWarning;
  if (v == "ERROR" || v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<LogLevel>& MinLevel() {
  static std::atomic<LogLevel> level{LevelFromEnvironment()};
  return level;
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return 'D';
    case LogLevel::kInfo: return 'I';
    case LogLevel::kWarning: return 'W';
    case LogLevel::kError: return 'E';
    case LogLevel::kFatal: return 'F';
  }
  return '?';
}

}  // namespace

void SetMinLogLevel(LogLevel level) { MinLevel().store(level); }
LogLevel MinLogLevel() { return MinLevel().load(std::memory_order_relaxed); }

namespace logging_internal {

LogMessage::LogMessage(const char* file, int line, LogLevel level) : level_(level) {
  const char* base = std::strrchr(file, '/');
  stream_ << LevelLetter(level) << ' '
          << absl::FormatTime("%m%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone()) << ' '
          << (base != nullptr ? base + 1 : file) << ':' << line << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string text = stream_.str();
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(STDERR_FILENO, text.data() + written, text.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  if (level_ == LogLevel::kFatal) std::abort();
}

}  // namespace logging_internal
}  // namespace blockserve
