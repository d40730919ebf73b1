// Minimal leveled logging and fatal checks.
//
//   LOG(INFO) << "listening on " << address;
//   CHECK(ptr != nullptr) << "why it must hold";
//   CHECK_EQ(a, b);
//
// Each message is written to stderr with one write() call, so lines from
// different threads never interleave. LOG(FATAL) and failed CHECKs abort: they
// are for broken invariants only, never for anything a request or a file can
// cause (those are absl::Status errors). The minimum level comes from the
// BLOCKSERVE_LOG_LEVEL environment variable (DEBUG, INFO, WARNING, ERROR) or
// SetMinLogLevel(). Thread-safe.
#ifndef BLOCKSERVE_SHARED_COMMON_LOGGING_H_
#define BLOCKSERVE_SHARED_COMMON_LOGGING_H_

#include <sstream>
#include <string_view>

namespace blockserve {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();

namespace logging_internal {

// Collects one message and emits it (or aborts, for kFatal) when destroyed.
class LogMessage {
 public:
  LogMessage(const char* file, int line, LogLevel level);
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Swallows the stream in a disabled LOG statement.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace logging_internal
}  // namespace blockserve

#define BS_LOG_LEVEL_DEBUG ::blockserve::LogLevel::kDebug
#define BS_LOG_LEVEL_INFO ::blockserve::LogLevel::kInfo
#define BS_LOG_LEVEL_WARNING ::blockserve::LogLevel::kWarning
#define BS_LOG_LEVEL_ERROR ::blockserve::LogLevel::kError
#define BS_LOG_LEVEL_FATAL ::blockserve::LogLevel::kFatal

#define LOG(severity)                                         \
  (BS_LOG_LEVEL_##severity < ::blockserve::MinLogLevel())     \
      ? (void)0                                               \
      : ::blockserve::logging_internal::Voidify() &           \
            ::blockserve::logging_internal::LogMessage(       \
                __FILE__, __LINE__, BS_LOG_LEVEL_##severity)  \
                .stream()

#define CHECK(condition)                                              \
  (condition) ? (void)0                                               \
              : ::blockserve::logging_internal::Voidify() &           \
                    ::blockserve::logging_internal::LogMessage(       \
                        __FILE__, __LINE__, BS_LOG_LEVEL_FATAL)       \
                            .stream()                                 \
                        << "Check failed: " #condition " "

#define BS_CHECK_OP_(a, b, op) \
  CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define CHECK_EQ(a, b) BS_CHECK_OP_(a, b, ==)
#define CHECK_NE(a, b) BS_CHECK_OP_(a, b, !=)
#define CHECK_LT(a, b) BS_CHECK_OP_(a, b, <)
#define CHECK_LE(a, b) BS_CHECK_OP_(a, b, <=)
#define CHECK_GT(a, b) BS_CHECK_OP_(a, b, >)
#define CHECK_GE(a, b) BS_CHECK_OP_(a, b, >=)

#define CHECK_OK(expr)                                   \
  do {                                                   \
    const ::absl::Status bs_check_status_ = (expr);      \
    CHECK(bs_check_status_.ok()) << bs_check_status_;    \
  } while (0)

#endif  // BLOCKSERVE_SHARED_COMMON_LOGGING_H_
