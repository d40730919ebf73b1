// StopSignals: SIGTERM and SIGINT as events a thread can wait for.
//
// Install() sets a handler that only writes the signal number to a pipe
// (async-signal-safe; no work in the handler); Wait() blocks on the pipe.
// A handler, not sigwait, because a linked library may start threads before
// main() (a BLAS thread pool did, once) whose signal masks we cannot change:
// a signal blocked in our threads would be delivered to one of theirs and
// kill the process. Notify() wakes a waiter without a signal.
//
// Process-wide. Thread-safe.
#ifndef BLOCKSERVE_SERVICES_COMMON_STOP_SIGNALS_H_
#define BLOCKSERVE_SERVICES_COMMON_STOP_SIGNALS_H_

namespace blockserve::services {

class StopSignals {
 public:
  // Installs the SIGTERM/SIGINT handler (idempotent).
  static void Install();
  // Waits up to `timeout_s` seconds (< 0: forever). Returns the signal
  // number, the code given to Notify(), or 0 on timeout.
  static int Wait(double timeout_s);
  // Wakes one Wait() with `code` (> 0, not a signal number in use).
  static void Notify(int code);
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_STOP_SIGNALS_H_
