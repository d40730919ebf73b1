#include "services/common/stop_signals.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

namespace blockserve::services {
namespace {

int g_pipe[2] = {-1, -1};

void OnStopSignal(int signal) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signal);
  (void)!write(g_pipe[1], &byte, 1);
  errno = saved;
}

}  // namespace

void StopSignals::Install() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (pipe2(g_pipe, O_CLOEXEC) != 0) return;
    fcntl(g_pipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction action = {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
  });
}

int StopSignals::Wait(double timeout_s) {
  Install();
  pollfd fd = {g_pipe[0], POLLIN, 0};
  const int timeout_ms = timeout_s < 0 ? -1 : static_cast<int>(timeout_s * 1000);
  while (true) {
    const int ready = poll(&fd, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return 0;
    unsigned char byte = 0;
    const ssize_t n = read(g_pipe[0], &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

void StopSignals::Notify(int code) {
  Install();
  const unsigned char byte = static_cast<unsigned char>(code);
  (void)!write(g_pipe[1], &byte, 1);
}

}  // namespace blockserve::services
